//! The role table: every write route of [`tandem_http::route_table`] sent its example request
//! by each kind of caller (no credentials; a Viewer, an Editor and an Admin of the org by
//! session cookie; an Admin of another org aiming at this org's objects; a Viewer service
//! account by bearer key), and the answer checked against [`EXPECTED`], which states
//! Grafana 12's role requirements route by route.
//!
//! A write route missing from [`EXPECTED`] fails the test (with what each caller got, to
//! help write its row), and so does a row naming no route, so a new route cannot be
//! forgotten.
//! A refused request must leave every content table as it was ([`digest`]).
//!
//! The requests run in two passes over the same objects (the bad-input battery's
//! [`Fixtures`]): first every request expected to be refused, which write nothing, so each
//! meets the objects as created; then the ones expected to pass, least privileged caller
//! first and deletions last, each checked only for getting past the role check (neither
//! 401 nor 403), since an earlier one may have renamed or deleted what it aims at.
//!
//! It runs on SQLite only: the rights are decided by the handlers from the caller's role and
//! the content permissions, the same code on every backend, and the digest reads every
//! table whatever the engine; the bad-input battery already walks every route on all
//! three backends through two instances.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::json;
use tandem_http::RouteSpec;
use tandem_http::testkit::http::{self, HttpResponse};
use tandem_http::testkit::{Backend, TestCluster};

use crate::common::digest::{self, Snapshot};
use crate::common::fixtures::Fixtures;
use crate::common::{as_admin, as_admin_ok, create_user, login, set_cookie};

/// Who sends a request, in the order of [`EXPECTED`]'s columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    /// No credentials.
    Anonymous,
    /// A Viewer of the org, by session cookie.
    Viewer,
    /// An Editor of the org, by session cookie.
    Editor,
    /// An Admin of the org (not a server admin), by session cookie.
    Admin,
    /// An Admin of another org only, by session cookie, acting in that org on the paths of
    /// this org's objects.
    OtherOrgAdmin,
    /// A service account with the Viewer role, by bearer key.
    ServiceAccount,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Viewer,
    Caller::Editor,
    Caller::Admin,
    Caller::OtherOrgAdmin,
    Caller::ServiceAccount,
];

/// The order of the second pass: the least privileged first, so that a request that
/// passes and deletes comes after those of the callers with fewer rights.
const PASSING_ORDER: [Caller; 6] = [
    Caller::Anonymous,
    Caller::ServiceAccount,
    Caller::Viewer,
    Caller::OtherOrgAdmin,
    Caller::Editor,
    Caller::Admin,
];

/// What a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Exactly this status; 4xx answers write nothing.
    Status(u16),
    /// Past the role check: anything but 401, 403 and 5xx (the object may be gone or
    /// renamed by an earlier request); a 4xx writes nothing.
    Passes,
}

use Outcome::{Passes, Status};

/// Refused: no credentials, or the session cookie's or key's owner is unknown.
const U: Outcome = Status(401);
/// Refused: the caller's role or permissions do not allow it.
const F: Outcome = Status(403);
/// Refused: the caller's org has no such object.
const N: Outcome = Status(404);
/// Allowed.
const P: Outcome = Passes;

/// Refused: the example request is wrong whoever sends it (a wrong old password).
const B: Outcome = Status(400);

