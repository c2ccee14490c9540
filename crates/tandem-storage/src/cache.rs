use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue, ColumnTrait, EntityTrait, QueryFilter};

use crate::clock::{duration_ms, now_ms};
use crate::entity::cache_data::{self, Column, Entity};
use crate::{Database, Error, Result};

/// The longest key the cache accepts, as in Grafana's `cache_data` table.
pub const MAX_KEY_LEN: usize = 168;

/// A key-value cache shared by all instances, entries expiring after a TTL (Grafana's
/// `[remote_cache] type = database`).
#[async_trait::async_trait]
pub trait Cache: Send + Sync {
    /// The value stored under `key`, unless it is missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Stores `value` under `key`, replacing any previous value; `ttl` of `None` keeps it
    /// until deleted.
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()>;

    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Deletes every expired entry; returns how many were deleted.
    async fn delete_expired(&self) -> Result<u64>;
}

/// The sea-orm cache over the `cache_data` table.
#[derive(Clone, Debug)]
pub struct SqlCache {
    db: Database,
}

impl SqlCache {
    /// A cache stored in `db`.
    pub fn new(db: Database) -> SqlCache {
        SqlCache { db }
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::InvalidArgument(format!(
            "a cache key must be 1 to {MAX_KEY_LEN} bytes long"
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Cache for SqlCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let now = now_ms();
        let row = self
            .db
            .read(|conn| async move { crate::first_row(Entity::find_by_id(key), &conn).await })
            .await?;
        Ok(row
            .filter(|row| row.expires_at == 0 || row.expires_at > now)
            .map(|row| row.data))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        check_key(key)?;
        let now = now_ms();
        let expires_at = ttl.map_or(0, |ttl| now.saturating_add(duration_ms(ttl).max(1)));
        self.db
            .transaction(|tx| async move {
                let row = cache_data::ActiveModel {
                    cache_key: ActiveValue::Set(key.to_owned()),
                    data: ActiveValue::Set(value.to_vec()),
                    expires_at: ActiveValue::Set(expires_at),
                    created_at: ActiveValue::Set(now),
                };
                Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(Column::CacheKey)
                            .update_columns([Column::Data, Column::ExpiresAt, Column::CreatedAt])
                            .to_owned(),
                    )
                    .exec_without_returning(&*tx)
                    .await?;
                Ok::<_, Error>(())
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.db
            .transaction(|tx| async move {
                Entity::delete_by_id(key).exec(&*tx).await?;
                Ok::<_, Error>(())
            })
            .await
    }

    async fn delete_expired(&self) -> Result<u64> {
        let now = now_ms();
        self.db
            .transaction(|tx| async move {
                let deleted = Entity::delete_many()
                    .filter(Column::ExpiresAt.ne(0))
                    .filter(Column::ExpiresAt.lte(now))
                    .exec(&*tx)
                    .await?;
                Ok::<_, Error>(deleted.rows_affected)
            })
            .await
    }
}
