//! The SQL store passes the `SessionStore` conformance suite on every backend, through two
//! pools on one database standing for two instances.

use std::sync::Arc;

use tandem_sessions::{SessionStore, SqlSessionStore};

tandem_storage::backend_tests!(
    session_store_conformance,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let first = test.connect_migrated().await;
        let second = test.connect().await;
        let stores: Vec<Arc<dyn SessionStore>> = vec![
            Arc::new(SqlSessionStore::new(first)),
            Arc::new(SqlSessionStore::new(second)),
        ];
        tandem_sessions::testkit::conformance::all(stores).await;
    }
);
