//! The notifier's sections of the alerting provisioning files, applied by three instances
//! (three pools on one database) at once: every item is written once, a replay writes
//! nothing, a changed file is applied once whichever instance reads it first, and a bad
//! item is skipped while the rest of its file is applied.

use std::sync::Arc;

use serde_json::json;
use tandem_alerting::notify::provision::{
    NotifierProvisioner, NotifierProvisioning, NotifierProvisioningReport,
};
use tandem_alerting::notify::store::{DocumentKind, NotificationStore};
use tandem_alerting::{AlertProvisioning, OrgId, Provenance, SqlNotificationStore};
use tandem_storage::testkit::TestDatabase;

use crate::notifications::raw_secure;

const ORG: OrgId = OrgId(1);

const FIRST: &str = r#"
apiVersion: 1
templates:
  - orgId: 1
    name: short
    template: '{{ define "short" }}{{ len .Alerts }} alerts{{ end }}'
muteTimes:
  - orgId: 1
    name: weekends
    time_intervals:
      - weekdays: [saturday, sunday]
contactPoints:
  - orgId: 1
    name: hook
    receivers:
      - uid: hook_1
        type: webhook
        settings:
          url: http://127.0.0.1:9/hook
          authorization_credentials: $HOOK_TOKEN
      - uid: hook_2
        type: email
        settings:
          addresses: ops@example.com
policies:
  - orgId: 1
    receiver: hook
    group_by: [alertname]
    routes:
      - receiver: hook
        object_matchers: [[team, '=', db]]
        mute_time_intervals: [weekends]
"#;

/// The same files, changed: a new URL, the email integration and the mute timing gone,
/// a policy without it, and one bad item.
const SECOND: &str = r#"
apiVersion: 1
templates:
  - orgId: 1
    name: short
    template: '{{ define "short" }}{{ len .Alerts }} alerts{{ end }}'
contactPoints:
  - orgId: 1
    name: hook
    receivers:
      - uid: hook_1
        type: webhook
        settings:
          url: http://127.0.0.1:9/other
          authorization_credentials: $HOOK_TOKEN
  - orgId: 1
    name: broken
    receivers:
      - uid: broken_1
        type: webhook
        settings: {}
policies:
  - orgId: 1
    receiver: hook
    group_by: [alertname]
deleteContactPoints:
  - orgId: 1
    uid: hook_2
deleteMuteTimes:
  - orgId: 1
    name: weekends
"#;

fn files(source: &str) -> NotifierProvisioning {
    let lookup = |name: &str| (name == "HOOK_TOKEN").then(|| "tok-3f9a".to_owned());
    AlertProvisioning::from_yaml(source, lookup)
        .unwrap()
        .notifier
}

async fn stores(test: &TestDatabase, n: usize) -> Vec<Arc<dyn NotificationStore>> {
    let mut out: Vec<Arc<dyn NotificationStore>> = vec![Arc::new(SqlNotificationStore::new(
        test.connect_migrated().await,
        "k",
    ))];
    for _ in 1..n {
        out.push(Arc::new(SqlNotificationStore::new(
            test.connect().await,
            "k",
        )));
    }
    out
}

/// Every instance applies `config` at the same moment.
async fn apply_everywhere(
    stores: &[Arc<dyn NotificationStore>],
    config: &NotifierProvisioning,
) -> Vec<NotifierProvisioningReport> {
    let mut runs = tokio::task::JoinSet::new();
    for store in stores {
        let provisioner = NotifierProvisioner::new(store.clone(), config.clone());
        runs.spawn(async move { provisioner.run_once().await });
    }
    runs.join_all().await
}

fn total(reports: &[NotifierProvisioningReport]) -> NotifierProvisioningReport {
    reports
        .iter()
        .fold(NotifierProvisioningReport::default(), |a, r| {
            NotifierProvisioningReport {
                created: a.created + r.created,
                updated: a.updated + r.updated,
                deleted: a.deleted + r.deleted,
                failed: a.failed + r.failed,
            }
        })
}

