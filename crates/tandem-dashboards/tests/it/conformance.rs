//! The SQL store passes the `DashboardStore` conformance suite on every backend, through two
//! pools on one database standing for two instances.

use std::sync::Arc;

use tandem_dashboards::{DashboardStore, SqlDashboardStore};

tandem_storage::backend_tests!(
    dashboard_store_conformance,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let first = test.connect_migrated().await;
        let second = test.connect().await;
        let stores: Vec<Arc<dyn DashboardStore>> = vec![
            Arc::new(SqlDashboardStore::new(first)),
            Arc::new(SqlDashboardStore::new(second)),
        ];
        tandem_dashboards::testkit::conformance::all(stores).await;
    }
);
