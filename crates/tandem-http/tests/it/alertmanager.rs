//! Alertmanager's v2 API on two in-process instances sharing one database: silences made
//! on one are read, updated and expired on the other with Alertmanager's answers, bad
//! silences are refused and write nothing, and alerts show the silences that mute them.

use serde_json::{Value, json};
use tandem_alerting::{
    AlertInstance, AlertStore, InstanceState, InstanceWrite, Labels, OrgId, SqlAlertStore,
    fingerprint,
};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::HttpResponse;

use crate::common::{as_admin, as_admin_ok, basic, create_user, send};

const V2: &str = "/api/alertmanager/grafana/api/v2";

fn rfc3339(offset_ms: i64) -> String {
    tandem_alerting::notify::silence::format_time(tandem_storage::now_ms() + offset_ms)
}

fn silence_body(team: &str, starts: i64, ends: i64) -> Value {
    json!({
        "matchers": [{"name": "team", "value": team, "isRegex": false, "isEqual": true}],
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
        "createdBy": "admin",
        "comment": "maintenance",
    })
}

#[track_caller]
fn refused(response: &HttpResponse, status: u16, fragment: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let message = response.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(fragment), "{message}");
}

async fn silences(url: &str, query: &str) -> Vec<Value> {
    let response = as_admin_ok("GET", url, &format!("{V2}/silences{query}"), json!(null)).await;
    response.json().as_array().unwrap().clone()
}

const HOUR: i64 = 3_600_000;

