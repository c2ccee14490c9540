use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tandem_storage::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use tandem_storage::testkit::TestDatabase;
use tandem_storage::{Backend, Error};

async fn exec(tx: &impl ConnectionTrait, sql: &str) -> Result<u64, Error> {
    let backend = tx.get_database_backend();
    Ok(tx
        .execute_raw(Statement::from_string(backend, sql))
        .await?
        .rows_affected())
}

// MySQL must report matched rows, not changed rows: an UPDATE that writes the values a row
// already has still counts that row, or optimistic version checks would see a conflict.
tandem_storage::backend_tests!(
    an_update_that_changes_nothing_still_reports_its_row,
    |test: TestDatabase| async move {
        let db = test.connect().await;
        exec(
            db.connection(),
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
        )
        .await
        .unwrap();
        exec(db.connection(), "INSERT INTO t (id, v) VALUES (1, 7)")
            .await
            .unwrap();
        let matched = exec(db.connection(), "UPDATE t SET v = 7 WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(matched, 1);
    }
);

// Two transactions lock two rows in opposite orders. PostgreSQL and MySQL abort one of them
// as a deadlock; the helper runs it again and both commit. SQLite serialises the writers
// (BEGIN IMMEDIATE), so there is no deadlock to begin with.
tandem_storage::backend_tests!(
    a_deadlocked_transaction_is_retried_and_commits,
    |test: TestDatabase| async move {
        let db = test.connect().await;
        let backend = db.backend();
        exec(
            db.connection(),
            "CREATE TABLE acct (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
        )
        .await
        .unwrap();
        exec(
            db.connection(),
            "INSERT INTO acct (id, n) VALUES (1, 0), (2, 0)",
        )
        .await
        .unwrap();
        let attempts = Arc::new(AtomicU32::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for (first, second) in [(1, 2), (2, 1)] {
            let (db, attempts, barrier) = (db.clone(), attempts.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let mut mine = 0;
                db.transaction(|tx| {
                    mine += 1;
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let barrier =
                        (mine == 1 && backend != Backend::Sqlite).then(|| barrier.clone());
                    async move {
                        exec(
                            &*tx,
                            &format!("UPDATE acct SET n = n + 1 WHERE id = {first}"),
                        )
                        .await?;
                        if let Some(barrier) = barrier {
                            barrier.wait().await;
                        }
                        exec(
                            &*tx,
                            &format!("UPDATE acct SET n = n + 1 WHERE id = {second}"),
                        )
                        .await?;
                        Ok::<_, Error>(())
                    }
                })
                .await
            }));
        }
        for task in tasks {
            task.await.unwrap().expect("both transactions commit");
        }
        let rows = db
            .connection()
            .query_all_raw(Statement::from_string(
                db.connection().get_database_backend(),
                "SELECT n FROM acct",
            ))
            .await
            .unwrap();
        let total: i64 = rows
            .iter()
            .map(|row| row.try_get::<i64>("", "n").unwrap())
            .sum();
        assert_eq!(total, 4, "every increment landed exactly once");
        if backend != Backend::Sqlite {
            assert!(
                attempts.load(Ordering::SeqCst) >= 3,
                "the deadlock victim was run again"
            );
        }
    }
);

