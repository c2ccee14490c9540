//! Mute timings and active time intervals applied by two dispatchers sharing one
//! database: a muted group sends nothing while its timing holds and is sent once after it
//! ends; a group outside its active interval waits for it.

use std::time::Duration;

use tandem_alerting::notify::contact::ContactPoint;
use tandem_alerting::notify::store::{DocumentKind, NamedDocument, NotificationStore};
use tandem_alerting::{
    AlertStore, InstanceState, InstanceWrite, OrgId, Provenance, SmtpSettings, SqlAlertStore,
    SqlNotificationStore,
};
use tandem_storage::testkit::TestDatabase;

use crate::notifications::{Receiver, eventually, instance, set_policy, start_dispatchers};

/// `HH:MM` of `at` in Kolkata (UTC+05:30, so the location matters).
fn kolkata(at: jiff::Timestamp) -> String {
    let tz = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
    let t = tz.to_datetime(at);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

async fn timing(store: &SqlNotificationStore, name: &str, start: &str, end: &str) {
    let end = if end == "00:00" { "24:00" } else { end };
    let doc = NamedDocument {
        name: name.into(),
        body: serde_json::json!({"time_intervals": [{
            "times": [{"start_time": start, "end_time": end}],
            "location": "Asia/Kolkata"}]}),
        provenance: Provenance::Api,
        version: 0,
    };
    store
        .put_document(OrgId(1), DocumentKind::MuteTiming, &doc, true)
        .await
        .unwrap();
}

tandem_storage::backend_tests!(
    a_muted_group_is_sent_once_after_its_mute_timing_ends,
    |test: TestDatabase| async move {
        // Leave at least 5 s of the current minute for the "nothing yet" check.
        let mut now = jiff::Timestamp::now();
        if now.as_second().rem_euclid(60) > 55 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            now = jiff::Timestamp::now();
        }
        let boundary_ms = (now.as_second().div_euclid(60) + 1) * 60_000;
        let next = jiff::Timestamp::from_millisecond(boundary_ms).unwrap();
        let after = jiff::Timestamp::from_millisecond(boundary_ms + 60_000).unwrap();
        let db = test.connect_migrated().await;
        let alerts = SqlAlertStore::new(db.clone());
        let store = SqlNotificationStore::new(db.clone(), "secret-key");
        let receiver = Receiver::start(0).await;
        store.ensure_defaults(OrgId(1)).await.unwrap();
        let point = ContactPoint::from_request(
            "hook".into(),
            "hook".into(),
            "webhook".into(),
            serde_json::json!({"url": receiver.url})
                .as_object()
                .unwrap()
                .clone(),
            false,
            Provenance::Api,
            None,
        )
        .unwrap();
        store.create_contact_point(OrgId(1), &point).await.unwrap();
        // Holds from now to the next minute: mutes `db` until then.
        timing(&store, "this-minute", &kolkata(now), &kolkata(next)).await;
        // Holds from the next minute on: `web` is active only then.
        timing(&store, "next-minute", &kolkata(next), &kolkata(after)).await;
        set_policy(
            &store,
            serde_json::json!({
                "receiver": "grafana-default-email", "group_by": ["alertname", "team"],
                "routes": [
                    {"receiver": "hook", "object_matchers": [["team", "=", "db"]],
                     "mute_time_intervals": ["this-minute"],
                     "group_wait": "100ms", "group_interval": "300ms", "repeat_interval": "1h"},
                    {"receiver": "hook", "object_matchers": [["team", "=", "web"]],
                     "active_time_intervals": ["next-minute"],
                     "group_wait": "100ms", "group_interval": "300ms", "repeat_interval": "1h"}]
            }),
        )
        .await;
        let dispatchers = start_dispatchers(&test, 2, SmtpSettings::default()).await;
        let slot = tandem_storage::now_ms();
        for team in ["db", "web"] {
            let rule = format!("rule-{team}");
            alerts
                .write_instances(InstanceWrite {
                    org_id: OrgId(1),
                    rule_uid: rule.as_str().into(),
                    slot,
                    upserts: vec![instance(&rule, team, InstanceState::Alerting, slot)],
                    deletes: vec![],
                    expected: Default::default(),
                    history: None,
                })
                .await
                .unwrap();
        }
        // Well past group_wait and many plan passes, still inside the minute.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            tandem_storage::now_ms() < boundary_ms,
            "the check ran inside the muted minute"
        );
        assert!(
            receiver.accepted().is_empty(),
            "nothing is sent while muted"
        );
        eventually(
            "both groups notified after the minute",
            Duration::from_secs(75),
            || receiver.accepted().len() >= 2,
        )
        .await;
        let delivered_at = tandem_storage::now_ms();
        assert!(delivered_at >= boundary_ms);
        // Quiet time in which a duplicate would show.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for d in dispatchers {
            d.stop().await;
        }
        let accepted = receiver.accepted();
        let mut teams: Vec<String> = accepted
            .iter()
            .map(|d| d.body["commonLabels"]["team"].as_str().unwrap().to_owned())
            .collect();
        teams.sort();
        assert_eq!(teams, ["db", "web"], "each group once");
    }
);
