//! Alerts posted to the Alertmanager v2 API by outside generators (a Prometheus server's
//! `alerting.alertmanagers`): `alert_external`, one row per (org, label fingerprint),
//! updated by every post of the same labels.
//!
//! `labels` and `annotations` are JSON objects; `starts_at`, `ends_at` and `updated_at` are
//! `BIGINT` milliseconds since the epoch (`updated_at` from the database's clock); `timeout`
//! is 1 when `ends_at` is Alertmanager's resolve timeout rather than the generator's. The
//! index on `ends_at` serves the purge of long-resolved alerts.

use crate::ddl::{bytewise, document, index};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, small_integer, string_len, text};

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
                    .table("alert_external")
                    .if_not_exists()
                    .col(big_integer("org_id"))
                    .col(bytewise(string_len("fingerprint", 16), backend))
                    .col(document("labels", backend))
                    .col(document("annotations", backend))
                    .col(big_integer("starts_at"))
                    .col(big_integer("ends_at"))
                    .col(small_integer("timeout"))
                    .col(text("generator_url"))
                    .col(big_integer("updated_at"))
                    .primary_key(Index::create().col("org_id").col("fingerprint"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_alert_external_ends",
            "alert_external",
            &["ends_at"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("alert_external").if_exists().to_owned())
            .await
    }
}
