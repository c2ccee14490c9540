//! The tables of Live's PostgreSQL engine: channel streams (history with offsets and an
//! epoch), large notification payloads, presence and the last frame of each stream channel.
//!
//! Only the `postgres` HA engine reads and writes them; they are created on every backend
//! so that the schema is the same everywhere. Channel names are compared byte-wise.
//! Times are `BIGINT` milliseconds since the epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, string_len, text};
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl::{bytewise, index};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The longest wire channel name: the org id, a slash and Grafana's 160 characters.
const CHANNEL_LEN: u32 = 200;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let exact = |name: &'static str, len: u32| bytewise(string_len(name, len), backend);
        // A publication or a frame may exceed MySQL's 64 KiB TEXT.
        let document = |name: &'static str| {
            if backend == DbBackend::MySql {
                ColumnDef::new(name)
                    .custom(Alias::new("LONGTEXT"))
                    .not_null()
                    .to_owned()
            } else {
                text(name)
            }
        };

        // One row per channel with history: its epoch and the offset of its newest
        // publication. The row lock taken by a publish orders the channel's offsets.
        manager
            .create_table(
                Table::create()
                    .table("live_stream")
                    .if_not_exists()
                    .col(exact("channel", CHANNEL_LEN).primary_key())
                    .col(exact("epoch", 32))
                    .col(big_integer("top_offset"))
                    .col(big_integer("expires_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_live_stream_expires",
            "live_stream",
            &["expires_at"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("live_publication")
                    .if_not_exists()
                    .col(exact("channel", CHANNEL_LEN))
                    .col(big_integer("pub_offset"))
                    .col(exact("epoch", 32))
                    .col(document("data"))
                    .col(big_integer("created_at"))
                    .primary_key(Index::create().col("channel").col("pub_offset"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_live_publication_created",
            "live_publication",
            &["created_at"],
        )
        .await?;

        // Payloads too large for one NOTIFY (8000 bytes) wait here for their readers.
        manager
            .create_table(
                Table::create()
                    .table("live_message")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(document("payload"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_live_message_created",
            "live_message",
            &["created_at"],
        )
        .await?;

        // A row per (channel, client), refreshed by the owning instance; a row whose
        // instance died expires.
        manager
            .create_table(
                Table::create()
                    .table("live_presence")
                    .if_not_exists()
                    .col(exact("channel", CHANNEL_LEN))
                    .col(exact("client_id", 64))
                    .col(exact("user_id", 64))
                    .col(big_integer("expires_at"))
                    .primary_key(Index::create().col("channel").col("client_id"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_live_presence_expires",
            "live_presence",
            &["expires_at"],
        )
        .await?;

        // The last frame of each stream channel (with its schema), listed per org.
        manager
            .create_table(
                Table::create()
                    .table("live_last")
                    .if_not_exists()
                    .col(exact("channel", CHANNEL_LEN).primary_key())
                    .col(big_integer("org_id"))
                    .col(document("schema_json"))
                    .col(document("frame_json"))
                    .col(big_integer("updated_at"))
                    .to_owned(),
            )
            .await?;
        index(manager, "idx_live_last_org", "live_last", &["org_id"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "live_last",
            "live_presence",
            "live_message",
            "live_publication",
            "live_stream",
        ] {
            manager
                .drop_table(
                    Table::drop()
                        .table(Alias::new(table))
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
