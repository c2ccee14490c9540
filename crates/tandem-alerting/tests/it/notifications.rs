//! Notifications sent once per alert group by three dispatchers sharing one database, to a
//! real HTTP receiver started by the test; claims fenced by their lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tandem_alerting::notify::contact::ContactPoint;
use tandem_alerting::notify::policy::Route;
use tandem_alerting::notify::store::{FlushPlan, NewGroup, NotificationStore, PlannedNotification};
use tandem_alerting::{
    AlertInstance, AlertStore, Dispatcher, DispatcherDeps, InstanceState, InstanceWrite, Labels,
    NotifySettings, OrgId, Provenance, SmtpSettings, SqlAlertStore, SqlNotificationStore,
    fingerprint,
};
use tandem_storage::testkit::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    idempotency_key: String,
    pub(crate) body: Value,
    answered: u16,
}

/// A webhook receiver on a loopback port that records every request and answers 500 to
/// the first `fail_first` requests of each idempotency key.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub(crate) async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let deliveries: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let recorded = deliveries.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let (head_end, length) = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            break (at + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let key = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("idempotency-key")
                                .then(|| value.trim().to_owned())
                        })
                        .unwrap_or_default();
                    let body: Value = serde_json::from_slice(&buf[head_end..head_end + length])
                        .unwrap_or(Value::Null);
                    let status = {
                        let mut all = recorded.lock().unwrap();
                        let seen = all
                            .iter()
                            .filter(|d: &&Delivery| d.idempotency_key == key)
                            .count();
                        let status = if seen < fail_first { 500 } else { 200 };
                        all.push(Delivery {
                            idempotency_key: key,
                            body,
                            answered: status,
                        });
                        status
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { url, deliveries }
    }

    pub(crate) fn accepted(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.answered == 200)
            .cloned()
            .collect()
    }
}

pub(crate) fn instance(rule: &str, team: &str, state: InstanceState, slot: i64) -> AlertInstance {
    let labels: Labels = [
        ("alertname".to_owned(), rule.to_owned()),
        ("grafana_folder".to_owned(), "Alerts".to_owned()),
        ("team".to_owned(), team.to_owned()),
    ]
    .into();
    AlertInstance {
        org_id: OrgId(1),
        rule_uid: rule.into(),
        fingerprint: fingerprint(&labels),
        labels,
        state,
        started_at: slot,
        last_slot: slot,
        last_eval_at: slot,
        resolved_at: (state == InstanceState::Normal).then_some(slot),
        written_at: slot,
        ..AlertInstance::default()
    }
}

pub(crate) async fn write(alerts: &SqlAlertStore, rules: usize, state: InstanceState, slot: i64) {
    for r in 0..rules {
        let rule = format!("rule-{r}");
        let ok = alerts
            .write_instances(InstanceWrite {
                org_id: OrgId(1),
                rule_uid: rule.as_str().into(),
                slot,
                upserts: vec![instance(&rule, "db", state, slot)],
                deletes: vec![],
                expected: Default::default(),
                history: None,
            })
            .await
            .unwrap();
        assert!(ok);
    }
}

