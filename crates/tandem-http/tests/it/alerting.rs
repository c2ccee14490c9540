//! Alerting over HTTP: the provisioning, Ruler and Prometheus-style APIs of in-process
//! instances on one database, evaluation driven by testdata's `predictable_pulse`, both
//! evaluation modes, and state that survives a restart of every instance.
//!
//! The tests run with `[unified_alerting] min_interval = 1s` and 1 s group intervals, so
//! that the 10 s timelines take seconds; the sharded exactly-once test runs the
//! issue's own schedule (30 rules at 10 s for a minute), on the three backends at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};
use tandem_http::testkit::{TestCluster, eventually, test_settings};
use tandem_http::{EvaluationMode, Server, Settings};

use crate::common::{as_admin, as_admin_ok, check};

/// Test settings: 1 s base interval.
pub(crate) fn fast(_: usize, settings: &mut Settings) {
    settings.alerting.min_interval = Duration::from_secs(1);
}

pub(crate) fn sharded(index: usize, settings: &mut Settings) {
    fast(index, settings);
    settings.alerting.mode = EvaluationMode::Sharded;
}

/// A testdata data source with uid `td`, and a folder `alerts`.
pub(crate) async fn fixtures(cluster: &TestCluster) {
    let store = tandem_datasources::SqlDataSourceStore::new(
        cluster.server(0).database().clone(),
        &Settings::default().identity.secret_key,
    );
    let spec: tandem_datasources::DataSourceSpec = serde_json::from_value(json!({
        "name": "TestData", "type": "grafana-testdata-datasource", "access": "proxy", "url": "",
        "user": "", "database": "", "basicAuth": false, "basicAuthUser": "", "withCredentials": false,
        "isDefault": false, "jsonData": {}, "secureJsonData": {}
    }))
    .expect("a data source spec");
    tandem_datasources::DataSourceStore::create(
        &store,
        tandem_datasources::NewDataSource {
            org_id: tandem_datasources::OrgId(1),
            uid: Some(tandem_datasources::DataSourceUid::from("td".to_owned())),
            spec,
        },
    )
    .await
    .expect("create the testdata data source");
    as_admin_ok(
        "POST",
        &cluster.url(0),
        "/api/folders",
        json!({"uid": "alerts", "title": "Alerts"}),
    )
    .await;
}

/// A rule on testdata: `A` the pulse, `B` its last value, `C` `B > 5`.
pub(crate) fn pulse_rule(title: &str, group: &str, pulse: Value, for_: &str) -> Value {
    json!({
        "folderUID": "alerts", "ruleGroup": group, "title": title, "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": 10, "to": 0}, "datasourceUid": "td",
             "model": {"scenarioId": "predictable_pulse", "pulseWave": pulse}},
            {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "reduce", "expression": "A", "reducer": "last"}},
            {"refId": "C", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "threshold", "expression": "B",
                       "conditions": [{"evaluator": {"type": "gt", "params": [5]}}]}}
        ],
        "noDataState": "NoData", "execErrState": "Error", "for": for_,
        "labels": {"team": "ops"},
        "annotations": {"summary": "value {{ $values.B.Value }}"}
    })
}

/// Always firing (`for` decides whether it is Pending first).
fn constant_rule(title: &str, group: &str, for_: &str) -> Value {
    json!({
        "folderUID": "alerts", "ruleGroup": group, "title": title, "condition": "A",
        "data": [{"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                  "model": {"type": "math", "expression": "1 > 0"}}],
        "noDataState": "NoData", "execErrState": "Error", "for": for_
    })
}

pub(crate) async fn set_interval(url: &str, group: &str, seconds: i64) {
    let current = as_admin_ok(
        "GET",
        url,
        &format!("/api/v1/provisioning/folder/alerts/rule-groups/{group}"),
        Value::Null,
    )
    .await
    .json();
    let mut body = current;
    body["interval"] = json!(seconds);
    as_admin_ok(
        "PUT",
        url,
        &format!("/api/v1/provisioning/folder/alerts/rule-groups/{group}"),
        body,
    )
    .await;
}

/// Every alert of the Prometheus-style API, by rule title: (state, activeAt).
async fn alerts_by_rule(url: &str) -> BTreeMap<String, (String, String)> {
    let body = as_admin_ok(
        "GET",
        url,
        "/api/prometheus/grafana/api/v1/alerts",
        Value::Null,
    )
    .await
    .json();
    body["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                (
                    a["state"].as_str().unwrap_or("").to_owned(),
                    a["activeAt"].as_str().unwrap_or("").to_owned(),
                ),
            )
        })
        .collect()
}

