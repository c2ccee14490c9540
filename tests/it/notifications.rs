//! Notifications with real `tandem-server` processes: three instances, alert groups firing,
//! a webhook receiver started by the test that answers 500 until the instance holding the
//! claims is SIGKILLed (or SIGSTOPped for 10 s); a survivor delivers each group once.
//! A silence made through one process mutes what another sends, until it is expired
//! through that other one. And SIGKILLing every process while the groups fire, then
//! starting new ones on the database, sends nothing again before `repeat_interval`.
//!
//! The runs use 1 s rule intervals and `group_wait`, and the default claim timeout (2 s).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tandem::http::testkit::http::{self, ADMIN};
use tandem::http::testkit::{ServerProcess, database_env};
use tandem::storage::sea_orm::{ConnectionTrait, Statement};
use tandem::storage::testkit::TestDatabase;

pub(crate) const START_DEADLINE: Duration = Duration::from_secs(60);
const GROUPS: usize = 4;

pub(crate) use crate::receiver::{Log, receiver};

pub(crate) fn spawn(test: &TestDatabase, id: &str) -> ServerProcess {
    spawn_with(test, id, &[])
}

/// [`spawn`] with more settings.
pub(crate) fn spawn_with(test: &TestDatabase, id: &str, more: &[(&str, &str)]) -> ServerProcess {
    let mut env = database_env(&test.settings());
    for (key, value) in [
        ("GF_CLUSTER_INSTANCE_ID", id),
        ("GF_UNIFIED_ALERTING_MIN_INTERVAL", "1s"),
        ("GF_CLUSTER_NOTIFICATION_POLL_INTERVAL", "200ms"),
    ]
    .iter()
    .chain(more)
    {
        env.push(((*key).to_owned(), (*value).to_owned()));
    }
    ServerProcess::spawn(&env)
}

pub(crate) async fn call(url: &str, method: &str, path: &str, body: Value) -> http::HttpResponse {
    let headers = [ADMIN, ("content-type", "application/json")];
    http::request(method, &format!("{url}{path}"), &headers, body.to_string())
        .await
        .expect("a request")
}

