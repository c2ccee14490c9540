//! Sharded alert evaluation: one lease row per holder instead of one per shard.
//!
//! - `alert_shard_holder`: one row per holder (an instance's scheduler, named
//!   `instance/random` when it starts; the column is `alert_shard.holder`'s type): its lease
//!   expiry and `claimed_until`, the slot time up to which it may evaluate the shards it
//!   holds, both by the database's clock. Renewing a holder's leases is one update of this
//!   row, whatever the number of its shards.
//! - `alert_shard` keeps one row per shard, now written only when the shard changes hands:
//!   its holder (`''` once released), the fencing token, and `claimed_until`, the slot time
//!   from which the current holder evaluates (once released, where the next one starts).
//!   Its `expires_at` is the largest `BIGINT` while a holder of this form holds the shard, so
//!   that an instance of the previous version, which renews a lease per shard row, never
//!   takes it; rows written by such an instance keep their own lease and watermark, which
//!   this version honours. A rolling upgrade therefore never evaluates a slot twice.
//!
//! Times are `BIGINT` milliseconds since the epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("alert_shard_holder")
                    .if_not_exists()
                    .col(string_len("holder", 190).primary_key())
                    .col(big_integer("expires_at"))
                    .col(big_integer("claimed_until"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let greatest = if manager.get_database_backend() == DbBackend::Sqlite {
            "MAX"
        } else {
            "GREATEST"
        };
        // The previous form keeps the lease and the watermark in the shard's row.
        let holder = |column: &str| {
            format!(
                "(SELECT h.{column} FROM alert_shard_holder h WHERE h.holder = alert_shard.holder)"
            )
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE alert_shard SET expires_at = COALESCE({}, expires_at), \
                 claimed_until = {greatest}(claimed_until, COALESCE({}, 0))",
                holder("expires_at"),
                holder("claimed_until"),
            ))
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table("alert_shard_holder")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
