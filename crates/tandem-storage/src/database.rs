use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::settings::{Backend, DatabaseSettings, Location, url_password};
use crate::{Error, Result, TransactionError};

/// How long a pooled connection may sit unused before it is pinged on its next checkout.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// A pooled connection to Tandem's database, shared by every part of one instance.
///
/// Cloning is cheap: clones share the pool.
#[derive(Clone)]
pub struct Database {
    conn: DatabaseConnection,
    backend: Backend,
    retries: Retries,
}

#[derive(Clone, Copy, Debug)]
struct Retries {
    query: u32,
    transaction: u32,
}

/// The handle a [`Database::transaction`] closure works with; it dereferences to sea-orm's
/// [`DatabaseTransaction`], so queries take `&*tx`.
#[derive(Clone)]
pub struct Tx(Arc<DatabaseTransaction>);

impl Deref for Tx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.0
    }
}

impl Database {
    /// Opens the pool described by `settings` and checks that the database answers.
    ///
    /// SQLite files are created when missing, use WAL (unless disabled) and wait on locks
    /// held by other processes for `sqlite_busy_timeout`. MySQL connections use found-rows
    /// semantics (sqlx sets `CLIENT_FOUND_ROWS`), so an `UPDATE` reports the rows it matched
    /// even when it changed nothing, which optimistic version checks rely on.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Database> {
        let url = match &settings.location {
            Location::SqliteFile(path) => {
                if settings.backend != Backend::Sqlite {
                    return Err(Error::InvalidSettings(
                        "a file path is only valid for sqlite3".to_owned(),
                    ));
                }
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|err| {
                        Error::InvalidSettings(format!(
                            "cannot create the directory {} for the sqlite file: {err}",
                            dir.display()
                        ))
                    })?;
                }
                "sqlite://tandem.db".to_owned()
            }
            // sqlx speaks MySQL to MariaDB; accept Grafana users' mariadb:// spelling.
            Location::Url(url) => match url.strip_prefix("mariadb://") {
                Some(rest) => format!("mysql://{rest}"),
                None => url.clone(),
            },
        };
        let password = url_password(&url).map(str::to_owned);
        let max_open = settings.max_open_conn.max(1);
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_open)
            .min_connections(settings.max_idle_conn.min(max_open))
            .max_lifetime(settings.conn_max_lifetime)
            .acquire_timeout(settings.acquire_timeout)
            .connect_timeout(settings.acquire_timeout)
            .sqlx_logging(settings.log_queries)
            // sqlx pings every connection it hands out by default: one extra round trip per
            // query, a third of the work of a session check. A connection in steady use is
            // known to be alive (sqlx also tests each one as it comes back to the pool), so
            // only one idle for a while is pinged first.
            .test_before_acquire_if_idle_for(IDLE_BEFORE_PING);
        if let Location::SqliteFile(path) = &settings.location {
            let path = path.clone();
            let journal = if settings.wal {
                sqlx::sqlite::SqliteJournalMode::Wal
            } else {
                sqlx::sqlite::SqliteJournalMode::Delete
            };
            let busy_timeout = settings.sqlite_busy_timeout;
            options.map_sqlx_sqlite_opts(move |opts| {
                opts.filename(&path)
                    .create_if_missing(true)
                    .journal_mode(journal)
                    .busy_timeout(busy_timeout)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .foreign_keys(true)
            });
        }
        let conn = connect_with_retries(options).await.map_err(|err| {
            // Driver messages may quote the connection string; never let a password through.
            let mut message = err.to_string();
            if let Some(password) = password.as_deref() {
                message = message.replace(password, "***");
            }
            Error::Connect(message)
        })?;
        let detected = match conn.get_database_backend() {
            sea_orm::DbBackend::Sqlite => Backend::Sqlite,
            sea_orm::DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Mysql,
        };
        if detected != settings.backend {
            return Err(Error::InvalidSettings(format!(
                "[database] type is {} but the url points at {}",
                settings.backend.grafana_name(),
                detected.grafana_name()
            )));
        }
        Ok(Database {
            conn,
            backend: detected,
            retries: Retries {
                query: settings.query_retries,
                transaction: settings.transaction_retries,
            },
        })
    }

    /// The sea-orm connection, for the sea-orm implementations of the domain stores.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// The engine behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        self.conn.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    /// Runs `f` in one transaction and commits it, running it again from the start (up to
    /// `transaction_retries` times, with exponential backoff from 100 ms capped at 2 s) when
    /// the database reports a busy, deadlock or serialization error.
    ///
    /// Other errors are returned at once and the transaction is rolled back. Because `f` may
    /// run more than once, it must not have side effects outside the transaction, and it
    /// should read the clock itself rather than capture a time taken before the call. On SQLite the
    /// transaction starts with `BEGIN IMMEDIATE`, so two writers queue on the busy timeout
    /// instead of failing when a reader tries to become a writer.
    pub async fn transaction<T, E, F, Fut>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TransactionError,
    {
        let mut attempt = 0;
        loop {
            let result: Result<T, E> = async {
                let tx = Tx(Arc::new(self.begin_write().await.map_err(Error::from)?));
                let value = f(tx.clone()).await?;
                let txn = Arc::try_unwrap(tx.0).map_err(|_| Error::TransactionHandleEscaped)?;
                txn.commit().await.map_err(Error::from)?;
                Ok(value)
            }
            .await;
            match result {
                Err(err) if err.is_retryable() && attempt < self.retries.transaction => {
                    attempt += 1;
                    tracing::debug!(attempt, "transaction conflicted, retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Runs a read `f` on a handle to the pool, retrying it up to `query_retries` times on a retryable error.
    pub async fn read<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(DatabaseConnection) -> Fut,
        Fut: Future<Output = Result<T, DbErr>>,
    {
        let mut attempt = 0;
        loop {
            match f(self.conn.clone()).await {
                Err(err) if is_retryable(&err) && attempt < self.retries.query => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other.map_err(Error::from),
            }
        }
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        if let Err(err) = self.conn.close_by_ref().await {
            tracing::debug!(error = %err, "closing the database pool failed");
        }
    }

    async fn begin_write(&self) -> Result<DatabaseTransaction, DbErr> {
        let sqlite_transaction_mode =
            (self.backend == Backend::Sqlite).then_some(SqliteTransactionMode::Immediate);
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode,
                ..TransactionOptions::default()
            })
            .await
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Opens the pool, retrying while the database reports it busy: on a fresh SQLite file,
/// the first connections of several processes race to switch it to WAL, and the losers
/// get SQLITE_BUSY without waiting on the busy timeout.
async fn connect_with_retries(options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    const ATTEMPTS: u32 = 10;
    let mut attempt = 0;
    loop {
        match sea_orm::Database::connect(options.clone()).await {
            Err(err) if is_retryable(&err) && attempt < ATTEMPTS => {
                attempt += 1;
                tracing::debug!(attempt, error = %err, "database busy while connecting, retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// 100 ms, 200 ms, 400 ms … capped at 2 s, with up to 25 % jitter so that the instances
/// that collided do not collide again in step.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(2_000);
    let jitter = rand::rng().random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// The SQLSTATE (or engine code) a database error carries, if any.
pub(crate) fn sqlstate(err: &DbErr) -> Option<String> {
    let (DbErr::Exec(RuntimeErr::SqlxError(err))
    | DbErr::Query(RuntimeErr::SqlxError(err))
    | DbErr::Conn(RuntimeErr::SqlxError(err))) = err
    else {
        return None;
    };
    match err.as_ref() {
        sqlx::Error::Database(db_err) => db_err.code().map(|code| code.into_owned()),
        _ => None,
    }
}

/// Whether a database error is a transient conflict that a retry of the whole transaction
/// can get past.
/// Whether `err` says the database cannot be reached now (no connection from the pool, a
/// connection lost or refused, the server shutting down or starting), rather than that a
/// statement was wrong: another instance, or this one a moment later, may succeed.
pub(crate) fn is_unavailable(err: &DbErr) -> bool {
    let err = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(err)) | DbErr::Query(RuntimeErr::SqlxError(err)) => err,
        _ => return false,
    };
    match err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db_err) => {
            if let Some(mysql) = db_err.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // 1053: server shutdown in progress; 2006: server has gone away; 2013: lost
                // connection during query.
                return matches!(mysql.number(), 1053 | 2006 | 2013);
            }
            if db_err
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // Class 08: connection exception; 57P01..57P03: admin or crash shutdown,
                // cannot connect now (starting up or recovering).
                let code = db_err.code().unwrap_or_default();
                return code.starts_with("08")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03");
            }
            false
        }
        _ => false,
    }
}

pub(crate) fn is_retryable(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(err))
    | DbErr::Query(RuntimeErr::SqlxError(err))
    | DbErr::Conn(RuntimeErr::SqlxError(err))) = err
    else {
        return false;
    };
    let sqlx::Error::Database(db_err) = err.as_ref() else {
        return false;
    };
    if let Some(mysql) = db_err.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1213: deadlock found; 1205: lock wait timeout exceeded; 1020: record changed since
        // last read (MariaDB 11.6+ with innodb_snapshot_isolation).
        return matches!(mysql.number(), 1213 | 1205 | 1020);
    }
    let code = db_err.code().unwrap_or_default();
    if db_err
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        // 40001: serialization_failure; 40P01: deadlock_detected.
        return matches!(code.as_ref(), "40001" | "40P01");
    }
    // SQLite reports extended result codes; the primary code is the low byte.
    // 5: SQLITE_BUSY (and BUSY_SNAPSHOT, BUSY_RECOVERY); 6: SQLITE_LOCKED.
    code.parse::<i32>()
        .map(|code| matches!(code & 0xff, 5 | 6))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_and_stops_at_2s() {
        for (attempt, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1_600),
            (6, 2_000),
            (30, 2_000),
        ] {
            let wait = backoff(attempt).as_millis() as u64;
            assert!(
                (base..=base + base / 4).contains(&wait),
                "attempt {attempt}: {wait} ms"
            );
        }
    }

    #[test]
    fn errors_that_are_not_database_conflicts_are_not_retried() {
        assert!(!is_retryable(&DbErr::RecordNotFound("x".into())));
        assert!(!is_retryable(&DbErr::Custom("boom".into())));
    }
}