tandem_http::cluster_tests!(
    silences_follow_alertmanager_across_instances,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let created = as_admin(
            "POST",
            &a,
            &format!("{V2}/silences"),
            silence_body("db", -HOUR, HOUR),
        )
        .await;
        assert_eq!(
            created.status,
            200,
            "Alertmanager's 200, not Grafana's 202: {}",
            created.text()
        );
        let id = created.json()["silenceID"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 36);

        let listed = silences(&b, "").await;
        assert_eq!(listed.len(), 1);
        let s = &listed[0];
        assert_eq!(s["id"], id);
        assert_eq!(s["status"]["state"], "active");
        assert_eq!(
            s["matchers"],
            json!([{"name": "team", "value": "db", "isRegex": false, "isEqual": true}])
        );
        assert_eq!(
            (s["createdBy"].as_str(), s["comment"].as_str()),
            (Some("admin"), Some("maintenance"))
        );
        for key in ["startsAt", "endsAt", "updatedAt"] {
            assert!(s[key].as_str().unwrap().ends_with('Z'), "{key}: {s}");
        }
        assert_eq!(silences(&b, "?filter=team%3D%22db%22").await.len(), 1);
        assert_eq!(silences(&b, "?filter=team%3D~%22d.%2A%22").await.len(), 1);
        assert!(silences(&b, "?filter=team%3D%22web%22").await.is_empty());
        let one = as_admin_ok("GET", &b, &format!("{V2}/silence/{id}"), json!(null)).await;
        assert_eq!(one.json()["id"], id);

        // An update in place keeps the id; other matchers expire it and make a new one.
        let mut longer = s.clone();
        longer["endsAt"] = json!(rfc3339(2 * HOUR));
        let updated = as_admin_ok("POST", &b, &format!("{V2}/silences"), longer).await;
        assert_eq!(updated.json()["silenceID"], id);
        let mut other = silence_body("web", -HOUR, HOUR);
        other["id"] = json!(id);
        other["startsAt"] = s["startsAt"].clone();
        let replaced = as_admin_ok("POST", &a, &format!("{V2}/silences"), other).await;
        let new_id = replaced.json()["silenceID"].as_str().unwrap().to_owned();
        assert_ne!(new_id, id);
        let old = as_admin_ok("GET", &b, &format!("{V2}/silence/{id}"), json!(null)).await;
        assert_eq!(old.json()["status"]["state"], "expired");
        let listed = silences(&b, "").await;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["id"], new_id, "active ones first");

        // Bad silences are 400s (an unknown id a 404) and write nothing.
        let in_past = silence_body("db", -2 * HOUR, -HOUR);
        let reversed = silence_body("db", HOUR, 0);
        let mut no_matchers = silence_body("db", 0, HOUR);
        no_matchers["matchers"] = json!([]);
        let empty_match = silence_body("", 0, HOUR);
        let mut bad_regex = silence_body("(", 0, HOUR);
        bad_regex["matchers"][0]["isRegex"] = json!(true);
        let mut bad_time = silence_body("db", 0, HOUR);
        bad_time["endsAt"] = json!("tomorrow");
        let mut no_end = silence_body("db", 0, HOUR);
        no_end.as_object_mut().unwrap().remove("endsAt");
        let mut bad_id = silence_body("db", 0, HOUR);
        bad_id["id"] = json!("not-a-uuid");
        for (body, fragment) in [
            (in_past, "in the past"),
            (reversed, "before end"),
            (no_matchers, "at least one matcher"),
            (empty_match, "empty string"),
            (bad_regex, "regular expression"),
            (bad_time, "RFC 3339"),
            (no_end, "endsAt"),
            (bad_id, "UUID"),
        ] {
            let response = as_admin("POST", &a, &format!("{V2}/silences"), body).await;
            refused(&response, 400, fragment);
        }
        let mut unknown = silence_body("db", 0, HOUR);
        unknown["id"] = json!("00000000-0000-4000-8000-000000000000");
        refused(
            &as_admin("POST", &a, &format!("{V2}/silences"), unknown).await,
            404,
            "silence not found",
        );
        refused(
            &as_admin(
                "GET",
                &a,
                &format!("{V2}/silence/00000000-0000-4000-8000-000000000000"),
                json!(null),
            )
            .await,
            404,
            "silence not found",
        );
        refused(
            &as_admin("GET", &a, &format!("{V2}/silence/nope"), json!(null)).await,
            400,
            "UUID",
        );
        refused(
            &as_admin(
                "GET",
                &a,
                &format!("{V2}/silences?filter=team"),
                json!(null),
            )
            .await,
            400,
            "bad matcher",
        );
        assert_eq!(silences(&a, "").await.len(), 2, "nothing written");

        // Viewers read, Editors write.
        create_user(&a, "am-viewer", "viewer-password").await;
        let viewer = basic("am-viewer", "viewer-password");
        let read = send("GET", &b, &format!("{V2}/silences"), &viewer, json!(null)).await;
        assert_eq!(read.status, 200, "{}", read.text());
        let write = send(
            "POST",
            &b,
            &format!("{V2}/silences"),
            &viewer,
            silence_body("db", 0, HOUR),
        )
        .await;
        assert_eq!(write.status, 403, "{}", write.text());
        let expire = send(
            "DELETE",
            &b,
            &format!("{V2}/silence/{new_id}"),
            &viewer,
            json!(null),
        )
        .await;
        assert_eq!(expire.status, 403, "{}", expire.text());

        // DELETE expires, once.
        as_admin_ok("DELETE", &a, &format!("{V2}/silence/{new_id}"), json!(null)).await;
        let gone = as_admin_ok("GET", &b, &format!("{V2}/silence/{new_id}"), json!(null)).await;
        assert_eq!(gone.json()["status"]["state"], "expired");
        refused(
            &as_admin("DELETE", &b, &format!("{V2}/silence/{new_id}"), json!(null)).await,
            400,
            "already expired",
        );
        assert_eq!(silences(&a, "").await.len(), 2);
    }
);

fn firing(rule: &str, team: &str, now: i64) -> AlertInstance {
    let labels: Labels = [
        ("alertname".to_owned(), rule.to_owned()),
        ("grafana_folder".to_owned(), "Alerts".to_owned()),
        ("team".to_owned(), team.to_owned()),
        ("__alert_rule_uid__".to_owned(), rule.to_owned()),
    ]
    .into();
    AlertInstance {
        org_id: OrgId(1),
        rule_uid: rule.into(),
        fingerprint: fingerprint(&labels),
        labels,
        state: InstanceState::Alerting,
        started_at: now,
        last_slot: now,
        last_eval_at: now,
        written_at: now,
        ..AlertInstance::default()
    }
}

fn names(alerts: &Value) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

