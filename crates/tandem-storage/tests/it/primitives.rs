use std::sync::Arc;

use tandem_storage::testkit::{TestDatabase, conformance};
use tandem_storage::{Cache, Leases, Membership, ServerLock};
use tandem_storage::{SqlCache, SqlLeases, SqlMembership, SqlServerLock};

/// `n` instances, each with its own single-connection pool on the test database.
async fn instances(test: &TestDatabase, n: usize) -> Vec<tandem_storage::Database> {
    let first = test.connect_migrated().await;
    let mut pools = vec![first];
    for _ in 1..n {
        let mut settings = test.settings();
        settings.max_open_conn = 1;
        settings.max_idle_conn = 1;
        pools.push(test.connect_with(settings).await);
    }
    pools
}

// Ten contenders over five connections: exactly one runs the job.
tandem_storage::backend_tests!(server_lock_conformance, |test: TestDatabase| async move {
    let pools = instances(&test, 5).await;
    let contenders: Vec<Arc<dyn ServerLock>> = pools
        .iter()
        .cycle()
        .take(10)
        .map(|db| Arc::new(SqlServerLock::new(db.clone())) as Arc<dyn ServerLock>)
        .collect();
    conformance::server_lock(contenders).await;
});

tandem_storage::backend_tests!(lease_conformance, |test: TestDatabase| async move {
    let pools = instances(&test, 3).await;
    let stores = pools
        .iter()
        .map(|db| Arc::new(SqlLeases::new(db.clone())) as Arc<dyn Leases>)
        .collect();
    conformance::leases(stores).await;
});

tandem_storage::backend_tests!(membership_conformance, |test: TestDatabase| async move {
    let pools = instances(&test, 2).await;
    let stores = pools
        .iter()
        .map(|db| Arc::new(SqlMembership::new(db.clone())) as Arc<dyn Membership>)
        .collect();
    conformance::membership(stores).await;
});

tandem_storage::backend_tests!(cache_conformance, |test: TestDatabase| async move {
    let pools = instances(&test, 2).await;
    let stores = pools
        .iter()
        .map(|db| Arc::new(SqlCache::new(db.clone())) as Arc<dyn Cache>)
        .collect();
    conformance::cache(stores).await;
});