tandem_http::cluster_tests!(
    provisioning_api_keeps_grafanas_shapes_codes_and_messages,
    2,
    |cluster: TestCluster| async move {
        fixtures(&cluster).await;
        let (a, b) = (cluster.url(0), cluster.url(1));
        let rule = pulse_rule(
            "High",
            "g1",
            json!({"timeStep": 60, "onCount": 1, "offCount": 1, "onValue": 10, "offValue": 1}),
            "5m",
        );
        let created = as_admin("POST", &a, "/api/v1/provisioning/alert-rules", rule.clone()).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let created = created.json();
        let uid = created["uid"].as_str().expect("a generated uid").to_owned();
        assert_eq!(created["provenance"], "api");
        assert_eq!(created["for"], "5m");
        assert_eq!(created["orgID"], 1);
        assert_eq!(created["folderUID"], "alerts");
        // Another instance reads it, in the same shape.
        let read = as_admin_ok(
            "GET",
            &b,
            &format!("/api/v1/provisioning/alert-rules/{uid}"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(read["title"], "High");
        assert_eq!(read["data"][0]["model"]["scenarioId"], "predictable_pulse");
        let list = as_admin_ok("GET", &b, "/api/v1/provisioning/alert-rules", Value::Null)
            .await
            .json();
        assert_eq!(list.as_array().map(Vec::len), Some(1));

        // Validation: 400 with Grafana's messages, and nothing written.
        let cases: Vec<(Value, &str)> = vec![
            (
                {
                    let mut r = rule.clone();
                    r["condition"] = json!("Z");
                    r
                },
                "invalid alert rule: condition Z does not exist, must be one of [A,B,C]",
            ),
            (
                {
                    let mut r = rule.clone();
                    r["data"][0]["datasourceUid"] = json!("nope");
                    r
                },
                "invalid alert rule: failed to build query 'A': data source not found",
            ),
            (
                {
                    let mut r = rule.clone();
                    r["title"] = json!("x".repeat(191));
                    r
                },
                "invalid alert rule: alert rule title is too long. Max length is 190",
            ),
            (
                {
                    let mut r = rule.clone();
                    r["folderUID"] = json!("missing");
                    r
                },
                "invalid alert rule: folder does not exist",
            ),
            (
                {
                    let mut r = rule.clone();
                    r["for"] = json!("5 minutes");
                    r
                },
                "bad request data: not a valid duration string: \"5 minutes\"",
            ),
            (
                {
                    let mut r = rule.clone();
                    r["title"] = json!("High");
                    r["uid"] = json!("other");
                    r
                },
                "a conflicting alert rule is found: rule title under the same organisation and folder should be unique",
            ),
        ];
        for (body, message) in cases {
            check(
                &as_admin("POST", &a, "/api/v1/provisioning/alert-rules", body).await,
                400,
                message,
            );
        }
        let mut cyclic = rule.clone();
        cyclic["data"][1]["model"]["expression"] = json!("C");
        let response = as_admin("POST", &a, "/api/v1/provisioning/alert-rules", cyclic).await;
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("cycle"),
            "{}",
            response.text()
        );
        let group = json!({"title": "g1", "folderUid": "alerts", "interval": 15, "rules": null});
        check(
            &as_admin(
                "PUT",
                &a,
                "/api/v1/provisioning/folder/alerts/rule-groups/g1",
                group,
            )
            .await,
            400,
            "invalid alert rule: interval (15s) should be non-zero and divided exactly by scheduler interval: 10",
        );
        let list = as_admin_ok("GET", &a, "/api/v1/provisioning/alert-rules", Value::Null)
            .await
            .json();
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(1),
            "a refused write writes nothing"
        );

        // Update (200) and X-Disable-Provenance.
        let mut changed = rule.clone();
        changed["title"] = json!("Higher");
        let updated = as_admin_ok(
            "PUT",
            &b,
            &format!("/api/v1/provisioning/alert-rules/{uid}"),
            changed,
        )
        .await
        .json();
        assert_eq!(updated["title"], "Higher");
        let mut plain = constant_rule("Plain", "g1", "0s");
        let headers = [
            ("authorization", tandem_http::testkit::http::ADMIN.1),
            ("x-disable-provenance", "true"),
        ];
        plain["uid"] = json!("plain");
        let response = tandem_http::testkit::http::request(
            "POST",
            &format!("{a}/api/v1/provisioning/alert-rules"),
            &headers,
            plain.to_string(),
        )
        .await
        .unwrap();
        assert_eq!(response.status, 201, "{}", response.text());
        assert!(
            response.json().get("provenance").is_none(),
            "{}",
            response.text()
        );

        // The group: GET, export as YAML and JSON, then PUT its interval.
        let group = as_admin_ok(
            "GET",
            &a,
            "/api/v1/provisioning/folder/alerts/rule-groups/g1",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(
            (group["title"].as_str(), group["interval"].as_i64()),
            (Some("g1"), Some(60))
        );
        assert_eq!(group["rules"].as_array().map(Vec::len), Some(2));
        let yaml = as_admin_ok(
            "GET",
            &a,
            "/api/v1/provisioning/folder/alerts/rule-groups/g1/export",
            Value::Null,
        )
        .await;
        assert!(
            yaml.header("content-type")
                .is_some_and(|c| c.contains("yaml"))
        );
        assert!(
            yaml.text().contains("folder: \"Alerts\""),
            "{}",
            yaml.text()
        );
        let exported = as_admin_ok(
            "GET",
            &a,
            &format!("/api/v1/provisioning/alert-rules/{uid}/export?format=json"),
            Value::Null,
        )
        .await
        .json();
        assert_eq!(exported["apiVersion"], 1);
        assert_eq!(exported["groups"][0]["interval"], "1m");
        assert_eq!(exported["groups"][0]["rules"][0]["uid"], uid.as_str());
        set_interval(&b, "g1", 120).await;
        let read = as_admin_ok(
            "GET",
            &a,
            &format!("/api/v1/provisioning/alert-rules/{uid}"),
            Value::Null,
        )
        .await
        .json();
        assert!(read["updated"].is_string());
        assert_eq!(read["ruleGroup"], "g1");

        // The Ruler API: folder → groups.
        let ruler = as_admin_ok("GET", &b, "/api/ruler/grafana/api/v1/rules", Value::Null)
            .await
            .json();
        assert_eq!(ruler["Alerts"][0]["name"], "g1");
        assert_eq!(ruler["Alerts"][0]["interval"], "2m");
        assert_eq!(
            ruler["Alerts"][0]["rules"][0]["grafana_alert"]["uid"],
            uid.as_str()
        );
        let post = json!({"name": "ruler-group", "interval": "10s", "rules": [{"grafana_alert": {"title": "From the ruler", "condition": "A",
            "data": [{"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__", "model": {"type": "math", "expression": "0"}}]}, "for": "0s"}]});
        let posted = as_admin(
            "POST",
            &a,
            "/api/ruler/grafana/api/v1/rules/alerts",
            post.clone(),
        )
        .await;
        assert_eq!(posted.status, 202, "{}", posted.text());
        assert_eq!(posted.json()["message"], "rule group updated successfully");
        let group = as_admin(
            "GET",
            &b,
            "/api/ruler/grafana/api/v1/rules/alerts/ruler-group",
            Value::Null,
        )
        .await;
        assert_eq!(group.status, 202);
        assert_eq!(
            group.json()["rules"][0]["grafana_alert"]["title"],
            "From the ruler"
        );
        check(
            &as_admin(
                "GET",
                &b,
                "/api/ruler/grafana/api/v1/rules/nope",
                Value::Null,
            )
            .await,
            404,
            "folder not found",
        );
        let deleted = as_admin(
            "DELETE",
            &b,
            "/api/ruler/grafana/api/v1/rules/alerts/ruler-group",
            Value::Null,
        )
        .await;
        assert_eq!(deleted.status, 202);

        // Delete: 204, then 404.
        let response = as_admin(
            "DELETE",
            &a,
            &format!("/api/v1/provisioning/alert-rules/{uid}"),
            Value::Null,
        )
        .await;
        assert_eq!(response.status, 204);
        check(
            &as_admin(
                "GET",
                &b,
                &format!("/api/v1/provisioning/alert-rules/{uid}"),
                Value::Null,
            )
            .await,
            404,
            "could not find alert rule",
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    a_pulse_drives_a_rule_through_its_states_and_every_instance_answers_the_same,
    3,
    fast,
    |cluster: TestCluster| async move {
        fixtures(&cluster).await;
        let url = cluster.url(0);
        // On for 6 s, off for 6 s; `for` 2 s: Pending, then Alerting, then Normal.
        let rule = pulse_rule(
            "Pulse",
            "pulse",
            json!({"timeStep": 2, "onCount": 3, "offCount": 3, "onValue": 10, "offValue": 1}),
            "2s",
        );
        as_admin_ok("POST", &url, "/api/v1/provisioning/alert-rules", rule).await;
        set_interval(&url, "pulse", 1).await;
        let mut seen: Vec<String> = Vec::new();
        let order = ["Pending", "Alerting", "Normal"];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((state, _)) = alerts_by_rule(&url).await.get("Pulse")
                && seen.last() != Some(state)
            {
                seen.push(state.clone());
            }
            let mut at = 0;
            for state in &seen {
                if order.get(at) == Some(&state.as_str()) {
                    at += 1;
                }
            }
            if at == order.len() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pulse goes Pending, Alerting, Normal: saw {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every instance answers the rules and alerts APIs alike (they read one database).
        eventually("the three instances agree", Duration::from_secs(20), || {
            let urls = cluster.urls();
            async move {
                let mut answers = Vec::new();
                for url in &urls {
                    let rules = as_admin(
                        "GET",
                        url,
                        "/api/prometheus/grafana/api/v1/rules",
                        Value::Null,
                    )
                    .await
                    .json();
                    let alerts = alerts_by_rule(url).await;
                    answers.push((
                        rules["data"]["groups"][0]["rules"][0]["alerts"].clone(),
                        rules["data"]["totals"].clone(),
                        alerts,
                    ));
                }
                answers.windows(2).all(|w| w[0] == w[1])
            }
        })
        .await;
        let rules = as_admin_ok(
            "GET",
            &url,
            "/api/prometheus/grafana/api/v1/rules",
            Value::Null,
        )
        .await
        .json();
        let group = &rules["data"]["groups"][0];
        assert_eq!(group["file"], "Alerts");
        assert_eq!(group["rules"][0]["health"], "ok");
        assert_eq!(group["rules"][0]["type"], "alerting");
        assert_ne!(group["rules"][0]["lastEvaluation"], "0001-01-01T00:00:00Z");
        let alert = &group["rules"][0]["alerts"][0];
        assert_eq!(alert["labels"]["team"], "ops");
        assert_eq!(alert["labels"]["grafana_folder"], "Alerts");
        assert!(
            alert["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("value ")),
            "{alert}"
        );
        let filtered = as_admin_ok(
            "GET",
            &url,
            "/api/prometheus/grafana/api/v1/rules?state=error",
            Value::Null,
        )
        .await
        .json();
        assert_eq!(
            filtered["data"]["groups"][0]["rules"]
                .as_array()
                .map(Vec::len),
            Some(0)
        );
        check(
            &as_admin(
                "GET",
                &url,
                "/api/prometheus/grafana/api/v1/rules?state=bogus",
                Value::Null,
            )
            .await,
            400,
            "unknown state 'bogus'",
        );
        let metrics = tandem_http::testkit::http::get(&format!("{url}/metrics"))
            .await
            .text();
        assert!(
            metrics.contains("grafana_alerting_rule_evaluations_total"),
            "metrics are exported"
        );
        assert!(metrics.contains("grafana_alerting_alerts{state=\"alerting\"}"));
        cluster.shutdown().await;
    }
);

/// The sharded scenario at its own scale: 3 instances, 30 rules at 10 s, watched
/// for 60 s. The backends run at once (the minute is mostly waiting), one test thread.
const SHARDED_RULES: usize = 30;
const SHARDED_INTERVAL_MS: i64 = 10_000;
const SHARDED_WINDOW_MS: i64 = 60_000;

tandem_http::cluster_tests!(
    concurrently sharded_instances_evaluate_each_slot_once_and_take_over_a_leavers_rules,
    3,
    sharded,
    |mut cluster: TestCluster| async move {
        fixtures(&cluster).await;
        let url = cluster.url(0);
        let rules: Vec<Value> = (0..SHARDED_RULES)
            .map(|i| {
                json!({"grafana_alert": {"title": format!("Rule {i}"), "condition": "A", "data": [
                    {"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                     "model": {"type": "math", "expression": "1 > 0"}}]}, "for": "0s"})
            })
            .collect();
        let mut receivers: Vec<_> = (0..3)
            .map(|i| cluster.server(i).alerting_evaluations())
            .collect();
        let posted = as_admin(
            "POST",
            &url,
            "/api/ruler/grafana/api/v1/rules/alerts",
            json!({"name": "many", "interval": "10s", "rules": rules}),
        )
        .await;
        assert_eq!(posted.status, 202, "{}", posted.text());
        let drain = |receivers: &mut Vec<tokio::sync::broadcast::Receiver<tandem_http::Evaluated>>,
                     into: &mut Vec<tandem_http::Evaluated>| {
            for rx in receivers.iter_mut() {
                loop {
                    match rx.try_recv() {
                        Ok(event) => into.push(event),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                            panic!("the test lost {n} evaluation records")
                        }
                        Err(_) => break,
                    }
                }
            }
        };
        let no_slot_twice = |events: &[tandem_http::Evaluated]| {
            let mut seen = HashMap::new();
            for event in events {
                if let Some(first) = seen.insert((event.rule_uid.clone(), event.slot), &event.instance_id) {
                    panic!(
                        "slot {} of {} evaluated twice, by {first} and {}",
                        event.slot, event.rule_uid, event.instance_id
                    );
                }
            }
        };
        let mut events = Vec::new();
        // Settle: until each instance has evaluated some rules, the three have met and the
        // shards have moved to their owners; a hand-over in flight ends within a peer timeout.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            drain(&mut receivers, &mut events);
            let busy: HashSet<&str> = events.iter().map(|e| &*e.instance_id).collect();
            if busy.len() == 3 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "every instance evaluates some rules: {busy:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let from = tandem_storage::now_ms() + 2_000;
        let until = from + SHARDED_WINDOW_MS;
        // The window's last evaluations are announced once they finished.
        while tandem_storage::now_ms() < until + 2_000 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drain(&mut receivers, &mut events);
        }
        no_slot_twice(&events);
        // Exactly once: each rule's six slots in the minute, each by one instance.
        let mut slots: HashMap<&str, Vec<i64>> = HashMap::new();
        let mut by_instance: HashMap<&str, HashSet<&str>> = HashMap::new();
        for event in events.iter().filter(|e| (from..until).contains(&e.slot)) {
            slots.entry(event.rule_uid.as_str()).or_default().push(event.slot);
            by_instance
                .entry(&event.instance_id)
                .or_default()
                .insert(event.rule_uid.as_str());
        }
        assert_eq!(slots.len(), SHARDED_RULES, "every rule is evaluated in the minute");
        for (rule, slots) in &mut slots {
            slots.sort_unstable();
            let steps: Vec<i64> = slots.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(
                slots.len() == usize::try_from(SHARDED_WINDOW_MS / SHARDED_INTERVAL_MS).unwrap()
                    && steps.iter().all(|step| *step == SHARDED_INTERVAL_MS),
                "{rule}: slots {slots:?} in the minute from {from}, not each 10 s slot once"
            );
        }
        let owned: HashMap<&str, usize> = by_instance.iter().map(|(i, r)| (*i, r.len())).collect();
        assert_eq!(owned.len(), 3, "every instance owns some rules: {owned:?}");
        assert_eq!(
            owned.values().sum::<usize>(),
            SHARDED_RULES,
            "each rule has one owner: {by_instance:?}"
        );

        // One instance leaves: the others take its rules within peer_timeout + interval.
        let leaver = cluster.server(2).instance_id().to_owned();
        let left: HashSet<String> = by_instance
            .get(leaver.as_str())
            .into_iter()
            .flatten()
            .map(|r| (*r).to_owned())
            .collect();
        cluster.stop(2).await;
        receivers.truncate(2);
        let stopped = tandem_storage::now_ms();
        let mut resumed: HashMap<String, i64> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while resumed.len() < left.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the survivors evaluate the leaver's rules: {} of {}",
                resumed.len(),
                left.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            drain(&mut receivers, &mut events);
            for event in events.iter().filter(|e| e.slot > stopped && *e.instance_id != *leaver) {
                if left.contains(event.rule_uid.as_str()) {
                    let first = resumed.entry(event.rule_uid.to_string()).or_insert(event.slot);
                    *first = (*first).min(event.slot);
                }
            }
        }
        no_slot_twice(&events);
        // peer_timeout (2 s) + interval (10 s), plus an ownership tick and slack for a loaded
        // machine.
        for (rule, first) in &resumed {
            assert!(
                first - stopped <= 2_000 + SHARDED_INTERVAL_MS + 1_000,
                "{rule} resumed {} ms after its instance left",
                first - stopped
            );
        }
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    alert_state_survives_a_restart_of_every_instance,
    2,
    fast,
    |mut cluster: TestCluster| async move {
        fixtures(&cluster).await;
        let url = cluster.url(0);
        as_admin_ok(
            "POST",
            &url,
            "/api/v1/provisioning/alert-rules",
            constant_rule("Firing", "restart", "0s"),
        )
        .await;
        as_admin_ok(
            "POST",
            &url,
            "/api/v1/provisioning/alert-rules",
            constant_rule("Waiting", "restart", "1h"),
        )
        .await;
        set_interval(&url, "restart", 1).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let before = loop {
            let seen = alerts_by_rule(&url).await;
            if seen.get("Firing").is_some_and(|s| s.0 == "Alerting")
                && seen.get("Waiting").is_some_and(|s| s.0 == "Pending")
            {
                break seen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "one rule fires and one is pending: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        cluster.stop(0).await;
        cluster.stop(1).await;
        let mut restarted = Vec::new();
        for index in 0..2 {
            let mut settings = test_settings(cluster.database(), index);
            fast(index, &mut settings);
            restarted.push(Server::start(settings).await.expect("a restart"));
        }
        let mut events = restarted[0].alerting_evaluations();
        let mut evaluated = HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while evaluated.len() < 2 {
            let event = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("evaluations resume")
                .expect("an event");
            evaluated.insert(event.rule_uid);
        }
        let after = alerts_by_rule(&format!("http://{}", restarted[0].local_addr())).await;
        assert_eq!(
            after.get("Firing"),
            before.get("Firing"),
            "Alerting stays Alerting with the same activeAt"
        );
        assert_eq!(
            after.get("Waiting"),
            before.get("Waiting"),
            "Pending keeps its clock"
        );
        for server in restarted {
            server.shutdown().await.expect("a clean shutdown");
        }
    }
);

tandem_http::cluster_tests!(
    alert_rules_follow_their_folder_permissions_set_on_another_instance,
    2,
    fast,
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        fixtures(&cluster).await;
        as_admin_ok(
            "POST",
            &a,
            "/api/folders",
            json!({"uid": "open", "title": "Open"}),
        )
        .await;
        let editor = crate::common::create_user(&a, "ruth", "ruth password").await;
        as_admin_ok(
            "PATCH",
            &a,
            &format!("/api/org/users/{editor}"),
            json!({"role": "Editor"}),
        )
        .await;
        let ruth = crate::common::basic("ruth", "ruth password");
        let group = |name: &str| {
            json!({"name": name, "interval": "10s", "rules": [{"grafana_alert": {"title": name, "condition": "A",
                "data": [{"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__", "model": {"type": "math", "expression": "0"}}]}, "for": "0s"}]})
        };
        for folder in ["alerts", "open"] {
            let posted = as_admin(
                "POST",
                &a,
                &format!("/api/ruler/grafana/api/v1/rules/{folder}"),
                group(&format!("in-{folder}")),
            )
            .await;
            assert_eq!(posted.status, 202, "{}", posted.text());
        }
        // `alerts` keeps only the Viewer role; `open` keeps Grafana's defaults.
        check(
            &as_admin(
                "POST",
                &b,
                "/api/folders/alerts/permissions",
                json!({"items": [{"role": "Viewer", "permission": 1}]}),
            )
            .await,
            200,
            "Folder permissions updated",
        );
        let send = |method: &'static str, path: String, body: Value| {
            let (a, ruth) = (a.clone(), ruth.clone());
            async move { crate::common::send(method, &a, &path, &ruth, body).await }
        };
        // Reading: both folders are viewable.
        let all = send("GET", "/api/ruler/grafana/api/v1/rules".into(), Value::Null).await;
        assert_eq!(all.status, 200, "{}", all.text());
        let mut folders: Vec<String> = all
            .json()
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        folders.sort();
        assert_eq!(folders, ["Alerts", "Open"]);
        // Writing: Edit on `open` through the Editor role, only View on `alerts`.
        let denied = send(
            "POST",
            "/api/ruler/grafana/api/v1/rules/alerts".into(),
            group("ruths"),
        )
        .await;
        assert_eq!(denied.status, 403, "{}", denied.text());
        let denied = send(
            "DELETE",
            "/api/ruler/grafana/api/v1/rules/alerts/in-alerts".into(),
            Value::Null,
        )
        .await;
        assert_eq!(denied.status, 403, "{}", denied.text());
        let allowed = send(
            "POST",
            "/api/ruler/grafana/api/v1/rules/open".into(),
            group("ruths"),
        )
        .await;
        assert_eq!(allowed.status, 202, "{}", allowed.text());
        // No item at all on `alerts`: its rules disappear from every list.
        check(
            &as_admin(
                "POST",
                &b,
                "/api/folders/alerts/permissions",
                json!({"items": []}),
            )
            .await,
            200,
            "Folder permissions updated",
        );
        let all = send("GET", "/api/ruler/grafana/api/v1/rules".into(), Value::Null).await;
        let folders: Vec<String> = all
            .json()
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect();
        assert_eq!(folders, ["Open"], "{}", all.text());
        let hidden = send(
            "GET",
            "/api/ruler/grafana/api/v1/rules/alerts".into(),
            Value::Null,
        )
        .await;
        assert_eq!(hidden.status, 403, "{}", hidden.text());
        let prom = send(
            "GET",
            "/api/prometheus/grafana/api/v1/rules".into(),
            Value::Null,
        )
        .await;
        let names: Vec<String> = prom.json()["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["file"].as_str().unwrap_or("").to_owned())
            .collect();
        assert!(
            !names.iter().any(|file| file == "Alerts"),
            "{}",
            prom.text()
        );
        let admin_view = as_admin_ok("GET", &b, "/api/ruler/grafana/api/v1/rules", Value::Null)
            .await
            .json();
        assert!(
            admin_view["Alerts"].is_array(),
            "an org Admin sees every folder"
        );
        cluster.shutdown().await;
    }
);
