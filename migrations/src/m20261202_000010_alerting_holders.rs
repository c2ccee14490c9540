//! Sharded alert evaluation: one lease row per holder instead of one per shard.
//!
//! - `alert_shard_holder`: one row per holder (an instance's scheduler, named
//!   `instance/random` when it starts; the column is `alert_shard.holder`'s type): its lease expiry and `claimed_until`, the slot time up
//!   to which it may evaluate the shards it holds, both by the database's clock. Renewing a
//!   holder's leases is one update of this row, whatever the number of its shards.
//! - `alert_shard` keeps one row per shard, now written only when the shard changes hands:
//!   its holder (`''` when released), the fencing token, and `claimed_until`, the slot time
//!   from which the current holder evaluates (or, once released, where the next one starts).
//!   Its `expires_at` column is dropped: a shard's lease is its holder's.
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
        // The rows of the old form keep their watermark: their holders have no holder row,
        // which reads as expired, so the next holder starts where they stopped. An instance of
        // the old version still running fails on the dropped column instead of claiming.
        if manager.has_column("alert_shard", "expires_at").await? {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE alert_shard DROP COLUMN expires_at")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let greatest = if manager.get_database_backend() == DbBackend::Sqlite {
            "MAX"
        } else {
            "GREATEST"
        };
        // The old form keeps the watermark in the shard's row: fold each holder's into it.
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE alert_shard SET claimed_until = {greatest}(claimed_until, COALESCE((\
                 SELECT h.claimed_until FROM alert_shard_holder h WHERE h.holder = alert_shard.holder), 0))"
            ))
            .await?;
        if !manager.has_column("alert_shard", "expires_at").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table("alert_shard")
                        .add_column(big_integer("expires_at").default(0))
                        .to_owned(),
                )
                .await?;
        }
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
