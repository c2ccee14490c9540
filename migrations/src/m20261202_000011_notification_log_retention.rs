//! The notification log's retention: an index on `alert_notification_log.created_at`, so
//! the cluster job that deletes finished rows older than
//! `[cluster] notification_log_retention` reads only what it deletes.

use crate::ddl::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        index(
            manager,
            "ix_alert_notification_log_created",
            "alert_notification_log",
            &["created_at"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_alert_notification_log_created")
                    .table("alert_notification_log")
                    .to_owned(),
            )
            .await
    }
}