// An error that is not a database conflict is returned at once, and what the closure wrote
// is rolled back.
tandem_storage::backend_tests!(
    other_errors_are_not_retried_and_roll_back,
    |test: TestDatabase| async move {
        let db = test.connect().await;
        exec(db.connection(), "CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let attempts = AtomicU32::new(0);
        let result = db
            .transaction(|tx| {
                attempts.fetch_add(1, Ordering::SeqCst);
                async move {
                    exec(&*tx, "INSERT INTO t (id) VALUES (1)").await?;
                    exec(&*tx, "INSERT INTO t (id) VALUES (1)").await?;
                    Ok::<_, Error>(())
                }
            })
            .await;
        let err = result.expect_err("a duplicate key fails the transaction");
        assert!(err.is_unique_violation(), "{err}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried");
        let rows = db
            .connection()
            .query_all_raw(Statement::from_string(
                db.connection().get_database_backend(),
                "SELECT id FROM t",
            ))
            .await
            .unwrap();
        assert!(
            rows.is_empty(),
            "nothing of the failed transaction was kept"
        );
    }
);

// SQLite: a writer blocked by another process's long write transaction gets SQLITE_BUSY
// after its busy timeout; the helper backs off and retries until the writer is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_is_retried_until_the_other_writer_finishes() {
    let test = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let mut settings = test.settings();
    settings.sqlite_busy_timeout = Duration::from_millis(20);
    let holder = test.connect_with(settings.clone()).await;
    let writer = test.connect_with(settings).await;
    exec(
        holder.connection(),
        "CREATE TABLE t (id INTEGER PRIMARY KEY)",
    )
    .await
    .unwrap();
    let txn = holder
        .connection()
        .begin_with_options(tandem_storage::sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(
                tandem_storage::sea_orm::SqliteTransactionMode::Immediate,
            ),
            ..Default::default()
        })
        .await
        .unwrap();
    exec(&txn, "INSERT INTO t (id) VALUES (1)").await.unwrap();
    // The holder keeps its write lock for ten busy timeouts: without retries the writer
    // would fail after the first one.
    let held_for = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let task = tokio::spawn(async move {
        let result = writer
            .transaction(|tx| async move { exec(&*tx, "INSERT INTO t (id) VALUES (2)").await })
            .await;
        (result, started.elapsed())
    });
    tokio::time::sleep(held_for).await;
    txn.commit().await.unwrap();
    let (result, waited) = task.await.unwrap();
    assert_eq!(result.expect("the blocked writer commits in the end"), 1);
    assert!(
        waited >= held_for,
        "the writer committed while the lock was held ({waited:?})"
    );
}

// The pool never opens more than max_open_conn connections: with all of them in use, one
// more request waits and then fails with a clear error instead of opening another.
tandem_storage::backend_tests!(
    the_pool_bound_is_honoured,
    |test: TestDatabase| async move {
        let mut settings = test.settings();
        settings.max_open_conn = 2;
        settings.max_idle_conn = 1;
        settings.acquire_timeout = Duration::from_millis(300);
        let db = test.connect_with(settings).await;
        let first = db.connection().begin().await.expect("first connection");
        let second = db.connection().begin().await.expect("second connection");
        let third = db.connection().begin().await;
        assert!(
            third.is_err(),
            "a third connection was opened beyond the bound"
        );
        drop((first, second));
        db.connection()
            .begin()
            .await
            .expect("connections return to the pool");
    }
);

// A connection error never carries the password, even when the driver quotes the URL.
#[tokio::test]
async fn connection_errors_do_not_show_the_password() {
    for url in [
        "postgres://grafana:hunter2@127.0.0.1:1/grafana",
        "mysql://grafana:hunter2@127.0.0.1:1/grafana",
        "postgres://grafana:hunter2@[::1:5432x/grafana",
    ] {
        let mut settings = tandem_storage::DatabaseSettings::from_url(url).unwrap();
        settings.acquire_timeout = Duration::from_millis(500);
        let err = tandem_storage::Database::connect(&settings)
            .await
            .expect_err("nothing listens there");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}

// Grafana users write mariadb:// for MariaDB; it is the MySQL protocol.
#[tokio::test]
async fn a_mariadb_url_is_accepted() {
    let Some(test) = TestDatabase::create(Backend::Mysql).await else {
        return;
    };
    let tandem_storage::Location::Url(url) = test.settings().location else {
        unreachable!()
    };
    let settings =
        tandem_storage::DatabaseSettings::from_url(&url.replacen("mysql://", "mariadb://", 1))
            .unwrap();
    let db = tandem_storage::Database::connect(&settings)
        .await
        .expect("connect with mariadb://");
    db.ping().await.unwrap();
}
