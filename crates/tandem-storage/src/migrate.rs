use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};
use sea_orm::{SqliteTransactionMode, TransactionOptions};
use tandem_migrations::Migrator;
use tandem_migrations::sea_orm_migration::MigratorTrait;

use crate::settings::Backend;
use crate::{Database, Error, Result};

/// The PostgreSQL advisory lock key guarding migrations ("tandem_m" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x7461_6e64_656d_5f6d;

/// How migrations are guarded; taken from [`DatabaseSettings`](crate::DatabaseSettings).
#[derive(Clone, Copy, Debug)]
pub struct MigrationOptions {
    /// Take the database-level lock (`migration_locking`).
    pub locking: bool,
    /// Give up waiting for the lock after this long; `None` waits as long as it takes.
    pub lock_timeout: Option<Duration>,
}

impl Database {
    /// Applies every pending migration under a database-level lock and returns the names of
    /// the migrations this call applied.
    ///
    /// The lock is a PostgreSQL transaction-scoped advisory lock, a MySQL `GET_LOCK` named
    /// after the database, or a SQLite exclusive transaction. When several instances start at
    /// once, one applies the migrations and the others wait for the lock, find nothing
    /// pending and return an empty list; none of them fails. A lock holder that dies releases
    /// the lock with its connection.
    pub async fn migrate(&self, options: MigrationOptions) -> Result<Vec<String>> {
        let started = Instant::now();
        let applied = match self.backend() {
            Backend::Postgres => self.migrate_postgres(options).await?,
            Backend::Mysql => self.migrate_mysql(options).await?,
            Backend::Sqlite => self.migrate_sqlite(options).await?,
        };
        if applied.is_empty() {
            tracing::info!("database schema is up to date");
        } else {
            tracing::info!(
                count = applied.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "applied migrations"
            );
        }
        Ok(applied)
    }

    async fn migrate_postgres(&self, options: MigrationOptions) -> Result<Vec<String>> {
        let txn = self.connection().begin().await?;
        if options.locking {
            if let Some(timeout) = options.lock_timeout {
                let sql = format!(
                    "SET LOCAL lock_timeout = '{}ms'",
                    timeout.as_millis().max(1)
                );
                txn.execute_unprepared(&sql).await?;
            }
            tracing::debug!("waiting for the migration lock");
            let lock = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1)",
                [PG_MIGRATION_LOCK.into()],
            );
            if let Err(err) = txn.execute_raw(lock).await {
                return Err(match err.to_string().contains("lock timeout") {
                    true => Error::MigrationLockTimeout(options.lock_timeout.unwrap_or_default()),
                    false => err.into(),
                });
            }
            txn.execute_unprepared("SET LOCAL lock_timeout = 0").await?;
        }
        let applied = apply_pending(&txn).await?;
        txn.commit().await?;
        Ok(applied)
    }

    async fn migrate_mysql(&self, options: MigrationOptions) -> Result<Vec<String>> {
        // A transaction pins one pooled connection; GET_LOCK belongs to that session, and
        // MySQL's implicit commits around DDL do not release it.
        let txn = self.connection().begin().await?;
        let lock_name = "CONCAT('tandem.migrate.', DATABASE())";
        if options.locking {
            // MariaDB does not take a negative timeout as "forever"; a year is as good.
            let seconds = options
                .lock_timeout
                .map_or(31_536_000, |t| t.as_secs().max(1) as i64);
            tracing::debug!("waiting for the migration lock");
            let got = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::MySql,
                    format!("SELECT GET_LOCK({lock_name}, ?) AS got"),
                    [seconds.into()],
                ))
                .await?
                .and_then(|row| row.try_get::<Option<i64>>("", "got").ok().flatten());
            if got != Some(1) {
                return Err(Error::MigrationLockTimeout(
                    options.lock_timeout.unwrap_or_default(),
                ));
            }
        }
        let applied = apply_pending(&txn).await;
        if options.locking {
            let release = format!("SELECT RELEASE_LOCK({lock_name})");
            if let Err(err) = txn.execute_unprepared(&release).await {
                tracing::warn!(error = %err, "releasing the migration lock failed");
            }
        }
        txn.commit().await?;
        Ok(applied?)
    }

    async fn migrate_sqlite(&self, options: MigrationOptions) -> Result<Vec<String>> {
        let exclusive = TransactionOptions {
            sqlite_transaction_mode: Some(if options.locking {
                SqliteTransactionMode::Exclusive
            } else {
                SqliteTransactionMode::Deferred
            }),
            ..TransactionOptions::default()
        };
        let deadline = options.lock_timeout.map(|timeout| Instant::now() + timeout);
        // BEGIN EXCLUSIVE waits the busy timeout for another process's migration; a long
        // migration elsewhere can outlast it, so keep asking until our own deadline.
        let txn = loop {
            match self.connection().begin_with_options(exclusive).await {
                Ok(txn) => break txn,
                Err(err) if crate::database::is_retryable(&err) => {
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        return Err(Error::MigrationLockTimeout(
                            options.lock_timeout.unwrap_or_default(),
                        ));
                    }
                    tracing::debug!("waiting for the migration lock");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => return Err(err.into()),
            }
        };
        let applied = apply_pending(&txn).await?;
        txn.commit().await?;
        Ok(applied)
    }
}

async fn apply_pending(txn: &DatabaseTransaction) -> Result<Vec<String>, DbErr> {
    let pending: Vec<String> = Migrator::get_pending_migrations(txn)
        .await?
        .iter()
        .map(|migration| migration.name().to_owned())
        .collect();
    for name in &pending {
        tracing::info!(migration = %name, "applying migration");
    }
    if !pending.is_empty() {
        Migrator::up(txn, None).await?;
    }
    Ok(pending)
}
