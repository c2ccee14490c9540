//! The SQL store passes the `AlertStore` conformance suite on every backend, through two
//! pools on one database standing for two instances.

use std::sync::Arc;

use tandem_alerting::{AlertStore, SqlAlertStore};

tandem_storage::backend_tests!(
    alert_store_conformance,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let first = test.connect_migrated().await;
        let second = test.connect().await;
        let stores: Vec<Arc<dyn AlertStore>> = vec![
            Arc::new(SqlAlertStore::new(first)),
            Arc::new(SqlAlertStore::new(second)),
        ];
        tandem_alerting::testkit::conformance::all(stores).await;
    }
);
