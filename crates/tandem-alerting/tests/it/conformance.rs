//! The SQL store passes the `AlertStore` conformance suite on every backend, through two
//! pools on one database standing for two instances, and honours the shard leases of the
//! schema before per-holder leases.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
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

// A shard row written by the version before per-holder leases (its own lease and watermark,
// no holder row) is honoured: not taken while its lease lasts, then taken from its
// watermark; and a shard held under a holder's lease looks held to that version.
tandem_storage::backend_tests!(
    shard_rows_of_the_previous_form_keep_their_lease,
    |test: tandem_storage::testkit::TestDatabase| async move {
        let db = test.connect_migrated().await;
        let store = SqlAlertStore::new(db.clone());
        let backend = db.connection().get_database_backend();
        let expires_at = tandem_storage::now_ms() + 1_500;
        let watermark = expires_at + 5_000;
        db.connection()
            .execute_raw(Statement::from_string(
                backend,
                format!(
                    "INSERT INTO alert_shard (shard, holder, token, expires_at, claimed_until) \
                     VALUES (7, 'old/00000001', 3, {expires_at}, {watermark})"
                ),
            ))
            .await
            .expect("an old-form shard row");
        let holder = "new/00000001";
        store
            .register_holder(holder, 60_000, 1_000)
            .await
            .expect("a lease");
        assert_eq!(
            store.claim_shard(7, holder).await.expect("a claim"),
            None,
            "the old holder's lease lasts"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let claim = loop {
            if let Some(claim) = store.claim_shard(7, holder).await.expect("a claim") {
                break claim;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the old lease expires"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((claim.start, claim.token), (watermark, 4));
        let row = db
            .connection()
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT expires_at FROM alert_shard WHERE shard = 7",
            ))
            .await
            .expect("a read")
            .expect("the row");
        let stored: i64 = row.try_get("", "expires_at").expect("expires_at");
        assert_eq!(stored, i64::MAX, "held, to an instance of the old version");
    }
);