tandem_http::cluster_tests!(
    alerts_show_the_silences_that_mute_them,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let alerts = SqlAlertStore::new(cluster.database().connect().await);
        let now = tandem_storage::now_ms();
        for (rule, team) in [("db-down", "db"), ("web-down", "web")] {
            assert!(
                alerts
                    .write_instances(InstanceWrite {
                        org_id: OrgId(1),
                        rule_uid: rule.into(),
                        slot: now,
                        upserts: vec![firing(rule, team, now)],
                        deletes: vec![],
                        expected: Default::default(),
                        history: None,
                    })
                    .await
                    .unwrap()
            );
        }
        let created = as_admin_ok(
            "POST",
            &a,
            &format!("{V2}/silences"),
            silence_body("db", -HOUR, HOUR),
        )
        .await;
        let id = created.json()["silenceID"].as_str().unwrap().to_owned();

        let all = as_admin_ok("GET", &b, &format!("{V2}/alerts"), json!(null))
            .await
            .json();
        assert_eq!(names(&all), ["db-down", "web-down"]);
        for alert in all.as_array().unwrap() {
            let silenced = alert["labels"]["team"] == "db";
            assert_eq!(
                alert["status"]["state"],
                if silenced { "suppressed" } else { "active" }
            );
            assert_eq!(
                alert["status"]["silencedBy"],
                if silenced { json!([id]) } else { json!([]) }
            );
            assert_eq!(alert["status"]["inhibitedBy"], json!([]));
            assert_eq!(
                alert["receivers"],
                json!([{"name": "grafana-default-email"}])
            );
            assert_eq!(alert["fingerprint"].as_str().unwrap().len(), 16);
            assert!(
                alert["labels"].get("__alert_rule_uid__").is_none(),
                "internal labels are left out"
            );
            for key in ["startsAt", "endsAt", "updatedAt", "generatorURL"] {
                assert!(alert[key].is_string(), "{key}: {alert}");
            }
            assert!(alert["annotations"].is_object());
        }
        let query = |q: &'static str| {
            let b = b.clone();
            async move {
                as_admin_ok("GET", &b, &format!("{V2}/alerts{q}"), json!(null))
                    .await
                    .json()
            }
        };
        assert_eq!(names(&query("?silenced=false").await), ["web-down"]);
        assert_eq!(names(&query("?active=false").await), ["db-down"]);
        assert_eq!(
            names(&query("?filter=team%3D%22web%22").await),
            ["web-down"]
        );
        assert_eq!(
            names(&query("?filter=team%21%3D%22web%22&inhibited=false").await),
            ["db-down"]
        );
        assert_eq!(
            names(&query("?receiver=grafana-.%2A").await),
            ["db-down", "web-down"]
        );
        assert!(names(&query("?receiver=other").await).is_empty());
        refused(
            &as_admin(
                "GET",
                &b,
                &format!("{V2}/alerts?silenced=maybe"),
                json!(null),
            )
            .await,
            400,
            "boolean",
        );

        let groups = as_admin_ok("GET", &a, &format!("{V2}/alerts/groups"), json!(null))
            .await
            .json();
        let groups = groups.as_array().unwrap();
        assert_eq!(
            groups.len(),
            2,
            "grouped by grafana_folder and alertname: {groups:?}"
        );
        for g in groups {
            assert_eq!(g["receiver"]["name"], "grafana-default-email");
            assert_eq!(g["labels"]["grafana_folder"], "Alerts");
            assert_eq!(g["alerts"].as_array().unwrap().len(), 1);
        }

        // Expired on B, the silence stops showing on A at once.
        as_admin_ok("DELETE", &b, &format!("{V2}/silence/{id}"), json!(null)).await;
        let all = as_admin_ok(
            "GET",
            &a,
            &format!("{V2}/alerts?silenced=false"),
            json!(null),
        )
        .await
        .json();
        assert_eq!(names(&all), ["db-down", "web-down"]);

        let status = as_admin_ok("GET", &a, &format!("{V2}/status"), json!(null))
            .await
            .json();
        assert_eq!(status["cluster"]["status"], "ready");
        assert_eq!(status["cluster"]["peers"].as_array().unwrap().len(), 2);
        assert!(
            status["config"]["original"]
                .as_str()
                .unwrap()
                .contains("grafana-default-email")
        );
        assert!(status["uptime"].as_str().unwrap().ends_with('Z'));
        assert!(status["versionInfo"]["version"].is_string());
    }
);