tandem_storage::backend_tests!(
    three_instances_provision_the_notifier_once,
    |test: TestDatabase| async move {
        let stores = stores(&test, 3).await;
        let first = files(FIRST);
        assert_eq!(first.rejected, Vec::<String>::new());

        let reports = apply_everywhere(&stores, &first).await;
        let sum = total(&reports);
        // Two integrations, a template and a mute timing created once in all; the policy
        // written by one or more of the racers (the same content each time).
        assert_eq!(sum.created, 4, "{reports:?}");
        assert!((1..=3).contains(&sum.updated), "{reports:?}");
        assert_eq!((sum.deleted, sum.failed), (0, 0), "{reports:?}");

        let reader = &stores[2];
        let points = reader.contact_points(ORG).await.unwrap();
        let hook: Vec<_> = points.iter().filter(|p| p.name == "hook").collect();
        assert_eq!(hook.len(), 2, "{points:?}");
        for p in &hook {
            assert_eq!((p.provenance, p.version), (Provenance::File, 1), "{p:?}");
        }
        let webhook = reader.contact_point(ORG, "hook_1").await.unwrap().unwrap();
        assert_eq!(webhook.secure["authorization_credentials"], "tok-3f9a");
        let sealed = raw_secure(&test, "hook_1").await;
        assert!(!sealed.contains("tok-3f9a"), "{sealed}");
        let (tree, provenance) = reader.policy(ORG).await.unwrap();
        assert_eq!(provenance, Provenance::File);
        assert_eq!(tree.receiver.as_deref(), Some("hook"));
        assert_eq!(tree.routes[0].mute_time_intervals, vec!["weekends"]);
        for kind in [DocumentKind::Template, DocumentKind::MuteTiming] {
            let docs = reader.documents(ORG, kind).await.unwrap();
            assert_eq!(docs.len(), 1, "{docs:?}");
            assert_eq!((docs[0].provenance, docs[0].version), (Provenance::File, 1));
        }

        // Replaying the same files on every instance writes nothing.
        let again = apply_everywhere(&stores, &first).await;
        assert_eq!(total(&again), NotifierProvisioningReport::default());
        assert_eq!(
            reader
                .contact_point(ORG, "hook_1")
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );

        // The changed files, read by every instance: applied once, the bad item skipped.
        let second = files(SECOND);
        assert_eq!(second.rejected.len(), 1, "{:?}", second.rejected);
        assert!(
            second.rejected[0].contains("contactPoints[1]"),
            "{:?}",
            second.rejected
        );
        let reports = apply_everywhere(&stores, &second).await;
        let sum = total(&reports);
        // hook_1's URL, once; hook_2 and the mute timing deleted, once each.
        assert_eq!(sum.deleted, 2, "{reports:?}");
        assert_eq!(
            sum.failed, 3,
            "each instance reports the bad item: {reports:?}"
        );
        let webhook = reader.contact_point(ORG, "hook_1").await.unwrap().unwrap();
        assert_eq!(webhook.text("url"), Some("http://127.0.0.1:9/other"));
        assert_eq!(webhook.version, 2, "updated once: {reports:?}");
        assert!(reader.contact_point(ORG, "hook_2").await.unwrap().is_none());
        assert!(
            reader
                .contact_point(ORG, "broken_1")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            reader
                .documents(ORG, DocumentKind::MuteTiming)
                .await
                .unwrap()
                .is_empty()
        );
        let (tree, _) = reader.policy(ORG).await.unwrap();
        assert!(tree.routes.is_empty(), "{tree:?}");
        let again = apply_everywhere(&stores, &second).await;
        let sum = total(&again);
        assert_eq!(
            (sum.created, sum.updated, sum.deleted),
            (0, 0, 0),
            "{again:?}"
        );
    }
);

tandem_storage::backend_tests!(
    a_policy_naming_an_unknown_receiver_changes_nothing,
    |test: TestDatabase| async move {
        let stores = stores(&test, 1).await;
        let config =
            files("policies:\n  - receiver: nobody\ntemplates:\n  - name: kept\n    template: x\n");
        let report = NotifierProvisioner::new(stores[0].clone(), config)
            .run_once()
            .await;
        assert_eq!((report.created, report.failed), (1, 1), "{report:?}");
        let (tree, provenance) = stores[0].policy(ORG).await.unwrap();
        assert_eq!(tree.receiver.as_deref(), Some("grafana-default-email"));
        assert_eq!(provenance, Provenance::None);
        let kept = stores[0]
            .document(ORG, DocumentKind::Template, "kept")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.body, json!({"template": "x"}));
    }
);

tandem_storage::backend_tests!(
    reset_policies_puts_back_the_default_tree_once,
    |test: TestDatabase| async move {
        let stores = stores(&test, 2).await;
        apply_everywhere(&stores, &files(FIRST)).await;
        let reset = files("resetPolicies: [1]\n");
        let reports = apply_everywhere(&stores, &reset).await;
        assert!((1..=2).contains(&total(&reports).updated), "{reports:?}");
        let (tree, provenance) = stores[1].policy(ORG).await.unwrap();
        assert_eq!(tree.receiver.as_deref(), Some("grafana-default-email"));
        assert_eq!(provenance, Provenance::None);
        let again = apply_everywhere(&stores, &reset).await;
        assert_eq!(total(&again), NotifierProvisioningReport::default());
    }
);
