//! Shard leases of sharded evaluation: one lease row per holder (`alert_shard_holder`),
//! renewed in one row write, and one row per shard (`alert_shard`), written only when the
//! shard changes hands.
//!
//! A shard row names its holder and the slot time its claim starts from; the holder's row
//! has the lease's expiry and `claimed_until`, the slot time up to which it may evaluate all
//! of its shards. So the watermark of a held shard is the larger of the two, and a claimer
//! taking a shard from an expired holder starts there. Taking over also ends the expired
//! lease for good (`expires_at = 0`) under the row's lock, so its holder, should it only have
//! stalled, can no longer renew it and raise the watermark behind the claimer's back. Every
//! time compared comes from the database's clock.
//!
//! A shard row whose holder has no holder row was written by the previous version, which
//! kept a lease per shard row (`expires_at`, renewed with `claimed_until`): it is honoured as
//! such, and the rows held in this form say `expires_at` = [`HELD`] so that such an instance
//! never takes them (see migration `000010`).

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

use crate::sql::{SqlAlertStore, db_now, placeholders};
use crate::store::{HolderLease, ShardClaim};
use crate::{Error, Result};

/// `alert_shard.expires_at` of a shard held under a holder's lease.
const HELD: i64 = i64::MAX;

/// A holder row expired this long, and named by no shard, is deleted at the next registration.
const FORGET_HOLDERS_AFTER_MS: i64 = 3_600_000;

fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
}

fn greatest(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Sqlite {
        "MAX"
    } else {
        "GREATEST"
    }
}

fn for_update(backend: DbBackend) -> &'static str {
    if backend == DbBackend::Sqlite {
        // Writers are serialised by `BEGIN IMMEDIATE`.
        ""
    } else {
        " FOR UPDATE"
    }
}

/// `(expires_at, claimed_until, db_now)` of a holder row.
fn lease_of(row: &QueryResult) -> Result<(i64, i64, i64)> {
    Ok((
        row.try_get("", "expires_at")?,
        row.try_get("", "claimed_until")?,
        row.try_get("", "db_now")?,
    ))
}

pub(super) async fn register_holder(
    store: &SqlAlertStore,
    holder: &str,
    ttl_ms: i64,
    horizon_ms: i64,
) -> Result<HolderLease> {
    let backend = store.backend();
    let now = db_now(backend);
    let select = format!("SELECT {now} AS db_now");
    let lease = store
        .db
        .transaction(|tx| {
            let select = select.clone();
            async move {
                let row = tx
                    .query_one_raw(Statement::from_string(backend, select))
                    .await?;
                let db_time: i64 = match row {
                    Some(row) => row.try_get("", "db_now")?,
                    None => tandem_storage::now_ms(),
                };
                let claimed_until = db_time.saturating_add(horizon_ms);
                tx.execute_raw(statement(
                    backend,
                    "INSERT INTO alert_shard_holder (holder, expires_at, claimed_until) VALUES (?, ?, ?)",
                    vec![
                        Value::from(holder),
                        Value::from(db_time.saturating_add(ttl_ms)),
                        Value::from(claimed_until),
                    ],
                ))
                .await?;
                Ok::<_, Error>(HolderLease { claimed_until })
            }
        })
        .await?;
    if let Err(err) = forget_holders(store).await {
        tracing::warn!(error = %err, "deleting old alerting shard holders failed");
    }
    Ok(lease)
}

/// Deletes the rows of holders long expired that no shard names (every start of a scheduler
/// registers a new holder). A shard can only come to name a holder whose lease is live, so
/// the holders read as named stay a safe answer for the hour of margin.
async fn forget_holders(store: &SqlAlertStore) -> Result<()> {
    let backend = store.backend();
    let now = db_now(backend);
    store
        .db
        .transaction(|tx| async move {
            let named = tx
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT DISTINCT holder FROM alert_shard",
                ))
                .await?;
            let named: Vec<String> = named
                .iter()
                .map(|row| row.try_get::<String>("", "holder"))
                .collect::<Result<_, _>>()?;
            let mut sql = format!(
                "DELETE FROM alert_shard_holder WHERE expires_at < {now} - {FORGET_HOLDERS_AFTER_MS}"
            );
            if !named.is_empty() {
                sql.push_str(" AND holder NOT IN (");
                sql.push_str(&vec!["?"; named.len()].join(", "));
                sql.push(')');
            }
            let values = named.into_iter().map(Value::from).collect();
            tx.execute_raw(statement(backend, &sql, values)).await?;
            Ok::<_, Error>(())
        })
        .await
}

pub(super) async fn renew_holder(
    store: &SqlAlertStore,
    holder: &str,
    ttl_ms: i64,
    horizon_ms: i64,
) -> Result<Option<HolderLease>> {
    let backend = store.backend();
    let now = db_now(backend);
    let greatest = greatest(backend);
    let update = format!(
        "UPDATE alert_shard_holder SET expires_at = {now} + ?, claimed_until = {greatest}(claimed_until, {now} + ?) \
         WHERE holder = ? AND expires_at > {now}"
    );
    let select = format!(
        "SELECT expires_at, claimed_until, {now} AS db_now FROM alert_shard_holder WHERE holder = ?"
    );
    store
        .db
        .transaction(|tx| {
            let (update, select) = (update.clone(), select.clone());
            async move {
                tx.execute_raw(statement(
                    backend,
                    &update,
                    vec![
                        Value::from(ttl_ms),
                        Value::from(horizon_ms),
                        Value::from(holder),
                    ],
                ))
                .await?;
                // Read back rather than trust the affected-row count, which MySQL gives as the
                // rows changed, not matched.
                let row = tx
                    .query_one_raw(statement(backend, &select, vec![Value::from(holder)]))
                    .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let (expires_at, claimed_until, db_time) = lease_of(&row)?;
                Ok::<_, Error>((expires_at > db_time).then_some(HolderLease { claimed_until }))
            }
        })
        .await
}

