//! Silences: the store's conformance suite through two pools on one database.

use std::sync::Arc;

use tandem_alerting::notify::store::NotificationStore;
use tandem_alerting::{OrgId, SqlNotificationStore};
use tandem_storage::testkit::TestDatabase;

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
