//! One object of each kind that a route's path can name, for the tests that walk the route
//! table (the bad-input battery, the role table), so that a request reaches the code that
//! validates it or checks the caller's rights rather than stopping at a 404 for the path.

use serde_json::{Value, json};
use tandem_http::testkit::http::HttpResponse;

use crate::common::{as_admin_ok, create_user, login};

/// Ids and uids of one of each kind of object.
pub(crate) struct Fixtures {
    user_id: i64,
    org_id: i64,
    org_name: String,
    team_id: i64,
    service_account_id: i64,
    token_id: i64,
    folder_uid: String,
    folder_id: i64,
    dashboard_uid: String,
    dashboard_id: i64,
    datasource_id: i64,
    rule_uid: String,
    annotation_id: i64,
    silence_id: String,
}

/// The keys of the fixture snapshot (chosen, so the tests can name them).
const SNAPSHOT_KEY: &str = "fixture-snapshot";
const SNAPSHOT_DELETE_KEY: &str = "fixture-snapshot-delete";
/// The uid of the fixture library panel.
const LIBRARY_UID: &str = "fixture-lib";

impl Fixtures {
    /// Creates them through `url` as the built-in admin.
    pub(crate) async fn create(url: &str) -> Fixtures {
        let user_id = create_user(url, "fixture", "fixture password").await;
        let org = as_admin_ok("POST", url, "/api/orgs", json!({"name": "Fixture org"})).await;
        let org_id = id(&org, "orgId");
        as_admin_ok(
            "POST",
            url,
            &format!("/api/orgs/{org_id}/users"),
            json!({"loginOrEmail": "fixture", "role": "Viewer"}),
        )
        .await;
        let team = as_admin_ok(
            "POST",
            url,
            "/api/teams",
            json!({"name": "Fixture team", "email": "team@example.com"}),
        )
        .await;
        let team_id = id(&team, "teamId");
        as_admin_ok(
            "POST",
            url,
            &format!("/api/teams/{team_id}/members"),
            json!({"userId": user_id}),
        )
        .await;
        let account = as_admin_ok(
            "POST",
            url,
            "/api/serviceaccounts",
            json!({"name": "fixture-robot", "role": "Viewer"}),
        )
        .await;
        let service_account_id = id(&account, "id");
        let token = as_admin_ok(
            "POST",
            url,
            &format!("/api/serviceaccounts/{service_account_id}/tokens"),
            json!({"name": "fixture-token"}),
        )
        .await;
        let token_id = id(&token, "id");
        let folder = as_admin_ok(
            "POST",
            url,
            "/api/folders",
            json!({"uid": "fixture-folder", "title": "Fixture folder"}),
        )
        .await;
        let folder_id = id(&folder, "id");
        let mut dashboard = json!({"uid": "fixture-dash", "title": "Fixture", "tags": ["t"]});
        let saved = as_admin_ok(
            "POST",
            url,
            "/api/dashboards/db",
            json!({"dashboard": dashboard, "folderUid": "fixture-folder"}),
        )
        .await;
        let dashboard_id = id(&saved, "id");
        dashboard["version"] = json!(1);
        dashboard["id"] = json!(dashboard_id);
        as_admin_ok(
            "POST",
            url,
            "/api/dashboards/db",
            json!({"dashboard": dashboard, "folderUid": "fixture-folder", "message": "second"}),
        )
        .await;
        let datasource = as_admin_ok(
            "POST",
            url,
            "/api/datasources",
            json!({"name": "Fixture data", "uid": "fixture-ds", "type": "grafana-testdata-datasource"}),
        )
        .await;
        let datasource_id = id(&datasource, "id");
        let rule = as_admin_ok(
            "POST",
            url,
            "/api/v1/provisioning/alert-rules",
            json!({"uid": "fixture-rule", "folderUID": "fixture-folder", "ruleGroup": "fixture-group",
                   "title": "Fixture rule", "condition": "A", "noDataState": "NoData", "execErrState": "Error",
                   "data": [{"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                             "model": {"type": "math", "expression": "1"}}]}),
        )
        .await;
        let rule_uid = rule.json()["uid"].as_str().unwrap_or_default().to_owned();
        // One of each notification object; the first write also stores the org's default
        // contact point and policy tree, which reads answer without writing.
        as_admin_ok(
            "POST",
            url,
            "/api/v1/provisioning/contact-points",
            json!({"uid": "fixture-point", "name": "fixture-hook", "type": "webhook",
                   "settings": {"url": "http://127.0.0.1:9/fixture"}}),
        )
        .await;
        as_admin_ok(
            "POST",
            url,
            "/api/v1/provisioning/mute-timings",
            json!({"name": "fixture-timing", "time_intervals": [{"weekdays": ["monday"]}]}),
        )
        .await;
        as_admin_ok(
            "PUT",
            url,
            "/api/v1/provisioning/templates/fixture-template",
            json!({"template": "{{ define \"fixture\" }}x{{ end }}"}),
        )
        .await;
        let annotation = as_admin_ok(
            "POST",
            url,
            "/api/annotations",
            json!({"dashboardUID": "fixture-dash", "time": 1_000, "tags": ["fixture"], "text": "Fixture"}),
        )
        .await;
        let annotation_id = id(&annotation, "id");
        let silence = as_admin_ok(
            "POST",
            url,
            "/api/alertmanager/grafana/api/v2/silences",
            json!({"matchers": [{"name": "team", "value": "fixture", "isRegex": false, "isEqual": true}],
                   "startsAt": "2026-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
                   "createdBy": "admin", "comment": "fixture"}),
        )
        .await;
        let silence_id = silence.json()["silenceID"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        as_admin_ok(
            "POST",
            url,
            "/api/snapshots",
            json!({"dashboard": {"title": "Fixture"}, "key": SNAPSHOT_KEY,
                   "deleteKey": SNAPSHOT_DELETE_KEY}),
        )
        .await;
        as_admin_ok(
            "POST",
            url,
            "/api/library-elements",
            json!({"folderUid": "fixture-folder", "name": "Fixture panel", "uid": LIBRARY_UID,
                   "kind": 1, "model": {"type": "text"}}),
        )
        .await;
        // The fixture user has a session of its own, for the session routes to aim at.
        login(url, "fixture", "fixture password").await;
        Fixtures {
            user_id,
            org_id,
            org_name: "Fixture org".to_owned(),
            team_id,
            service_account_id,
            token_id,
            folder_uid: "fixture-folder".to_owned(),
            folder_id,
            dashboard_uid: "fixture-dash".to_owned(),
            dashboard_id,
            datasource_id,
            rule_uid,
            annotation_id,
            silence_id,
        }
    }

    /// `path` with each `{param}` replaced by its fixture.
    pub(crate) fn fill(&self, path: &str) -> String {
        let mut filled = path.to_owned();
        for segment in path.split('/') {
            if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                filled = filled.replace(segment, &self.param(path, param));
            }
        }
        filled
    }

    /// The value of path parameter `param` in route `path`; panics for a parameter no
    /// fixture is made for, so that a new kind of route gets one.
    pub(crate) fn param(&self, path: &str, param: &str) -> String {
        match param {
            "user_id" => self.user_id.to_string(),
            "org_id" => self.org_id.to_string(),
            "team_id" => self.team_id.to_string(),
            "token_id" => self.token_id.to_string(),
            "name" if path.starts_with("/api/orgs/name/") => self.org_name.replace(' ', "%20"),
            "name" if path.starts_with("/api/datasources/") => "Fixture%20data".to_owned(),
            "id" if path.starts_with("/api/datasources/") => self.datasource_id.to_string(),
            "uid" if path.starts_with("/api/datasources/uid/") => "fixture-ds".to_owned(),
            "version" => "1".to_owned(),
            "stream_id" => "battery".to_owned(),
            "id" if path.starts_with("/api/users/") || path.starts_with("/api/admin/users/") => {
                self.user_id.to_string()
            }
            "id" if path.starts_with("/api/serviceaccounts/") => {
                self.service_account_id.to_string()
            }
            "id" if path.starts_with("/api/folders/id/") => self.folder_id.to_string(),
            "id" if path.starts_with("/api/annotations/") => self.annotation_id.to_string(),
            "id" if path.starts_with("/api/dashboards/id/") => self.dashboard_id.to_string(),
            "uid" if path.starts_with("/api/folders/") => self.folder_uid.clone(),
            "uid" if path.starts_with("/api/v1/provisioning/alert-rules/") => self.rule_uid.clone(),
            "uid" if path.starts_with("/api/v1/provisioning/contact-points/") => {
                "fixture-point".to_owned()
            }
            "name" if path.starts_with("/api/v1/provisioning/mute-timings/") => {
                "fixture-timing".to_owned()
            }
            "name" if path.starts_with("/api/v1/provisioning/templates/") => {
                "fixture-template".to_owned()
            }
            "id" if path.starts_with("/api/alertmanager/grafana/api/v2/silence/") => {
                self.silence_id.clone()
            }
            "key" if path.starts_with("/api/snapshots/") => SNAPSHOT_KEY.to_owned(),
            "uid" if path.starts_with("/api/library-elements/") => LIBRARY_UID.to_owned(),
            "name" if path.starts_with("/api/library-elements/name/") => {
                "Fixture%20panel".to_owned()
            }
            "delete_key" => SNAPSHOT_DELETE_KEY.to_owned(),
            "folder_uid" => self.folder_uid.clone(),
            "group" => "fixture-group".to_owned(),
            "uid"
                if path.starts_with("/api/dashboards/uid/") || path.contains("/dashboard/uid/") =>
            {
                self.dashboard_uid.clone()
            }
            _ => panic!(
                "no fixture for {{{param}}} in {path}: add one in tests/it/common/fixtures.rs"
            ),
        }
    }
}

fn id(response: &HttpResponse, key: &str) -> i64 {
    let body: Value = response.json();
    body[key]
        .as_i64()
        .unwrap_or_else(|| panic!("no {key} in {}", response.text()))
}
