//! Dashboard snapshots (Grafana's `dashboard_snapshot`): a frozen copy of a dashboard's
//! JSON with its data, readable by `key` and deletable by `delete_key`, both random and
//! unique. `expires` is milliseconds since the epoch, `0` for never; expired rows are
//! deleted by a cluster-singleton job.

use crate::ddl::{bytewise, document, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, boolean, string_len, text};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table("dashboard_snapshot")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(string_len("name", 190))
                    .col(bytewise(string_len("snapshot_key", 64), backend))
                    .col(bytewise(string_len("delete_key", 64), backend))
                    .col(big_integer("user_id"))
                    .col(boolean("external"))
                    .col(text("external_url"))
                    .col(document("dashboard", backend))
                    .col(big_integer("expires"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_dashboard_snapshot_key",
            "dashboard_snapshot",
            &["snapshot_key"],
        )
        .await?;
        unique(
            manager,
            "uq_dashboard_snapshot_delete_key",
            "dashboard_snapshot",
            &["delete_key"],
        )
        .await?;
        index(
            manager,
            "idx_dashboard_snapshot_org",
            "dashboard_snapshot",
            &["org_id"],
        )
        .await?;
        index(
            manager,
            "idx_dashboard_snapshot_expires",
            "dashboard_snapshot",
            &["expires"],
        )
        .await?;
        Ok(())
    }
}