pub(crate) async fn eventually(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn configure(store: &SqlNotificationStore, url: &str) {
    store.ensure_defaults(OrgId(1)).await.unwrap();
    let point = ContactPoint::from_request(
        "hook".into(),
        "hook".into(),
        "webhook".into(),
        serde_json::json!({"url": url, "username": "u", "password": "secret"})
            .as_object()
            .unwrap()
            .clone(),
        false,
        Provenance::Api,
        None,
    )
    .unwrap();
    store.create_contact_point(OrgId(1), &point).await.unwrap();
    set_policy(
        store,
        serde_json::json!({
            "receiver": "grafana-default-email", "group_by": ["alertname"],
            "routes": [{"receiver": "hook", "object_matchers": [["team", "=", "db"]],
                        "group_wait": "100ms", "group_interval": "300ms", "repeat_interval": "1h"}]
        }),
    )
    .await;
}

/// Makes `tree` the policy tree of org 1.
pub(crate) async fn set_policy(store: &SqlNotificationStore, tree: Value) {
    let mut tree: Route = serde_json::from_value(tree).unwrap();
    tree.validate().unwrap();
    store
        .set_policy(OrgId(1), &tree, Provenance::Api)
        .await
        .unwrap();
}

/// `n` dispatchers, each on its own connection to the test's database, with a 1 s claim
/// timeout and a 100 ms poll.
pub(crate) async fn start_dispatchers(
    test: &TestDatabase,
    n: usize,
    smtp: SmtpSettings,
) -> Vec<Dispatcher> {
    let mut dispatchers = Vec::new();
    for i in 0..n {
        let db = test.connect().await;
        dispatchers.push(Dispatcher::start(DispatcherDeps {
            alerts: Arc::new(SqlAlertStore::new(db.clone())),
            store: Arc::new(SqlNotificationStore::new(db, "secret-key")),
            instance_id: format!("d{i}"),
            settings: NotifySettings {
                claim_timeout: Duration::from_secs(1),
                poll_interval: Duration::from_millis(100),
                smtp: smtp.clone(),
                ..NotifySettings::default()
            },
        }));
    }
    dispatchers
}

tandem_storage::backend_tests!(
    three_dispatchers_notify_each_group_once,
    |test: TestDatabase| async move {
        let db = test.connect_migrated().await;
        let alerts = SqlAlertStore::new(db.clone());
        // Each attempt's first delivery fails: retries keep the key and send once.
        let receiver = Receiver::start(1).await;
        let setup = SqlNotificationStore::new(db.clone(), "secret-key");
        configure(&setup, &receiver.url).await;
        let groups = 20;
        let dispatchers = start_dispatchers(&test, 3, SmtpSettings::default()).await;
        let now = tandem_storage::now_ms();
        write(&alerts, groups, InstanceState::Alerting, now).await;
        eventually(
            "every group notified firing",
            Duration::from_secs(30),
            || receiver.accepted().len() >= groups,
        )
        .await;
        write(&alerts, groups, InstanceState::Normal, now + 1).await;
        eventually(
            "every group notified resolved",
            Duration::from_secs(30),
            || receiver.accepted().len() >= 2 * groups,
        )
        .await;
        // Quiet time in which a duplicate would show.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for d in dispatchers {
            d.stop().await;
        }
        let accepted = receiver.accepted();
        let mut per_group: HashMap<(String, String), usize> = HashMap::new();
        for d in &accepted {
            let key = (
                d.body["groupKey"].as_str().unwrap().to_owned(),
                d.body["status"].as_str().unwrap().to_owned(),
            );
            *per_group.entry(key).or_default() += 1;
            assert_eq!(d.body["receiver"], "hook");
            assert_eq!(d.body["alerts"].as_array().unwrap().len(), 1);
        }
        assert_eq!(per_group.len(), 2 * groups, "{per_group:?}");
        assert!(per_group.values().all(|n| *n == 1), "{per_group:?}");
        let all = receiver.deliveries.lock().unwrap().clone();
        for d in &accepted {
            let attempts: Vec<_> = all
                .iter()
                .filter(|x| x.idempotency_key == d.idempotency_key)
                .collect();
            assert_eq!(attempts.len(), 2, "one 500 then one 200 under one key");
        }
        let keys: std::collections::HashSet<_> =
            accepted.iter().map(|d| d.idempotency_key.clone()).collect();
        assert_eq!(keys.len(), accepted.len(), "every flush has its own key");
        let firing = accepted
            .iter()
            .find(|d| d.body["status"] == "firing")
            .unwrap();
        assert_eq!(firing.body["state"], "alerting");
        assert!(
            firing.body["title"]
                .as_str()
                .unwrap()
                .starts_with("[FIRING:1] rule-")
        );
        let resolved = accepted
            .iter()
            .find(|d| d.body["status"] == "resolved")
            .unwrap();
        assert_eq!(resolved.body["state"], "ok");
    }
);

