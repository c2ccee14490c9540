//! Alerts posted to the Alertmanager API: the store's conformance suite through two pools
//! on one database, and three dispatchers sharing it, which notify every posted group
//! firing once and, once it is posted resolved, resolved once, with the generator's URL.

use std::sync::Arc;
use std::time::Duration;

use tandem_alerting::notify::store::NotificationStore;
use tandem_alerting::testkit::posted::alert;
use tandem_alerting::{OrgId, SmtpSettings, SqlNotificationStore};
use tandem_storage::testkit::TestDatabase;

use crate::notifications::{Receiver, configure, eventually, start_dispatchers};

tandem_storage::backend_tests!(
    posted_alert_store_conformance,
    |test: TestDatabase| async move {
        let stores: Vec<Arc<dyn NotificationStore>> = vec![
            Arc::new(SqlNotificationStore::new(
                test.connect_migrated().await,
                "k",
            )),
            Arc::new(SqlNotificationStore::new(test.connect().await, "k")),
        ];
        tandem_alerting::testkit::posted::all(stores, OrgId(1)).await;
    }
);

tandem_storage::backend_tests!(
    posted_alerts_are_notified_once_firing_and_once_resolved,
    |test: TestDatabase| async move {
        let db = test.connect_migrated().await;
        let receiver = Receiver::start(0).await;
        let setup = SqlNotificationStore::new(db, "secret-key");
        configure(&setup, &receiver.url).await;
        let dispatchers = start_dispatchers(&test, 3, SmtpSettings::default()).await;
        let poster = SqlNotificationStore::new(test.connect().await, "secret-key");
        let now = tandem_storage::now_ms();
        let groups = 10;
        let firing: Vec<_> = (0..groups)
            .map(|i| alert(&format!("Posted{i}"), "db", Some(now), None))
            .collect();
        // Posted twice, as a Prometheus server listing two instances posts.
        poster.post_alerts(OrgId(1), &firing).await.unwrap();
        setup.post_alerts(OrgId(1), &firing).await.unwrap();
        eventually("every posted group firing", Duration::from_secs(30), || {
            receiver.accepted().len() >= groups
        })
        .await;
        let resolved: Vec<_> = (0..groups)
            .map(|i| alert(&format!("Posted{i}"), "db", Some(now), Some(now + 1)))
            .collect();
        poster.post_alerts(OrgId(1), &resolved).await.unwrap();
        eventually(
            "every posted group resolved",
            Duration::from_secs(30),
            || receiver.accepted().len() >= 2 * groups,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for d in dispatchers {
            d.stop().await;
        }
        let accepted = receiver.accepted();
        assert_eq!(
            accepted.len(),
            2 * groups,
            "one firing and one resolved each"
        );
        for status in ["firing", "resolved"] {
            let mut names: Vec<String> = accepted
                .iter()
                .filter(|d| d.body["status"] == status)
                .map(|d| {
                    d.body["commonLabels"]["alertname"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), groups, "{status}: {names:?}");
        }
        let first = &accepted[0].body["alerts"][0];
        assert!(
            first["generatorURL"]
                .as_str()
                .unwrap()
                .starts_with("http://prometheus.example:9090/graph"),
            "{first}"
        );
        let summary = first["annotations"]["summary"].as_str().unwrap();
        assert!(summary.ends_with(" fires"), "{first}");
    }
);