pub(super) async fn end_holder(store: &SqlAlertStore, holder: &str) -> Result<()> {
    let backend = store.backend();
    store
        .db
        .transaction(|tx| async move {
            tx.execute_raw(statement(
                backend,
                "UPDATE alert_shard_holder SET expires_at = 0 WHERE holder = ?",
                vec![Value::from(holder)],
            ))
            .await?;
            Ok::<_, Error>(())
        })
        .await
}

pub(super) async fn claim_shard(
    store: &SqlAlertStore,
    shard: u32,
    holder: &str,
) -> Result<Option<ShardClaim>> {
    let backend = store.backend();
    let now = db_now(backend);
    let lock = for_update(backend);
    let select_holder = format!(
        "SELECT expires_at, claimed_until, {now} AS db_now FROM alert_shard_holder WHERE holder = ?{lock}"
    );
    let select_shard = format!(
        "SELECT holder, token, expires_at, claimed_until, {now} AS db_now FROM alert_shard WHERE shard = ?{lock}"
    );
    let fence = format!(
        "UPDATE alert_shard_holder SET expires_at = 0 WHERE holder = ? AND expires_at <= {now}"
    );
    let outcome = store
        .db
        .transaction(|tx| {
            let (select_holder, select_shard, fence) =
                (select_holder.clone(), select_shard.clone(), fence.clone());
            async move {
                let lease = |name: String| {
                    let (tx, select_holder) = (&tx, &select_holder);
                    async move {
                        let row = tx
                            .query_one_raw(statement(backend, select_holder, vec![Value::from(name)]))
                            .await?;
                        row.as_ref().map(lease_of).transpose()
                    }
                };
                match lease(holder.to_owned()).await? {
                    Some((expires_at, _, db_time)) if expires_at > db_time => {}
                    _ => return Ok(None),
                }
                let shard_value = Value::from(i64::from(shard));
                let row = tx
                    .query_one_raw(statement(backend, &select_shard, vec![shard_value.clone()]))
                    .await?;
                let Some(row) = row else {
                    tx.execute_raw(statement(
                        backend,
                        "INSERT INTO alert_shard (shard, holder, token, expires_at, claimed_until) VALUES (?, ?, 1, ?, 0)",
                        vec![shard_value, Value::from(holder), Value::from(HELD)],
                    ))
                    .await?;
                    return Ok::<_, Error>(Some(ShardClaim {
                        shard,
                        token: 1,
                        start: 0,
                    }));
                };
                let previous: String = row.try_get("", "holder")?;
                let token: i64 = row.try_get("", "token")?;
                let from: i64 = row.try_get("", "claimed_until")?;
                let row_expires_at: i64 = row.try_get("", "expires_at")?;
                let db_time: i64 = row.try_get("", "db_now")?;
                let start = if previous.is_empty() {
                    // Released: its watermark is the shard row's.
                    from
                } else {
                    if previous != holder {
                        tx.execute_raw(statement(backend, &fence, vec![Value::from(previous.as_str())]))
                            .await?;
                    }
                    match lease(previous.clone()).await? {
                        Some((expires_at, _, db_time))
                            if previous != holder && expires_at > db_time =>
                        {
                            return Ok(None);
                        }
                        Some((_, claimed_until, _)) => from.max(claimed_until),
                        // A holder of the previous version: the lease is the row's own.
                        None if row_expires_at > db_time => return Ok(None),
                        None => from,
                    }
                };
                let updated = tx
                    .execute_raw(statement(
                        backend,
                        "UPDATE alert_shard SET holder = ?, token = ?, expires_at = ?, claimed_until = ? WHERE shard = ? AND token = ?",
                        vec![
                            Value::from(holder),
                            Value::from(token + 1),
                            Value::from(HELD),
                            Value::from(start),
                            shard_value,
                            Value::from(token),
                        ],
                    ))
                    .await?;
                if updated.rows_affected() != 1 {
                    return Ok(None);
                }
                Ok(Some(ShardClaim {
                    shard,
                    token: token + 1,
                    start,
                }))
            }
        })
        .await;
    match outcome {
        Err(err) if err.is_unique_violation() => Ok(None),
        other => other,
    }
}

pub(super) async fn release_shard(
    store: &SqlAlertStore,
    holder: &str,
    claim: ShardClaim,
    evaluated_until: i64,
) -> Result<()> {
    let backend = store.backend();
    let until = evaluated_until.max(claim.start);
    store
        .db
        .transaction(|tx| async move {
            tx.execute_raw(statement(
                backend,
                "UPDATE alert_shard SET holder = '', expires_at = 0, claimed_until = ? WHERE shard = ? AND holder = ? AND token = ?",
                vec![
                    Value::from(until),
                    Value::from(i64::from(claim.shard)),
                    Value::from(holder),
                    Value::from(claim.token),
                ],
            ))
            .await?;
            Ok::<_, Error>(())
        })
        .await
}
