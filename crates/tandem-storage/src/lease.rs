use std::time::Duration;

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ActiveValue, ColumnTrait, EntityTrait, QueryFilter};
use time::OffsetDateTime;

use crate::clock::{db_now_ms, duration_ms, from_ms};
use crate::entity::lease::{self, Column, Entity};
use crate::{Database, Error, Result};

/// A lease held by one holder until it expires, is released, or is taken over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// What the lease is for.
    pub key: String,
    /// Who holds it (usually an instance id).
    pub holder: String,
    /// When it lapses unless renewed.
    pub expires_at: OffsetDateTime,
    /// A fencing token: it grows every time the lease is claimed, so work stamped with an
    /// older token can be recognised as stale.
    pub token: i64,
}

/// Time-limited exclusive ownership of a key, shared by all instances.
#[async_trait::async_trait]
pub trait Leases: Send + Sync {
    /// Claims `key` for `holder` for `ttl`, when it is free, expired or already `holder`'s.
    /// Returns `None` when another holder has an unexpired lease.
    ///
    /// A claim by the current holder succeeds again (with a new token), so a holder name
    /// must identify one claimant: two tasks sharing a name would both get the lease.
    async fn claim(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Extends a lease this holder still owns; `None` when it was taken over meanwhile.
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>>;

    /// Gives the lease up so that another holder can claim it at once; a no-op when it was
    /// already taken over.
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// The unexpired lease on `key`, if any.
    async fn current(&self, key: &str) -> Result<Option<Lease>>;
}

/// The sea-orm implementation, one `lease` row per key.
#[derive(Clone, Debug)]
pub struct SqlLeases {
    db: Database,
}

impl SqlLeases {
    /// Leases stored in `db`.
    pub fn new(db: Database) -> SqlLeases {
        SqlLeases { db }
    }
}

#[async_trait::async_trait]
impl Leases for SqlLeases {
    async fn claim(&self, key: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>> {
        check_name("lease key", key)?;
        check_name("lease holder", holder)?;
        let outcome = self
            .db
            .transaction(|tx| async move {
                // Read inside the transaction: a retried attempt must use its own time.
                let now = db_now_ms(&*tx).await?;
                let expires_at = now.saturating_add(duration_ms(ttl));
                // Take the row over when it is free or ours; the token grows on every claim.
                let updated = Entity::update_many()
                    .col_expr(Column::Token, Expr::col(Column::Token).add(1))
                    .col_expr(Column::Holder, Expr::value(holder))
                    .col_expr(Column::ExpiresAt, Expr::value(expires_at))
                    .filter(Column::LeaseKey.eq(key))
                    .filter(
                        Condition::any()
                            .add(Column::ExpiresAt.lte(now))
                            .add(Column::Holder.eq(holder)),
                    )
                    .exec(&*tx)
                    .await?;
                if updated.rows_affected == 1 {
                    let row = crate::first_row(Entity::find_by_id(key), &*tx).await?;
                    return Ok::<_, Error>(row.map(to_lease));
                }
                let exists = crate::first_row(Entity::find_by_id(key), &*tx)
                    .await?
                    .is_some();
                if exists {
                    return Ok(None);
                }
                let row = lease::ActiveModel {
                    lease_key: ActiveValue::Set(key.to_owned()),
                    holder: ActiveValue::Set(holder.to_owned()),
                    expires_at: ActiveValue::Set(expires_at),
                    token: ActiveValue::Set(1),
                };
                match Entity::insert(row.clone()).exec(&*tx).await {
                    Ok(_) => Ok(Some(Lease {
                        key: key.to_owned(),
                        holder: holder.to_owned(),
                        expires_at: from_ms(expires_at),
                        token: 1,
                    })),
                    Err(err) if crate::error::is_unique_violation(&err) => Ok(None),
                    Err(err) => Err(err.into()),
                }
            })
            .await;
        match outcome {
            Err(err) if err.is_unique_violation() => Ok(None),
            other => other,
        }
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let renewed = self
            .db
            .transaction(|tx| async move {
                let expires_at = db_now_ms(&*tx).await?.saturating_add(duration_ms(ttl));
                let result = Entity::update_many()
                    .col_expr(Column::ExpiresAt, Expr::value(expires_at))
                    .filter(Column::LeaseKey.eq(&lease.key))
                    .filter(Column::Holder.eq(&lease.holder))
                    .filter(Column::Token.eq(lease.token))
                    .exec(&*tx)
                    .await?;
                Ok::<_, Error>((result.rows_affected == 1).then_some(expires_at))
            })
            .await?;
        Ok(renewed.map(|expires_at| Lease {
            expires_at: from_ms(expires_at),
            ..lease.clone()
        }))
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        // Expire the row rather than delete it, so the fencing token keeps growing.
        self.db
            .transaction(|tx| async move {
                Entity::update_many()
                    .col_expr(Column::ExpiresAt, Expr::value(0i64))
                    .filter(Column::LeaseKey.eq(&lease.key))
                    .filter(Column::Holder.eq(&lease.holder))
                    .filter(Column::Token.eq(lease.token))
                    .exec(&*tx)
                    .await?;
                Ok::<_, Error>(())
            })
            .await
    }

    async fn current(&self, key: &str) -> Result<Option<Lease>> {
        check_name("lease key", key)?;
        let row = self
            .db
            .read(|conn| async move {
                let now = db_now_ms(&conn).await?;
                crate::first_row(
                    Entity::find_by_id(key).filter(Column::ExpiresAt.gt(now)),
                    &conn,
                )
                .await
            })
            .await?;
        Ok(row.map(to_lease))
    }
}

/// The longest lease key or holder accepted, the width of their columns.
pub const MAX_LEASE_NAME_LEN: usize = 190;

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_LEASE_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "a {what} must be 1 to {MAX_LEASE_NAME_LEN} bytes long"
        )));
    }
    Ok(())
}

fn to_lease(row: lease::Model) -> Lease {
    Lease {
        key: row.lease_key,
        holder: row.holder,
        expires_at: from_ms(row.expires_at),
        token: row.token,
    }
}
