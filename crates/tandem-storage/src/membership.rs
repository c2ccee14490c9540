use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{db_now_ms, duration_ms, from_ms};
use crate::entity::cluster_member::{self, Column, Entity};
use crate::{Database, Error, Result};

/// Who an instance is, as written in its heartbeat row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// A cluster-unique id, configured or generated at start.
    pub id: String,
    /// The address other instances and operators can reach it at (`host:port`).
    pub address: String,
    /// The version it runs.
    pub version: String,
    /// When it started.
    pub started_at: OffsetDateTime,
}

/// One instance as seen in the membership table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The instance.
    pub instance: Instance,
    /// When it last wrote its heartbeat.
    pub last_heartbeat: OffsetDateTime,
}

/// The cluster's membership view: each live instance keeps a heartbeat row fresh.
#[async_trait::async_trait]
pub trait Membership: Send + Sync {
    /// Writes (or refreshes) `instance`'s heartbeat row with the current time (the
    /// database's clock, as every time peers compare).
    async fn heartbeat(&self, instance: &Instance) -> Result<()>;

    /// Removes the instance's row, so peers stop counting it at once (graceful shutdown).
    async fn leave(&self, instance_id: &str) -> Result<()>;

    /// Instances whose heartbeat is younger than `peer_timeout`, ordered by id.
    async fn live_peers(&self, peer_timeout: Duration) -> Result<Vec<Peer>>;

    /// Deletes rows of instances silent for longer than `older_than`; returns how many.
    async fn purge(&self, older_than: Duration) -> Result<u64>;
}

/// The sea-orm membership table, `cluster_member`.
#[derive(Clone, Debug)]
pub struct SqlMembership {
    db: Database,
}

impl SqlMembership {
    /// Membership stored in `db`.
    pub fn new(db: Database) -> SqlMembership {
        SqlMembership { db }
    }
}

#[async_trait::async_trait]
impl Membership for SqlMembership {
    async fn heartbeat(&self, instance: &Instance) -> Result<()> {
        let started_at = (instance.started_at.unix_timestamp_nanos() / 1_000_000) as i64;
        self.db
            .transaction(|tx| async move {
                let row = cluster_member::ActiveModel {
                    instance_id: ActiveValue::Set(instance.id.clone()),
                    address: ActiveValue::Set(instance.address.clone()),
                    version: ActiveValue::Set(instance.version.clone()),
                    started_at: ActiveValue::Set(started_at),
                    last_heartbeat: ActiveValue::Set(db_now_ms(&*tx).await?),
                };
                Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(Column::InstanceId)
                            .update_columns([
                                Column::Address,
                                Column::Version,
                                Column::StartedAt,
                                Column::LastHeartbeat,
                            ])
                            .to_owned(),
                    )
                    .exec_without_returning(&*tx)
                    .await?;
                Ok::<_, Error>(())
            })
            .await
    }

    async fn leave(&self, instance_id: &str) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                Entity::delete_by_id(instance_id).exec(&*tx).await?;
                Ok::<_, Error>(())
            })
            .await
    }

    async fn live_peers(&self, peer_timeout: Duration) -> Result<Vec<Peer>> {
        let rows = self
            .db
            .read(|conn| async move {
                let since = db_now_ms(&conn)
                    .await?
                    .saturating_sub(duration_ms(peer_timeout));
                Entity::find()
                    .filter(Column::LastHeartbeat.gte(since))
                    .order_by_asc(Column::InstanceId)
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| Peer {
                instance: Instance {
                    id: row.instance_id,
                    address: row.address,
                    version: row.version,
                    started_at: from_ms(row.started_at),
                },
                last_heartbeat: from_ms(row.last_heartbeat),
            })
            .collect())
    }

    async fn purge(&self, older_than: Duration) -> Result<u64> {
        self.db
            .transaction(|tx| async move {
                let before = db_now_ms(&*tx)
                    .await?
                    .saturating_sub(duration_ms(older_than));
                let deleted = Entity::delete_many()
                    .filter(Column::LastHeartbeat.lt(before))
                    .exec(&*tx)
                    .await?;
                Ok::<_, Error>(deleted.rows_affected)
            })
            .await
    }
}

/// The background task that keeps this instance's heartbeat row fresh.
///
/// Dropping the handle stops the task without removing the row (peers then see the instance
/// die after `peer_timeout`); [`Heartbeat::leave`] stops it and removes the row.
pub struct Heartbeat {
    membership: Arc<dyn Membership>,
    instance_id: String,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Writes the first heartbeat (so the instance is a member once this returns), then
    /// refreshes it every `interval` until stopped.
    pub async fn start(
        membership: Arc<dyn Membership>,
        instance: Instance,
        interval: Duration,
    ) -> Result<Heartbeat> {
        membership.heartbeat(&instance).await?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let membership = membership.clone();
            let cancel = cancel.clone();
            let instance = instance.clone();
            async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticker.tick() => {}
                    }
                    if let Err(err) = membership.heartbeat(&instance).await {
                        tracing::warn!(error = %err, "writing the cluster heartbeat failed");
                    }
                }
            }
        });
        Ok(Heartbeat {
            membership,
            instance_id: instance.id,
            cancel,
            task: Some(task),
        })
    }

    /// Stops the task and removes this instance's row, so peers stop counting it at once.
    pub async fn leave(mut self) -> Result<()> {
        self.stop().await;
        self.membership.leave(&self.instance_id).await
    }

    async fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
