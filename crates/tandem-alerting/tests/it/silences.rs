//! Silences: the store's conformance suite through two pools on one database, and two
//! dispatchers sharing it, where a silence made through one mutes what the other would
//! send, and notifications resume once it expires.

use std::sync::Arc;
use std::time::Duration;

use tandem_alerting::notify::store::NotificationStore;
use tandem_alerting::testkit::silences::{equal, silence};
use tandem_alerting::{
    AlertStore, InstanceState, InstanceWrite, OrgId, SmtpSettings, SqlAlertStore,
    SqlNotificationStore,
};
use tandem_storage::testkit::TestDatabase;

use crate::notifications::{Receiver, configure, eventually, instance, start_dispatchers};

tandem_storage::backend_tests!(silence_store_conformance, |test: TestDatabase| async move {
    let stores: Vec<Arc<dyn NotificationStore>> = vec![
        Arc::new(SqlNotificationStore::new(
            test.connect_migrated().await,
            "k",
        )),
        Arc::new(SqlNotificationStore::new(test.connect().await, "k")),
    ];
    tandem_alerting::testkit::silences::all(stores, OrgId(1)).await;
});

async fn fire(alerts: &SqlAlertStore, rule: &str, slot: i64) {
    let ok = alerts
        .write_instances(InstanceWrite {
            org_id: OrgId(1),
            rule_uid: rule.into(),
            slot,
            upserts: vec![instance(rule, "db", InstanceState::Alerting, slot)],
            deletes: vec![],
            expected: Default::default(),
            history: None,
        })
        .await
        .unwrap();
    assert!(ok);
}

fn alertnames(receiver: &Receiver) -> Vec<String> {
    let mut names: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|d| {
            d.body["commonLabels"]["alertname"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    names
}

tandem_storage::backend_tests!(
    a_silence_made_on_one_instance_mutes_every_instance_until_it_expires,
    |test: TestDatabase| async move {
        let db = test.connect_migrated().await;
        let alerts = SqlAlertStore::new(db.clone());
        let receiver = Receiver::start(0).await;
        let setup = SqlNotificationStore::new(db, "secret-key");
        configure(&setup, &receiver.url).await;
        // Instance A's store makes the silence; B runs the only dispatcher until the end, so
        // B is the one that would send.
        let a = SqlNotificationStore::new(test.connect().await, "secret-key");
        let now = tandem_storage::now_ms();
        let id = a
            .set_silence(
                OrgId(1),
                &silence(
                    vec![equal("alertname", "rule-0")],
                    now - 1_000,
                    now + 3_600_000,
                ),
            )
            .await
            .unwrap();
        let dispatchers = start_dispatchers(&test, 1, SmtpSettings::default()).await;
        fire(&alerts, "rule-0", now).await;
        fire(&alerts, "rule-1", now).await;
        eventually("the unsilenced group", Duration::from_secs(30), || {
            !receiver.accepted().is_empty()
        })
        .await;
        // Many plan passes past group_wait and group_interval.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            alertnames(&receiver),
            ["rule-1"],
            "the silenced group is not sent"
        );

        // Expired through A, B's next pass sends the silenced group once.
        a.expire_silence(OrgId(1), &id).await.unwrap();
        eventually(
            "the group after its silence",
            Duration::from_secs(30),
            || receiver.accepted().len() >= 2,
        )
        .await;
        // A second dispatcher joins: a silence made on A now mutes a change of the group
        // that either would send.
        let more = start_dispatchers(&test, 1, SmtpSettings::default()).await;
        a.set_silence(
            OrgId(1),
            &silence(vec![equal("team", "db")], now, now + 3_600_000),
        )
        .await
        .unwrap();
        fire(&alerts, "rule-2", tandem_storage::now_ms()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(alertnames(&receiver), ["rule-0", "rule-1"]);
        for d in dispatchers.into_iter().chain(more) {
            d.stop().await;
        }
    }
);