tandem_storage::backend_tests!(
    a_claim_is_fenced_and_taken_over_by_the_database_clock,
    |test: TestDatabase| async move {
        let a = SqlNotificationStore::new(test.connect_migrated().await, "k");
        let b = SqlNotificationStore::new(test.connect().await, "k");
        let group = NewGroup {
            group_id: "g".repeat(64),
            org_id: OrgId(1),
            receiver: "hook".into(),
            group_key: "{}:{}".into(),
            group_wait_ms: 0,
        };
        assert!(a.create_group(&group).await.unwrap());
        assert!(!b.create_group(&group).await.unwrap(), "one row per group");
        let (_, rows) = a.groups().await.unwrap();
        let row = &rows[0];
        let plan = |holder: &str| FlushPlan {
            group_id: row.group_id.clone(),
            org_id: OrgId(1),
            receiver: "hook".into(),
            epoch: row.epoch,
            seq: row.seq,
            group_interval_ms: 60_000,
            firing: vec!["f".into()],
            ends: false,
            notifications: vec![PlannedNotification {
                integration_uid: "hook".into(),
                payload: serde_json::json!({"n": 1}),
            }],
            holder: holder.into(),
            ttl_ms: 400,
        };
        let claims = a
            .plan_flush(&plan("a"))
            .await
            .unwrap()
            .expect("the first plan wins");
        assert!(
            b.plan_flush(&plan("b")).await.unwrap().is_none(),
            "the same flush is planned once"
        );
        let claim = &claims[0];
        assert!(
            b.take_over("b", 400, 10).await.unwrap().is_empty(),
            "a live claim is not taken"
        );
        assert!(a.renew_claim(claim.id, claim.token, 400).await.unwrap());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !a.renew_claim(claim.id, claim.token, 400).await.unwrap(),
            "an expired claim cannot be renewed"
        );
        // Expired 200 ms ago: past the take-over grace of a quarter of the 400 ms lease.
        let taken = b.take_over("b", 400, 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(
            taken[0].flush_key, claim.flush_key,
            "the same key after a take-over"
        );
        assert!(taken[0].token > claim.token);
        assert!(
            !a.finish_claim(
                claim.id,
                claim.token,
                tandem_alerting::notify::store::ClaimStatus::Sent,
                1,
                ""
            )
            .await
            .unwrap()
        );
        assert!(
            b.finish_claim(
                taken[0].id,
                taken[0].token,
                tandem_alerting::notify::store::ClaimStatus::Sent,
                1,
                ""
            )
            .await
            .unwrap()
        );
        assert!(
            a.take_over("a", 400, 10).await.unwrap().is_empty(),
            "a sent notification stays sent"
        );
        let log = a.notification_log(OrgId(1)).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, "sent");
        // Secrets are sealed at rest and come back whole.
        a.ensure_defaults(OrgId(1)).await.unwrap();
        b.ensure_defaults(OrgId(1)).await.unwrap();
        let points = a.contact_points(OrgId(1)).await.unwrap();
        assert_eq!(points.len(), 1, "one default contact point");
        assert_eq!(points[0].name, "grafana-default-email");
        let point = ContactPoint::from_request(
            "p".into(),
            "p".into(),
            "webhook".into(),
            serde_json::json!({"url": "http://x/", "password": "hunter2"})
                .as_object()
                .unwrap()
                .clone(),
            false,
            Provenance::Api,
            None,
        )
        .unwrap();
        a.create_contact_point(OrgId(1), &point).await.unwrap();
        assert_eq!(
            b.contact_point(OrgId(1), "p")
                .await
                .unwrap()
                .unwrap()
                .secure["password"],
            "hunter2"
        );
        let raw = raw_secure(&test, "p").await;
        assert!(!raw.contains("hunter2") && raw.contains("v1."), "{raw}");
    }
);

/// The stored (sealed) secrets of the contact point `uid`, as the database holds them.
pub(crate) async fn raw_secure(test: &TestDatabase, uid: &str) -> String {
    use tandem_storage::sea_orm::{ConnectionTrait, Statement, Value};
    let db = test.connect().await;
    let conn = db.connection();
    let backend = conn.get_database_backend();
    let sql = match backend {
        tandem_storage::sea_orm::DbBackend::Postgres => {
            "SELECT secure_settings FROM alert_contact_point WHERE uid = $1"
        }
        _ => "SELECT secure_settings FROM alert_contact_point WHERE uid = ?",
    };
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(uid)],
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<String>("", "secure_settings").unwrap()
}

tandem_storage::backend_tests!(
    the_log_purge_deletes_only_old_finished_notifications,
    |test: TestDatabase| async move {
        let store = SqlNotificationStore::new(test.connect_migrated().await, "k");
        let group = NewGroup {
            group_id: "p".repeat(64),
            org_id: OrgId(1),
            receiver: "hook".into(),
            group_key: "{}:{}".into(),
            group_wait_ms: 0,
        };
        assert!(store.create_group(&group).await.unwrap());
        let (_, rows) = store.groups().await.unwrap();
        let planned = |uid: &str| PlannedNotification {
            integration_uid: uid.into(),
            payload: serde_json::json!({"n": uid}),
        };
        let claims = store
            .plan_flush(&FlushPlan {
                group_id: rows[0].group_id.clone(),
                org_id: OrgId(1),
                receiver: "hook".into(),
                epoch: rows[0].epoch,
                seq: rows[0].seq,
                group_interval_ms: 60_000,
                firing: vec!["f".into()],
                ends: false,
                notifications: vec![planned("sent"), planned("pending")],
                holder: "a".into(),
                ttl_ms: 60_000,
            })
            .await
            .unwrap()
            .unwrap();
        let sent = claims.iter().find(|c| c.integration_uid == "sent").unwrap();
        assert!(
            store
                .finish_claim(
                    sent.id,
                    sent.token,
                    tandem_alerting::notify::store::ClaimStatus::Sent,
                    1,
                    ""
                )
                .await
                .unwrap()
        );
        assert_eq!(store.purge_log(60_000).await.unwrap(), 0, "too young");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.purge_log(100).await.unwrap(), 1, "the sent one");
        let log = store.notification_log(OrgId(1)).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].status, "pending", "a pending notification stays");
    }
);
