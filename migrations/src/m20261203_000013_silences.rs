//! Silences (Alertmanager's): `alert_silence`, one row per silence, keyed by its UUID.
//!
//! `matchers` is the JSON list of Alertmanager's matchers; `starts_at`, `ends_at` and
//! `updated_at` are `BIGINT` milliseconds since the epoch (`updated_at` from the database's
//! clock). Expired silences are kept, as Alertmanager keeps them, so they can be listed.
//! The index on `ends_at` serves the dispatcher's read of the silences still in force.

use crate::ddl::{bytewise, document, index};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, text};

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
                    .table("alert_silence")
                    .if_not_exists()
                    .col(bytewise(string_len("id", 36), backend).primary_key())
                    .col(big_integer("org_id"))
                    .col(document("matchers", backend))
                    .col(big_integer("starts_at"))
                    .col(big_integer("ends_at"))
                    .col(big_integer("updated_at"))
                    .col(string_len("created_by", 190))
                    .col(text("comment"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_alert_silence_org",
            "alert_silence",
            &["org_id"],
        )
        .await?;
        index(
            manager,
            "ix_alert_silence_ends",
            "alert_silence",
            &["ends_at"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("alert_silence").if_exists().to_owned())
            .await
    }
}
