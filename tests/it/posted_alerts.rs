//! Alerts posted to the Alertmanager v2 API of real `tandem-server` processes.
//!
//! A real Prometheus server lists two instances as its Alertmanagers and fires a rule
//! into both every second: the group is notified once, a silence made through one
//! instance mutes the other rule on both, and both instances list the alerts. And three
//! instances take 1 000 posted alert groups firing at once, then resolving: every group
//! is notified firing exactly once and resolved exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{Value, json};
use tandem::storage::testkit::TestDatabase;
use tandem_datasources::testkit::prometheus::{PrometheusOptions, TestPrometheus};

use crate::notifications::{Log, START_DEADLINE, call, receiver, spawn, spawn_with};

const V2: &str = "/api/alertmanager/grafana/api/v2";

/// Makes `hook` the org's only receiver: every alert grouped by `alertname`, sent 1 s
/// after its group appears or changes.
async fn route_to(url: &str, hook: &str) {
    let r = call(
        url,
        "POST",
        "/api/v1/provisioning/contact-points",
        json!({"name": "hook", "type": "webhook", "settings": {"url": hook}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = call(url, "PUT", "/api/v1/provisioning/policies", json!({"receiver": "hook", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})).await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// Accepted deliveries per (alertname, status).
fn accepted(log: &Log) -> HashMap<(String, String), Vec<Value>> {
    let mut out: HashMap<(String, String), Vec<Value>> = HashMap::new();
    for (_, status, _, body) in log.lock().unwrap().iter() {
        if *status != 200 {
            continue;
        }
        let name = body["commonLabels"]["alertname"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let state = body["status"].as_str().unwrap_or("").to_owned();
        out.entry((name, state)).or_default().push(body.clone());
    }
    out
}

async fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + deadline;
    while !done() {
        assert!(tokio::time::Instant::now() < until, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const RULES: &str = "groups:
- name: tandem
  interval: 1s
  rules:
  - alert: PrometheusFires
    expr: vector(1)
    labels:
      team: db
    annotations:
      summary: fired by Prometheus
  - alert: PrometheusSilenced
    expr: vector(1)
    labels:
      team: web
";

tandem::storage::backend_tests!(
    a_prometheus_server_fires_into_two_instances_and_is_notified_once,
    |test: TestDatabase| async move {
        let (hook, log) = receiver(Arc::new(AtomicBool::new(false))).await;
        let mut processes: Vec<_> = (0..2).map(|i| spawn(&test, &format!("p{i}"))).collect();
        for p in &mut processes {
            p.wait_healthy(START_DEADLINE).await;
        }
        let (a, b) = (processes[0].url(), processes[1].url());
        route_to(&a, &hook).await;
        // Made through B before anything fires: mutes the web team's rule on both.
        let r = call(
            &b,
            "POST",
            &format!("{V2}/silences"),
            json!({
            "matchers": [{"name": "team", "value": "web", "isRegex": false, "isEqual": true}],
            "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "test", "comment": "web is muted"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let silence = r.json()["silenceID"].as_str().unwrap().to_owned();

        let targets: Vec<String> = [&a, &b]
            .iter()
            .map(|u| format!("\"{}\"", u.trim_start_matches("http://")))
            .collect();
        let options = PrometheusOptions {
            extra_config: format!(
                "rule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  - path_prefix: /api/alertmanager/grafana\n    basic_auth: {{username: admin, password: admin}}\n    static_configs:\n    - targets: [{}]\n",
                targets.join(", ")
            ),
            files: vec![("rules.yml".to_owned(), RULES.to_owned())],
            args: vec!["--rules.alert.resend-delay=1s".to_owned()],
            ..PrometheusOptions::default()
        };
        let now_s = tandem::storage::now_ms() / 1000;
        let data = format!("# TYPE tandem_seed gauge\ntandem_seed 1 {now_s}\n");
        let Some(prometheus) = TestPrometheus::start(&data, options).await else {
            return;
        };
        let fires = ("PrometheusFires".to_owned(), "firing".to_owned());
        wait_for(
            "the Prometheus alert notified",
            Duration::from_secs(60),
            || accepted(&log).contains_key(&fires),
        )
        .await;
        // Prometheus posts both alerts to both instances every second: several rounds in
        // which a duplicate, or the silenced rule, would show.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let seen = accepted(&log);
        assert_eq!(
            seen.len(),
            1,
            "only the unsilenced group: {:?}",
            seen.keys()
        );
        let bodies = &seen[&fires];
        assert_eq!(bodies.len(), 1, "notified once: {bodies:?}");
        let alert = &bodies[0]["alerts"][0];
        assert_eq!(alert["labels"]["team"], "db");
        assert_eq!(alert["annotations"]["summary"], "fired by Prometheus");
        let source = alert["generatorURL"].as_str().unwrap();
        assert!(
            source.contains("/graph?g0.expr=vector"),
            "the generator is Prometheus: {source}"
        );
        for url in [&a, &b] {
            let r = call(url, "GET", &format!("{V2}/alerts"), json!(null)).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let listed = r.json();
            let mut states: Vec<(String, String)> = listed
                .as_array()
                .unwrap()
                .iter()
                .map(|x| {
                    (
                        x["labels"]["alertname"].as_str().unwrap().to_owned(),
                        x["status"]["state"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            states.sort();
            assert_eq!(
                states,
                [
                    ("PrometheusFires".to_owned(), "active".to_owned()),
                    ("PrometheusSilenced".to_owned(), "suppressed".to_owned()),
                ],
                "{listed}"
            );
        }
        // Expired through A: the muted group is sent once, by whichever instance plans it.
        let r = call(
            &a,
            "DELETE",
            &format!("{V2}/silence/{silence}"),
            json!(null),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let muted = ("PrometheusSilenced".to_owned(), "firing".to_owned());
        wait_for(
            "the unmuted alert notified",
            Duration::from_secs(30),
            || accepted(&log).contains_key(&muted),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let seen = accepted(&log);
        assert_eq!(seen[&muted].len(), 1);
        assert_eq!(seen[&fires].len(), 1);
        drop(prometheus);
    }
);

const MANY: usize = 1_000;

fn batch(from: usize, to: usize, ends_at: Option<&str>) -> Value {
    let alerts: Vec<Value> = (from..to)
        .map(|i| {
            let mut a = json!({
                "labels": {"alertname": format!("Group{i:04}"), "team": "db"},
                "annotations": {"summary": format!("group {i}")},
                "startsAt": "2026-01-01T00:00:00Z",
            });
            if let Some(ends) = ends_at {
                a["endsAt"] = json!(ends);
            }
            a
        })
        .collect();
    Value::Array(alerts)
}

tandem::storage::backend_tests!(
    a_thousand_posted_groups_are_notified_once_firing_and_once_resolved,
    |test: TestDatabase| async move {
        let (hook, log) = receiver(Arc::new(AtomicBool::new(false))).await;
        // Three processes on one SQLite file take turns at its one write lock; with another
        // test's processes loading the two cores too, an outcome's write has waited longer
        // than the default 2 s lease (and its grace), and a delivered notification was
        // taken over and sent again. Sending once holds while a write takes less than the
        // lease (docs/ha.md), so on SQLite the lease is the one docs/configuration.md
        // advises for processes sharing a file.
        let mut processes: Vec<_> = (0..3)
            .map(|i| {
                let id = format!("m{i}");
                if test.backend() == tandem::storage::Backend::Sqlite {
                    spawn_with(
                        &test,
                        &id,
                        &[("GF_CLUSTER_NOTIFICATION_CLAIM_TIMEOUT", "5s")],
                    )
                } else {
                    spawn(&test, &id)
                }
            })
            .collect();
        for p in &mut processes {
            p.wait_healthy(START_DEADLINE).await;
        }
        let urls: Vec<String> = processes.iter().map(|p| p.url()).collect();
        route_to(&urls[0], &hook).await;
        // Every alert is posted to every instance, as a Prometheus server listing all
        // three posts; each instance takes a third of them first.
        for (n, url) in urls.iter().enumerate() {
            let r = call(url, "POST", &format!("{V2}/alerts"), batch(0, MANY, None)).await;
            assert_eq!(r.status, 200, "instance {n}: {}", r.text());
        }
        let firing = |log: &Log| {
            accepted(log)
                .iter()
                .filter(|((_, s), _)| s == "firing")
                .count()
        };
        wait_for("1 000 groups firing", Duration::from_secs(120), || {
            firing(&log) >= MANY
        })
        .await;
        let ended = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        for url in &urls {
            let r = call(
                url,
                "POST",
                &format!("{V2}/alerts"),
                batch(0, MANY, Some(&ended)),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
        }
        let resolved = |log: &Log| {
            accepted(log)
                .iter()
                .filter(|((_, s), _)| s == "resolved")
                .count()
        };
        wait_for("1 000 groups resolved", Duration::from_secs(120), || {
            resolved(&log) >= MANY
        })
        .await;
        // Quiet time in which a duplicate would show.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let seen = accepted(&log);
        assert_eq!(seen.len(), 2 * MANY, "every group firing and resolved");
        let twice: Vec<_> = seen
            .iter()
            .filter(|(_, v)| v.len() != 1)
            .map(|(k, _)| k)
            .collect();
        if !twice.is_empty() {
            // What the instances said about claims, to tell a take-over from a re-plan.
            let said: Vec<String> = processes
                .iter()
                .flat_map(|p| {
                    p.logs()
                        .lines()
                        .filter(|l| {
                            l.contains("claim") || l.contains("took over") || l.contains("WARN")
                        })
                        .map(|l| format!("{}: {l}", p.instance_id()))
                        .collect::<Vec<_>>()
                })
                .take(200)
                .collect();
            panic!("notified more than once: {twice:?}\n{}", said.join("\n"));
        }
        for ((_, state), bodies) in &seen {
            assert_eq!(bodies[0]["alerts"].as_array().unwrap().len(), 1);
            assert_eq!(bodies[0]["alerts"][0]["status"], state.as_str());
        }
    }
);