/// Three processes, `GROUPS` rules firing, the receiver failing; returns the processes,
/// the receiver's log and its switch, once some instance holds pending notifications:
/// (index of the holder).
async fn setup(test: &TestDatabase) -> (Vec<ServerProcess>, Log, Arc<AtomicBool>, usize) {
    let fail = Arc::new(AtomicBool::new(true));
    let (hook, log) = receiver(fail.clone()).await;
    let mut processes: Vec<_> = (0..3).map(|i| spawn(test, &format!("n{i}"))).collect();
    for p in &mut processes {
        p.wait_healthy(START_DEADLINE).await;
    }
    let url = processes[0].url();
    let r = call(
        &url,
        "POST",
        "/api/v1/provisioning/contact-points",
        json!({"name": "hook", "type": "webhook", "settings": {"url": hook}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = call(&url, "PUT", "/api/v1/provisioning/policies", json!({"receiver": "hook", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = call(
        &url,
        "POST",
        "/api/folders",
        json!({"uid": "alerts", "title": "Alerts"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rules: Vec<Value> = (0..GROUPS)
        .map(|i| {
            json!({"grafana_alert": {"title": format!("Rule {i}"), "condition": "A", "data": [
            {"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "math", "expression": "1"}}]}, "for": "0s"})
        })
        .collect();
    let r = call(
        &url,
        "POST",
        "/api/ruler/grafana/api/v1/rules/alerts",
        json!({"name": "many", "interval": "1s", "rules": rules}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // Wait until notifications are pending and being attempted; find their holder.
    let db = test.connect().await;
    let conn = db.connection();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT holder FROM alert_notification_log WHERE status = 'pending'",
            ))
            .await
            .unwrap();
        let holders: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "holder").unwrap())
            .collect();
        if holders.len() >= GROUPS && !log.lock().unwrap().is_empty() {
            let counts = (0..3).map(|i| {
                holders
                    .iter()
                    .filter(|h| h.starts_with(&format!("n{i}/")))
                    .count()
            });
            let victim = counts
                .enumerate()
                .max_by_key(|(_, n)| *n)
                .map(|(i, _)| i)
                .unwrap();
            return (processes, log, fail, victim);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pending notifications: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn delivered(log: &Log) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (key, status, _, _) in log.lock().unwrap().iter() {
        if *status == 200 {
            *out.entry(key.clone()).or_insert(0) += 1;
        }
    }
    out
}

tandem::storage::backend_tests!(
    a_killed_senders_notifications_are_sent_once_by_a_survivor,
    |test: TestDatabase| async move {
        let (mut processes, log, fail, victim) = setup(&test).await;
        processes[victim].kill().await;
        let killed_at = tandem::storage::now_ms();
        fail.store(false, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while delivered(&log).len() < GROUPS {
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivered: {:?}",
                delivered(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let last = log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.1 == 200)
            .map(|e| e.2)
            .max()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let counts = delivered(&log);
        assert_eq!(counts.len(), GROUPS, "{counts:?}");
        assert!(
            counts.values().all(|n| *n == 1),
            "a group was delivered twice: {counts:?}"
        );
        // Claim timeout 2 s, a take-over scan every 0.5 s, slack for a loaded machine.
        assert!(
            last - killed_at <= 4_000,
            "delivered {} ms after the kill",
            last - killed_at
        );
    }
);

tandem::storage::backend_tests!(
    a_stalled_sender_stays_silent_after_a_survivor_sent,
    |test: TestDatabase| async move {
        let (processes, log, fail, victim) = setup(&test).await;
        processes[victim].pause();
        fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        processes[victim].resume();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let counts = delivered(&log);
        assert_eq!(counts.len(), GROUPS, "{counts:?}");
        assert!(
            counts.values().all(|n| *n == 1),
            "a group was delivered twice: {counts:?}"
        );
    }
);

/// The groups delivered (status 200) whose key names `alertname`.
fn delivered_for(log: &Log, alertname: &str) -> usize {
    let needle = format!("alertname=\"{alertname}\"");
    log.lock()
        .unwrap()
        .iter()
        .filter(|(key, status, _, _)| *status == 200 && key.contains(&needle))
        .count()
}

tandem::storage::backend_tests!(
    a_silence_made_on_one_process_mutes_the_others_until_it_expires,
    |test: TestDatabase| async move {
        let fail = Arc::new(AtomicBool::new(false));
        let (hook, log) = receiver(fail).await;
        let mut processes: Vec<_> = (0..2).map(|i| spawn(&test, &format!("s{i}"))).collect();
        for p in &mut processes {
            p.wait_healthy(START_DEADLINE).await;
        }
        let (a, b) = (processes[0].url(), processes[1].url());
        let r = call(
            &a,
            "POST",
            "/api/v1/provisioning/contact-points",
            json!({"name": "hook", "type": "webhook", "settings": {"url": hook}}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let r = call(&a, "PUT", "/api/v1/provisioning/policies", json!({"receiver": "hook", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})).await;
        assert_eq!(r.status, 202, "{}", r.text());
        // Made through A's Alertmanager API; only B's dispatcher runs once the rules fire.
        let r = call(&a, "POST", "/api/alertmanager/grafana/api/v2/silences", json!({
            "matchers": [{"name": "alertname", "value": "Rule 0", "isRegex": false, "isEqual": true}],
            "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "test", "comment": "muted"})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.json()["silenceID"].as_str().unwrap().to_owned();
        processes[0].kill().await;
        let r = call(
            &b,
            "POST",
            "/api/folders",
            json!({"uid": "alerts", "title": "Alerts"}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let rules: Vec<Value> = (0..2)
            .map(|i| {
                json!({"grafana_alert": {"title": format!("Rule {i}"), "condition": "A", "data": [
                {"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                 "model": {"type": "math", "expression": "1"}}]}, "for": "0s"})
            })
            .collect();
        let r = call(
            &b,
            "POST",
            "/api/ruler/grafana/api/v1/rules/alerts",
            json!({"name": "muted", "interval": "1s", "rules": rules}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered_for(&log, "Rule 1") == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Rule 1 was not notified"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Many evaluations and plan passes later, the silenced group is still not sent.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(delivered_for(&log, "Rule 0"), 0, "the silence mutes B");
        let r = call(
            &b,
            "DELETE",
            &format!("/api/alertmanager/grafana/api/v2/silence/{id}"),
            json!(null),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while delivered_for(&log, "Rule 0") == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Rule 0 was not notified after its silence expired"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(delivered_for(&log, "Rule 0"), 1);
        assert_eq!(delivered_for(&log, "Rule 1"), 1);
    }
);

tandem::storage::backend_tests!(
    restarting_every_process_sends_nothing_again_before_repeat_interval,
    |test: TestDatabase| async move {
        let (mut processes, log, fail, _) = setup(&test).await;
        fail.store(false, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered(&log).len() < GROUPS {
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivered: {:?}",
                delivered(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Every notification recorded as sent (a SIGKILL between a delivery and its record
        // is the window an `Idempotency-Key` covers, documented in docs/ha.md, not what this
        // test is about) ...
        let db = test.connect().await;
        let conn = db.connection();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let rows = conn
                .query_all_raw(Statement::from_string(
                    conn.get_database_backend(),
                    "SELECT status FROM alert_notification_log WHERE status = 'pending'",
                ))
                .await
                .unwrap();
            if rows.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} notifications still pending",
                rows.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ... then every process SIGKILLed while the rules fire, and a new cluster on the
        // database.
        for p in &mut processes {
            p.kill().await;
        }
        let mut restarted: Vec<_> = (0..3).map(|i| spawn(&test, &format!("r{i}"))).collect();
        for p in &mut restarted {
            p.wait_healthy(START_DEADLINE).await;
        }
        // The new processes do send: an alert posted now is delivered once.
        let url = restarted[1].url();
        let r = call(
            &url,
            "POST",
            "/api/alertmanager/grafana/api/v2/alerts",
            json!([{"labels": {"alertname": "AfterRestart"}}]),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered_for(&log, "AfterRestart") == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the restarted cluster sent nothing"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Many evaluations, plan passes and group intervals later (repeat_interval 1 h),
        // no group was sent again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let counts = delivered(&log);
        assert_eq!(counts.len(), GROUPS + 1, "{counts:?}");
        assert!(
            counts.values().all(|n| *n == 1),
            "a group was sent again after the restart: {counts:?}"
        );
    }
);
