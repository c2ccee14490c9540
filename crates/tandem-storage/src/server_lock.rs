use std::future::Future;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue, ColumnTrait, EntityTrait, QueryFilter};

use crate::clock::{db_now_ms, duration_ms};
use crate::entity::server_lock::{self, Column, Entity};
use crate::{Database, Error, Result};

/// Lets a job that must run once per cluster (cleanup, retention) run on at most one
/// instance per interval.
#[async_trait::async_trait]
pub trait ServerLock: Send + Sync {
    /// Claims the right to run `operation` now, if no instance has run it within
    /// `max_interval`; `true` means this caller won and should run the job.
    async fn try_claim(&self, operation: &str, max_interval: Duration) -> Result<bool>;
}

/// [`ServerLock::lock_and_execute`] and friends, for every server lock, `dyn` ones included.
pub trait ServerLockExt: ServerLock {
    /// Runs `job` if this instance wins the claim for `operation` (see
    /// [`ServerLock::try_claim`]); returns the job's output, or `None` when another instance
    /// ran the operation within `max_interval`.
    fn lock_and_execute<F>(
        &self,
        operation: &str,
        max_interval: Duration,
        job: F,
    ) -> impl Future<Output = Result<Option<F::Output>>> + Send
    where
        F: Future + Send,
    {
        async move {
            if self.try_claim(operation, max_interval).await? {
                Ok(Some(job.await))
            } else {
                Ok(None)
            }
        }
    }
}

impl<T: ServerLock + ?Sized> ServerLockExt for T {}

/// The sea-orm server lock: one `server_lock` row per operation, claimed by bumping its
/// version with a compare-and-swap, as Grafana's `serverlock` service does.
#[derive(Clone, Debug)]
pub struct SqlServerLock {
    db: Database,
}

impl SqlServerLock {
    /// A server lock over `db`.
    pub fn new(db: Database) -> SqlServerLock {
        SqlServerLock { db }
    }
}

#[async_trait::async_trait]
impl ServerLock for SqlServerLock {
    async fn try_claim(&self, operation: &str, max_interval: Duration) -> Result<bool> {
        let interval = duration_ms(max_interval);
        // Two rounds at most: the first may lose the race to create the row.
        for _ in 0..2 {
            let outcome = self
                .db
                .transaction(|tx| async move {
                    // Read inside the transaction: a retried attempt must use its own time.
                    let now = db_now_ms(&*tx).await?;
                    let row = crate::first_row(
                        Entity::find().filter(Column::OperationUid.eq(operation)),
                        &*tx,
                    )
                    .await?;
                    let Some(row) = row else {
                        let insert = Entity::insert(server_lock::ActiveModel {
                            operation_uid: ActiveValue::Set(operation.to_owned()),
                            version: ActiveValue::Set(1),
                            last_execution: ActiveValue::Set(now),
                            ..Default::default()
                        })
                        .exec(&*tx)
                        .await;
                        return match insert {
                            Ok(_) => Ok(Some(true)),
                            Err(err) if crate::error::is_unique_violation(&err) => Ok(None),
                            Err(err) => Err(Error::from(err)),
                        };
                    };
                    if now.saturating_sub(row.last_execution) < interval {
                        return Ok(Some(false));
                    }
                    let updated = Entity::update_many()
                        .col_expr(Column::Version, Expr::col(Column::Version).add(1))
                        .col_expr(Column::LastExecution, Expr::value(now))
                        .filter(Column::Id.eq(row.id))
                        .filter(Column::Version.eq(row.version))
                        .exec(&*tx)
                        .await?;
                    Ok::<_, Error>(Some(updated.rows_affected == 1))
                })
                .await;
            match outcome {
                Ok(Some(won)) => return Ok(won),
                // Someone created the row first; read it again.
                Ok(None) => continue,
                // A concurrent insert can surface at commit time on some engines.
                Err(err) if err.is_unique_violation() => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }
}
