//! The SQL store passes the library elements' conformance suite on every backend, through
//! two pools on one database; afterwards no connection row names an element that is gone
//! (what the racing deletions and saves of the suite must never leave behind).

use std::sync::Arc;

use sea_orm::{ConnectionTrait, Statement};
use tandem_dashboards::SqlDashboardStore;

tandem_storage::backend_tests!(
    library_element_conformance,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let first = test.connect_migrated().await;
        let second = test.connect().await;
        let stores = vec![
            Arc::new(SqlDashboardStore::new(first.clone())),
            Arc::new(SqlDashboardStore::new(second)),
        ];
        tandem_dashboards::testkit::library::all(stores).await;
        let conn = first.connection();
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT COUNT(*) AS n FROM library_element_connection c \
                 WHERE NOT EXISTS (SELECT 1 FROM library_element e WHERE e.id = c.element_id)",
            ))
            .await
            .expect("count orphan connections")
            .expect("a row");
        let orphans: i64 = row.try_get("", "n").expect("n");
        assert_eq!(orphans, 0, "connections whose element was deleted");
        let links = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT COUNT(*) AS n FROM library_element_connection",
            ))
            .await
            .expect("count connections")
            .expect("a row");
        let links: i64 = links.try_get("", "n").expect("n");
        assert!(links > 0, "the suite left connections to count");
    }
);
