use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, the unit of every time column Tandem writes, by this
/// host's clock.
///
/// Where instances compare each other's times (heartbeats, leases, singleton jobs), they
/// take them from the database's clock instead ([`db_now_ms`]), so one host's skewed
/// clock does not make it see its peers dead or take a lease early.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in whole milliseconds, saturating instead of overflowing.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Turns a stored millisecond timestamp back into a date.
pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The database's clock in epoch milliseconds, as an SQL expression for `backend`. On
/// SQLite it is the clock of the host running the query, which every instance sharing the
/// file shares.
pub fn db_now_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)"
        }
        DbBackend::MySql => "CAST(FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED)",
        _ => "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)",
    }
}

/// Reads the database's clock ([`db_now_sql`]) in epoch milliseconds, on `conn` (inside a
/// transaction, so a retried attempt reads its own time).
pub async fn db_now_ms(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT {} AS db_now", db_now_sql(backend)),
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the database's clock".to_owned()))?;
    row.try_get("", "db_now")
}