/// Every write route and what each caller gets, columns in the order of [`CALLERS`]:
/// anonymous, Viewer, Editor, Admin, another org's Admin, Viewer service account.
///
/// Grafana 12's basic roles: a Viewer reads and keeps their own profile, preferences and
/// stars; an Editor also writes dashboards, folders, annotations, library panels, alert
/// rules, notifications and silences wherever the folder permissions give the Editor role
/// Edit (Grafana's default on a new folder, and at the root), and creates snapshots; an org
/// Admin also manages the org, its users, teams, service accounts, data sources, Live push
/// streams and the permissions themselves; only a server admin (none of these callers)
/// manages users, orgs and memberships across orgs (`/api/admin/*`, `/api/orgs/*`,
/// `/api/users/*`). Another org's Admin finds none of this org's objects (404) and acts in
/// their own org where a route names none. A service account is refused what needs a
/// signed-in user (profile, password, session rotation: Grafana answers 304 "Endpoint only
/// available for users" there, a status that cannot carry the JSON body clients read).
#[rustfmt::skip]
const EXPECTED: &[(&str, [Outcome; 6])] = &[
    // Sessions and the signed-in user.
    ("POST /login",                                          [U, U, U, U, U, U]),
    ("POST /api/user/auth-tokens/rotate",                    [U, P, P, P, P, U]),
    ("PUT /api/user",                                        [U, P, P, P, P, F]),
    ("PUT /api/user/password",                               [U, B, B, B, B, F]),
    ("POST /api/user/using/{org_id}",                        [U, U, U, U, U, F]),
    ("POST /api/user/revoke-auth-token",                     [U, N, N, N, N, F]),
    ("PUT /api/user/preferences",                            [U, P, P, P, P, P]),
    ("PATCH /api/user/preferences",                          [U, P, P, P, P, P]),
    ("POST /api/user/stars/dashboard/uid/{uid}",             [U, P, P, P, N, P]),
    ("DELETE /api/user/stars/dashboard/uid/{uid}",           [U, P, P, P, N, P]),
    // Server admin only.
    ("PUT /api/users/{id}",                                  [U, F, F, F, F, F]),
    ("POST /api/users/{id}/using/{org_id}",                  [U, F, F, F, F, F]),
    ("POST /api/orgs",                                       [U, F, F, F, F, F]),
    ("PUT /api/orgs/{org_id}",                               [U, F, F, F, F, F]),
    ("DELETE /api/orgs/{org_id}",                            [U, F, F, F, F, F]),
    ("POST /api/orgs/{org_id}/users",                        [U, F, F, F, F, F]),
    ("PATCH /api/orgs/{org_id}/users/{user_id}",             [U, F, F, F, F, F]),
    ("DELETE /api/orgs/{org_id}/users/{user_id}",            [U, F, F, F, F, F]),
    ("POST /api/admin/users",                                [U, F, F, F, F, F]),
    ("DELETE /api/admin/users/{id}",                         [U, F, F, F, F, F]),
    ("PUT /api/admin/users/{id}/password",                   [U, F, F, F, F, F]),
    ("PUT /api/admin/users/{id}/permissions",                [U, F, F, F, F, F]),
    ("POST /api/admin/users/{id}/disable",                   [U, F, F, F, F, F]),
    ("POST /api/admin/users/{id}/enable",                    [U, F, F, F, F, F]),
    ("POST /api/admin/users/{id}/logout",                    [U, F, F, F, F, F]),
    ("POST /api/admin/users/{id}/revoke-auth-token",         [U, F, F, F, F, F]),
    // The org, its users, teams and service accounts: org Admin (or a team's Admin).
    ("PUT /api/org",                                         [U, F, F, P, P, F]),
    ("POST /api/org/users",                                  [U, F, F, P, P, F]),
    ("PATCH /api/org/users/{user_id}",                       [U, F, F, P, N, F]),
    ("DELETE /api/org/users/{user_id}",                      [U, F, F, P, N, F]),
    ("PUT /api/org/preferences",                             [U, F, F, P, P, F]),
    ("PATCH /api/org/preferences",                           [U, F, F, P, P, F]),
    ("POST /api/teams",                                      [U, F, F, P, P, F]),
    ("PUT /api/teams/{team_id}",                             [U, F, F, P, N, F]),
    ("DELETE /api/teams/{team_id}",                          [U, F, F, P, N, F]),
    ("POST /api/teams/{team_id}/members",                    [U, F, F, P, N, F]),
    ("PUT /api/teams/{team_id}/members/{user_id}",           [U, F, F, P, N, F]),
    ("DELETE /api/teams/{team_id}/members/{user_id}",        [U, F, F, P, N, F]),
    ("PUT /api/teams/{team_id}/preferences",                 [U, F, F, P, N, F]),
    ("PATCH /api/teams/{team_id}/preferences",               [U, F, F, P, N, F]),
    ("POST /api/serviceaccounts",                            [U, F, F, P, P, F]),
    ("PATCH /api/serviceaccounts/{id}",                      [U, F, F, P, N, F]),
    ("DELETE /api/serviceaccounts/{id}",                     [U, F, F, P, N, F]),
    ("POST /api/serviceaccounts/{id}/tokens",                [U, F, F, P, N, F]),
    ("DELETE /api/serviceaccounts/{id}/tokens/{token_id}",   [U, F, F, P, N, F]),
    // Dashboards, folders and what hangs off them: Edit on the folder, Admin on its
    // permissions.
    ("POST /api/dashboards/db",                              [U, F, P, P, P, F]),
    ("POST /api/dashboards/db/",                             [U, F, P, P, P, F]),
    ("DELETE /api/dashboards/uid/{uid}",                     [U, F, P, P, N, F]),
    ("POST /api/dashboards/uid/{uid}/restore",               [U, F, P, P, N, F]),
    ("POST /api/folders",                                    [U, F, P, P, P, F]),
    ("POST /api/folders/",                                   [U, F, P, P, P, F]),
    ("PUT /api/folders/{uid}",                               [U, F, P, P, N, F]),
    ("DELETE /api/folders/{uid}",                            [U, F, P, P, N, F]),
    ("POST /api/folders/{uid}/move",                         [U, F, P, P, N, F]),
    ("POST /api/folders/{uid}/permissions",                  [U, F, F, P, N, F]),
    ("POST /api/dashboards/uid/{uid}/permissions",           [U, F, F, P, N, F]),
    ("POST /api/dashboards/id/{id}/permissions",             [U, F, F, P, N, F]),
    ("POST /api/annotations",                                [U, F, P, P, P, F]),
    ("PUT /api/annotations/{id}",                            [U, F, P, P, N, F]),
    ("PATCH /api/annotations/{id}",                          [U, F, P, P, N, F]),
    ("DELETE /api/annotations/{id}",                         [U, F, P, P, N, F]),
    ("POST /api/annotations/graphite",                       [U, F, P, P, P, F]),
    ("POST /api/library-elements",                           [U, F, P, P, P, F]),
    ("PATCH /api/library-elements/{uid}",                    [U, F, P, P, N, F]),
    ("DELETE /api/library-elements/{uid}",                   [U, F, P, P, N, F]),
    // Snapshots: an Editor makes and deletes them (`snapshots:create`, `snapshots:delete`);
    // the delete key works in any org, as in Grafana.
    ("POST /api/snapshots",                                  [U, F, P, P, P, F]),
    ("DELETE /api/snapshots/{key}",                          [U, F, P, P, N, F]),
    ("GET /api/snapshots-delete/{delete_key}",               [U, F, P, P, P, F]),
    // Data sources: org Admin; queries: anyone who may read them.
    ("POST /api/datasources",                                [U, F, F, P, P, F]),
    ("PUT /api/datasources/{id}",                            [U, F, F, P, N, F]),
    ("DELETE /api/datasources/{id}",                         [U, F, F, P, N, F]),
    ("PUT /api/datasources/uid/{uid}",                       [U, F, F, P, N, F]),
    ("DELETE /api/datasources/uid/{uid}",                    [U, F, F, P, N, F]),
    ("DELETE /api/datasources/name/{name}",                  [U, F, F, P, N, F]),
    ("POST /api/ds/query",                                   [U, P, P, P, P, P]),
    // Alerting: rules with Edit on their folder; notifications and silences: Editor.
    ("POST /api/v1/provisioning/alert-rules",                [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/alert-rules/{uid}",           [U, F, P, P, N, F]),
    ("DELETE /api/v1/provisioning/alert-rules/{uid}",        [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}",
                                                             [U, F, P, P, P, F]),
    ("DELETE /api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}",
                                                             [U, F, P, P, N, F]),
    ("POST /api/ruler/grafana/api/v1/rules/{folder_uid}",    [U, F, P, P, N, F]),
    ("DELETE /api/ruler/grafana/api/v1/rules/{folder_uid}/{group}",
                                                             [U, F, P, P, N, F]),
    ("POST /api/v1/provisioning/contact-points",             [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/contact-points/{uid}",        [U, F, P, P, N, F]),
    ("DELETE /api/v1/provisioning/contact-points/{uid}",     [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/policies",                    [U, F, P, P, P, F]),
    ("DELETE /api/v1/provisioning/policies",                 [U, F, P, P, P, F]),
    ("POST /api/v1/provisioning/mute-timings",               [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/mute-timings/{name}",         [U, F, P, P, N, F]),
    ("DELETE /api/v1/provisioning/mute-timings/{name}",      [U, F, P, P, P, F]),
    ("PUT /api/v1/provisioning/templates/{name}",            [U, F, P, P, P, F]),
    ("DELETE /api/v1/provisioning/templates/{name}",         [U, F, P, P, P, F]),
    ("POST /api/alertmanager/grafana/config/api/v1/receivers/test",
                                                             [U, F, P, P, P, F]),
    ("POST /api/alertmanager/grafana/api/v2/silences",       [U, F, P, P, P, F]),
    ("DELETE /api/alertmanager/grafana/api/v2/silence/{id}", [U, F, P, P, N, F]),
    ("POST /api/alertmanager/grafana/api/v2/alerts",         [U, F, P, P, P, F]),
    // Live: anyone may publish to a broadcast channel; pushing a stream takes an Admin.
    ("POST /api/live/publish",                               [U, P, P, P, P, P]),
    ("POST /api/live/push/{stream_id}",                      [U, F, F, P, P, F]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_route_answers_each_kind_of_caller_as_grafana_does() {
    tandem_http::testkit::run_cluster(
        Backend::Sqlite,
        1,
        |_, settings| {
            // Nothing writes behind the test's back, and the failed logins of `POST /login`
            // do not lock anyone out.
            settings.alerting.execute_alerts = false;
            settings.dashboards.versions_to_keep = 1_000_000;
            settings.identity.brute_force_protection = false;
        },
        |cluster: TestCluster| async move {
            run(&cluster).await;
            cluster.shutdown().await;
        },
    )
    .await;
}

async fn run(cluster: &TestCluster) {
    let url = cluster.url(0);
    let db = cluster.server(0).database();
    let fixtures = Fixtures::create(&url).await;
    let mut callers = Callers::create(&url).await;
    let routes: Vec<RouteSpec> = tandem_http::route_table()
        .into_iter()
        .filter(writes)
        .collect();
    let expected: BTreeMap<&str, [Outcome; 6]> = EXPECTED.iter().copied().collect();
    assert_eq!(expected.len(), EXPECTED.len(), "a route listed twice");
    let names: Vec<String> = routes.iter().map(name).collect();
    let stale: Vec<&&str> = expected
        .keys()
        .filter(|key| !names.iter().any(|name| name == *key))
        .collect();
    assert!(
        stale.is_empty(),
        "EXPECTED lists routes that do not exist: {stale:?}"
    );

    // First pass: the refusals, each against the objects as they were created.
    let start = digest::snapshot(db).await;
    let mut refused = 0usize;
    for spec in &routes {
        let Some(outcomes) = expected.get(name(spec).as_str()) else {
            continue;
        };
        for (caller, outcome) in CALLERS.iter().zip(outcomes) {
            let Status(status) = *outcome else { continue };
            if status < 400 {
                continue;
            }
            let response = callers.send(&url, spec, &fixtures, *caller).await;
            check(spec, *caller, *outcome, &response);
            let changed = digest::differences(&start, &digest::snapshot(db).await);
            assert!(
                changed.is_empty(),
                "{} for {caller:?} was refused with {} but wrote:\n{}",
                name(spec),
                response.status,
                changed.join("\n")
            );
            refused += 1;
        }
    }

    // Second pass: what may pass, least privileged first, deletions last (a folder's, which
    // takes its dashboards, rules and panels along, at the very end).
    let mut order: Vec<&RouteSpec> = routes.iter().collect();
    order.sort_by_key(|spec| rank(spec));
    let access = AccessLists::read(&url).await;
    let mut missing: BTreeMap<String, Vec<(Caller, u16)>> = BTreeMap::new();
    let mut cached: Option<Snapshot> = None;
    let mut passed = 0usize;
    for spec in order {
        let outcomes = expected.get(name(spec).as_str());
        for caller in PASSING_ORDER {
            let outcome = outcomes.map(|row| row[caller as usize]);
            if matches!(outcome, Some(Status(status)) if status >= 400) {
                continue;
            }
            let before = match cached.take() {
                Some(kept) => kept,
                None => digest::snapshot(db).await,
            };
            let response = callers.send(&url, spec, &fixtures, caller).await;
            match outcome {
                Some(outcome) => check(spec, caller, outcome, &response),
                None => missing
                    .entry(name(spec))
                    .or_default()
                    .push((caller, response.status)),
            }
            if response.status < 300 && spec.path.ends_with("/permissions") {
                // The example list takes the Editor role's Edit away: give it back, or the
                // Editor's later requests would meet a folder that is no longer theirs.
                access.restore(&url).await;
            }
            if response.status >= 400 {
                let after = digest::snapshot(db).await;
                let changed = digest::differences(&before, &after);
                assert!(
                    changed.is_empty(),
                    "{} for {caller:?} answered {} but wrote:\n{}",
                    name(spec),
                    response.status,
                    changed.join("\n")
                );
                cached = Some(after);
            }
            passed += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "write routes missing from EXPECTED in tests/it/role_table.rs (each caller got, in \
         the order anonymous, Viewer, Editor, Admin, other org's Admin, service account; \
         write the row from Grafana's role requirements, not from these):\n{}",
        missing
            .iter()
            .map(|(route, got)| {
                let mut got = got.clone();
                got.sort();
                let statuses: Vec<String> = got.iter().map(|(_, s)| s.to_string()).collect();
                format!("    (\"{route}\", [{}]),", statuses.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    );
    report(routes.len(), refused, passed);
}

/// The place of a route in the second pass: deletions after the rest, and the objects
/// others hang off (a dashboard its stars and annotations, a folder everything) last.
fn rank(spec: &RouteSpec) -> u8 {
    match (&spec.method, spec.path) {
        (&Method::DELETE, "/api/folders/{uid}") => 4,
        (&Method::DELETE, "/api/dashboards/uid/{uid}") => 3,
        (
            &Method::DELETE,
            "/api/teams/{team_id}"
            | "/api/serviceaccounts/{id}"
            | "/api/org/users/{user_id}"
            | "/api/v1/provisioning/alert-rules/{uid}",
        ) => 2,
        (&Method::DELETE, _) => 1,
        (&Method::GET, _) => 1,
        _ => 0,
    }
}

/// The fixture folder's and dashboard's own access lists, as `POST …/permissions` takes
/// them.
struct AccessLists {
    folder: serde_json::Value,
    dashboard: serde_json::Value,
}

impl AccessLists {
    const FOLDER: &str = "/api/folders/fixture-folder/permissions";
    const DASHBOARD: &str = "/api/dashboards/uid/fixture-dash/permissions";

    async fn read(url: &str) -> AccessLists {
        AccessLists {
            folder: own_items(url, Self::FOLDER).await,
            dashboard: own_items(url, Self::DASHBOARD).await,
        }
    }

    async fn restore(&self, url: &str) {
        as_admin_ok("POST", url, Self::FOLDER, self.folder.clone()).await;
        // The dashboard may be gone by now.
        let _ = as_admin("POST", url, Self::DASHBOARD, self.dashboard.clone()).await;
    }
}

/// The items `path` lists that are its own (not inherited), as `{items}`.
async fn own_items(url: &str, path: &str) -> serde_json::Value {
    let listed = as_admin_ok("GET", url, path, serde_json::Value::Null)
        .await
        .json();
    let items: Vec<serde_json::Value> = listed
        .as_array()
        .expect("a list of items")
        .iter()
        .filter(|item| item["inherited"] != true)
        .map(|item| {
            let permission = item["permission"].clone();
            if item["userId"].as_i64().unwrap_or(0) > 0 {
                json!({"userId": item["userId"], "permission": permission})
            } else if item["teamId"].as_i64().unwrap_or(0) > 0 {
                json!({"teamId": item["teamId"], "permission": permission})
            } else {
                json!({"role": item["role"], "permission": permission})
            }
        })
        .collect();
    json!({ "items": items })
}

/// Writes, as the role table counts them: every method but GET, and Grafana's
/// `GET /api/snapshots-delete/:deleteKey`, which deletes.
fn writes(spec: &RouteSpec) -> bool {
    spec.method != Method::GET || spec.path.starts_with("/api/snapshots-delete/")
}

fn name(spec: &RouteSpec) -> String {
    format!("{} {}", spec.method, spec.path)
}

#[track_caller]
fn check(spec: &RouteSpec, caller: Caller, expected: Outcome, response: &HttpResponse) {
    let context = || {
        format!(
            "{} for {caller:?}: expected {expected:?}, got {} {}",
            name(spec),
            response.status,
            response.text()
        )
    };
    match expected {
        Status(status) => assert_eq!(response.status, status, "{}", context()),
        Passes => assert!(
            ![401, 403].contains(&response.status) && response.status < 500,
            "{}",
            context()
        ),
    }
    if response.status >= 400 && spec.path.starts_with("/api/") {
        let body: serde_json::Value =
            serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("{}", context()));
        assert!(body["message"].is_string(), "{}", context());
    }
}

/// The credentials of each kind of caller.
struct Callers {
    viewer: String,
    editor: String,
    admin: String,
    other_org_admin: String,
    service_account: String,
}

impl Callers {
    /// Creates them through `url` as the built-in admin: three members of org 1, the
    /// Admin of a new org, and a Viewer service account of org 1 with a key.
    async fn create(url: &str) -> Callers {
        let member = |login: &'static str, role: &'static str| async move {
            let id = create_user(url, login, &format!("{login} password")).await;
            as_admin_ok(
                "PATCH",
                url,
                &format!("/api/org/users/{id}"),
                json!({"role": role}),
            )
            .await;
            format!("grafana_session={}", login_as(url, login).await)
        };
        let viewer = member("rt-viewer", "Viewer").await;
        let editor = member("rt-editor", "Editor").await;
        let admin = member("rt-admin", "Admin").await;
        let org = as_admin_ok("POST", url, "/api/orgs", json!({"name": "Role table org"})).await;
        let org_id = org.json()["orgId"].as_i64().expect("an org id");
        let created = as_admin_ok(
            "POST",
            url,
            "/api/admin/users",
            json!({"name": "rt-other", "email": "rt-other@example.com", "login": "rt-other",
                   "password": "rt-other password", "OrgId": org_id}),
        )
        .await;
        let other_id = created.json()["id"].as_i64().expect("a user id");
        as_admin_ok(
            "PATCH",
            url,
            &format!("/api/orgs/{org_id}/users/{other_id}"),
            json!({"role": "Admin"}),
        )
        .await;
        let other_org_admin = format!("grafana_session={}", login_as(url, "rt-other").await);
        let account = as_admin_ok(
            "POST",
            url,
            "/api/serviceaccounts",
            json!({"name": "rt-robot", "role": "Viewer"}),
        )
        .await;
        let account_id = account.json()["id"].as_i64().expect("an account id");
        let token = as_admin_ok(
            "POST",
            url,
            &format!("/api/serviceaccounts/{account_id}/tokens"),
            json!({"name": "rt-key"}),
        )
        .await;
        let key = token.json()["key"].as_str().expect("a key").to_owned();
        Callers {
            viewer,
            editor,
            admin,
            other_org_admin,
            service_account: format!("Bearer {key}"),
        }
    }

    /// Sends `spec`'s example request, its path filled with `fixtures`, as `caller`; keeps
    /// a session cookie the answer rotates.
    async fn send(
        &mut self,
        url: &str,
        spec: &RouteSpec,
        fixtures: &Fixtures,
        caller: Caller,
    ) -> HttpResponse {
        let path = fixtures.fill(spec.path);
        let target = if spec.query.is_empty() {
            format!("{url}{path}")
        } else {
            format!("{url}{path}?{}", spec.query)
        };
        let cookie = self.cookie(caller).cloned();
        let mut headers = vec![("content-type", "application/json")];
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie));
        }
        if caller == Caller::ServiceAccount {
            headers.push(("authorization", &self.service_account));
        }
        let body = spec.body.unwrap_or_default().to_owned();
        let response = http::request(spec.method.as_str(), &target, &headers, body)
            .await
            .unwrap_or_else(|err| panic!("{} for {caller:?}: {err}", name(spec)));
        if let (Some(cookie), Some(rotated)) = (
            self.cookie(caller),
            set_cookie(&response, "grafana_session"),
        ) {
            *cookie = format!("grafana_session={rotated}");
        }
        response
    }
}

impl Callers {
    fn cookie(&mut self, caller: Caller) -> Option<&mut String> {
        match caller {
            Caller::Anonymous | Caller::ServiceAccount => None,
            Caller::Viewer => Some(&mut self.viewer),
            Caller::Editor => Some(&mut self.editor),
            Caller::Admin => Some(&mut self.admin),
            Caller::OtherOrgAdmin => Some(&mut self.other_org_admin),
        }
    }
}

async fn login_as(url: &str, user: &str) -> String {
    login(url, user, &format!("{user} password")).await
}

#[allow(clippy::print_stderr)]
fn report(routes: usize, refused: usize, passed: usize) {
    eprintln!(
        "role table: {routes} write routes, {refused} refused requests wrote nothing, \
         {passed} allowed requests passed the role check"
    );
}
