//! The sea-orm [`SnapshotStore`], over the `dashboard_snapshot` table. Keys are unique
//! across orgs (an index), so a key names one snapshot wherever it is read.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;
use tandem_storage::{from_ms, now_ms};

use crate::snapshots::{
    MAX_SNAPSHOT_LIST, NewSnapshot, Snapshot, SnapshotStore, check_new, generate_snapshot_key,
};
use crate::sql::entity::dashboard_snapshot as row;
use crate::sql::{SqlDashboardStore, lower};
use crate::{Error, OrgId, Result, UserId};

#[async_trait::async_trait]
impl SnapshotStore for SqlDashboardStore {
    async fn create_snapshot(&self, new: NewSnapshot) -> Result<Snapshot> {
        check_new(&new)?;
        // Drawn once, outside the transaction, so a retried run writes the same keys.
        let key = new.key.clone().unwrap_or_else(generate_snapshot_key);
        let delete_key = new.delete_key.clone().unwrap_or_else(generate_snapshot_key);
        let name = if new.name.trim().is_empty() {
            new.dashboard
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(crate::snapshots::MAX_SNAPSHOT_NAME_LEN)
                .collect()
        } else {
            new.name.trim().to_owned()
        };
        let text = new.dashboard.to_string();
        let (new, key, delete_key, name, text) = (&new, &key, &delete_key, &name, &text);
        let created = self
            .db
            .transaction(|tx| async move {
                let now = now_ms();
                let expires = if new.expires_seconds > 0 {
                    now.saturating_add(new.expires_seconds.saturating_mul(1000))
                } else {
                    0
                };
                row::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(new.org_id.0),
                    name: ActiveValue::Set(name.clone()),
                    snapshot_key: ActiveValue::Set(key.clone()),
                    delete_key: ActiveValue::Set(delete_key.clone()),
                    user_id: ActiveValue::Set(new.user_id.0),
                    external: ActiveValue::Set(new.external),
                    external_url: ActiveValue::Set(new.external_url.clone()),
                    dashboard: ActiveValue::Set(text.clone()),
                    expires: ActiveValue::Set(expires),
                    created: ActiveValue::Set(now),
                    updated: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(Error::from)
            })
            .await
            .map_err(|err| {
                if err.is_unique_violation() {
                    Error::SnapshotKeyTaken
                } else {
                    err
                }
            })?;
        Ok(to_snapshot(created))
    }

    async fn snapshot(&self, key: &str) -> Result<Option<Snapshot>> {
        self.find(row::Column::SnapshotKey, key).await
    }

    async fn snapshot_by_delete_key(&self, delete_key: &str) -> Result<Option<Snapshot>> {
        self.find(row::Column::DeleteKey, delete_key).await
    }

    async fn delete_snapshot(&self, key: &str) -> Result<bool> {
        let deleted = self
            .db
            .transaction(|tx| async move {
                row::Entity::delete_many()
                    .filter(row::Column::SnapshotKey.eq(key))
                    .exec(&*tx)
                    .await
                    .map_err(Error::from)
            })
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    async fn list_snapshots(&self, org: OrgId, query: &str, limit: u64) -> Result<Vec<Snapshot>> {
        let limit = if limit == 0 || limit > MAX_SNAPSHOT_LIST {
            MAX_SNAPSHOT_LIST
        } else {
            limit
        };
        let wanted = lower(query.trim());
        let now = now_ms();
        let rows: Vec<(i64, i64, String, String, i64, bool, String, i64, i64, i64)> = self
            .db
            .read(|conn| async move {
                row::Entity::find()
                    .select_only()
                    .columns([
                        row::Column::Id,
                        row::Column::OrgId,
                        row::Column::Name,
                        row::Column::SnapshotKey,
                        row::Column::UserId,
                        row::Column::External,
                        row::Column::ExternalUrl,
                        row::Column::Expires,
                        row::Column::Created,
                        row::Column::Updated,
                    ])
                    .filter(row::Column::OrgId.eq(org.0))
                    .filter(unexpired(now))
                    .order_by_desc(row::Column::Created)
                    .order_by_desc(row::Column::Id)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| wanted.is_empty() || lower(&r.2).contains(&wanted))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|r| Snapshot {
                id: r.0,
                org_id: OrgId(r.1),
                name: r.2,
                key: r.3,
                delete_key: String::new(),
                user_id: UserId(r.4),
                external: r.5,
                external_url: r.6,
                dashboard: Value::Null,
                expires: (r.7 > 0).then(|| from_ms(r.7)),
                created: from_ms(r.8),
                updated: from_ms(r.9),
            })
            .collect())
    }

    async fn delete_expired(&self) -> Result<u64> {
        let now = now_ms();
        let deleted = self
            .db
            .transaction(|tx| async move {
                row::Entity::delete_many()
                    .filter(row::Column::Expires.gt(0))
                    .filter(row::Column::Expires.lte(now))
                    .exec(&*tx)
                    .await
                    .map_err(Error::from)
            })
            .await?;
        Ok(deleted.rows_affected)
    }
}

impl SqlDashboardStore {
    async fn find(&self, column: row::Column, key: &str) -> Result<Option<Snapshot>> {
        if crate::snapshots::check_key("key", key).is_err() {
            return Ok(None);
        }
        let now = now_ms();
        let found = self
            .db
            .read(|conn| async move {
                tandem_storage::first_row(
                    row::Entity::find()
                        .filter(column.eq(key))
                        .filter(unexpired(now)),
                    &conn,
                )
                .await
            })
            .await?;
        Ok(found.map(to_snapshot))
    }
}

/// Rows that never expire or expire after `now`.
fn unexpired(now: i64) -> Condition {
    Condition::any()
        .add(row::Column::Expires.eq(0))
        .add(Expr::col(row::Column::Expires).gt(now))
}

fn to_snapshot(found: row::Model) -> Snapshot {
    Snapshot {
        id: found.id,
        org_id: OrgId(found.org_id),
        name: found.name,
        key: found.snapshot_key,
        delete_key: found.delete_key,
        user_id: UserId(found.user_id),
        external: found.external,
        external_url: found.external_url,
        dashboard: serde_json::from_str(&found.dashboard).unwrap_or(Value::Null),
        expires: (found.expires > 0).then(|| from_ms(found.expires)),
        created: from_ms(found.created),
        updated: from_ms(found.updated),
    }
}
