use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::{
    ActiveValue, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};
use tandem_migrations::Migrator;
use tandem_migrations::sea_orm_migration::{MigratorTrait, SchemaManager, seaql_migrations};

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
                // 55P03: lock_not_available, raised when lock_timeout runs out.
                return Err(match crate::database::sqlstate(&err).as_deref() {
                    Some("55P03") => {
                        Error::MigrationLockTimeout(options.lock_timeout.unwrap_or_default())
                    }
                    _ => err.into(),
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
        // Lock names are server-wide and at most 64 characters: name the lock after a hash of
        // the database, so that databases on one server do not wait for each other.
        let lock_name = "CONCAT('tandem.migrate.', MD5(DATABASE()))";
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

/// Applies, in order, every known migration the database has not recorded, recording each
/// one as it goes.
///
/// A database may also record migrations this build does not know: a newer version has
/// run on it, as happens during a rolling upgrade. Migrations are additive, so this
/// instance starts anyway and says so.
async fn apply_pending(txn: &DatabaseTransaction) -> Result<Vec<String>, DbErr> {
    let recorded: HashSet<String> = Migrator::get_migration_models(txn)
        .await?
        .into_iter()
        .map(|model| model.version)
        .collect();
    let migrations = Migrator::migrations();
    let known: HashSet<&str> = migrations.iter().map(|m| m.name()).collect();
    let mut unknown: Vec<&str> = recorded
        .iter()
        .map(String::as_str)
        .filter(|name| !known.contains(name))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        tracing::warn!(
            migrations = ?unknown,
            "the database has migrations this version does not know (a newer version ran here); starting anyway"
        );
    }
    let manager = SchemaManager::new(txn);
    let mut applied = Vec::new();
    for migration in migrations.iter().filter(|m| !recorded.contains(m.name())) {
        let name = migration.name().to_owned();
        tracing::info!(migration = %name, "applying migration");
        migration.up(&manager).await?;
        seaql_migrations::Entity::insert(seaql_migrations::ActiveModel {
            version: ActiveValue::Set(name.clone()),
            applied_at: ActiveValue::Set(crate::now_ms() / 1000),
        })
        .exec(txn)
        .await?;
        applied.push(name);
    }
    Ok(applied)
}