tandem_http::cluster_tests!(
    posted_alerts_are_shared_and_bad_posts_change_nothing,
    2,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let starts = rfc3339(-60_000);
        let posted = json!([
            {"labels": {"alertname": "DiskFull", "team": "db", "instance": "db1:9100"},
             "annotations": {"summary": "disk full"},
             "startsAt": starts,
             "generatorURL": "http://prometheus:9090/graph?g0.expr=disk"},
            {"labels": {"alertname": "Gone", "team": "web"},
             "startsAt": rfc3339(-120_000), "endsAt": rfc3339(-60_000)},
        ]);
        let response = as_admin("POST", &a, &format!("{V2}/alerts"), posted).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let all = as_admin_ok("GET", &b, &format!("{V2}/alerts"), json!(null))
            .await
            .json();
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), 1, "the resolved one is not listed: {all:?}");
        let disk = &all[0];
        assert_eq!(disk["labels"]["instance"], "db1:9100");
        assert_eq!(disk["annotations"]["summary"], "disk full");
        assert_eq!(
            disk["generatorURL"],
            "http://prometheus:9090/graph?g0.expr=disk"
        );
        assert_eq!(disk["startsAt"].as_str().unwrap(), starts);
        assert_eq!(disk["status"]["state"], "active");
        assert_eq!(
            disk["receivers"],
            json!([{"name": "grafana-default-email"}])
        );
        let labels: Labels = serde_json::from_value(disk["labels"].clone()).unwrap();
        assert_eq!(disk["fingerprint"], fingerprint(&labels));
        let groups = as_admin_ok("GET", &a, &format!("{V2}/alerts/groups"), json!(null))
            .await
            .json();
        assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");

        // A mute timing in force on the db team's route: the alert is suppressed, muted by it.
        as_admin_ok(
            "POST",
            &a,
            "/api/v1/provisioning/mute-timings",
            json!({"name": "always", "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]}),
        )
        .await;
        as_admin_ok(
            "PUT",
            &a,
            "/api/v1/provisioning/policies",
            json!({"receiver": "grafana-default-email", "group_by": ["alertname"], "routes": [
                {"receiver": "grafana-default-email", "object_matchers": [["team", "=", "db"]],
                 "mute_time_intervals": ["always"]}]}),
        )
        .await;
        let all = as_admin_ok("GET", &b, &format!("{V2}/alerts"), json!(null))
            .await
            .json();
        assert_eq!(all[0]["status"]["state"], "suppressed", "{all}");
        assert_eq!(all[0]["status"]["mutedBy"], json!(["always"]));
        assert_eq!(all[0]["status"]["silencedBy"], json!([]));
        let active = as_admin_ok("GET", &b, &format!("{V2}/alerts?active=false"), json!(null))
            .await
            .json();
        assert_eq!(names(&active), ["DiskFull"]);

        // Viewers read but do not post; bad posts are refused whole and write nothing.
        create_user(&a, "am-poster", "poster-password").await;
        let viewer = basic("am-poster", "poster-password");
        let one = json!([{"labels": {"alertname": "ByViewer"}}]);
        let response = send("POST", &b, &format!("{V2}/alerts"), &viewer, one).await;
        assert_eq!(response.status, 403, "{}", response.text());
        for (body, fragment) in [
            (json!({"labels": {"a": "b"}}), "JSON array"),
            (
                json!([{"labels": {"alertname": "Fine"}}, {"labels": {}}]),
                "alert 1: at least one label pair",
            ),
            (json!([{"labels": {"0bad": "x"}}]), "invalid label name"),
            (
                json!([{"labels": {"alertname": "T"}, "startsAt": "soon"}]),
                "startsAt",
            ),
            (
                json!([{"labels": {"alertname": "T"}, "startsAt": rfc3339(0), "endsAt": rfc3339(-HOUR)}]),
                "before end time",
            ),
        ] {
            refused(
                &as_admin("POST", &a, &format!("{V2}/alerts"), body).await,
                400,
                fragment,
            );
        }
        let all = as_admin_ok("GET", &b, &format!("{V2}/alerts"), json!(null))
            .await
            .json();
        assert_eq!(names(&all), ["DiskFull"], "nothing else was written");
    }
);
