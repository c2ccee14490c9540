//! Data sources: one row per data source of an org, as Grafana's `data_source` table.
//!
//! `uid` and `name` are unique per org. `default_org_id` holds the org id while the row is
//! its org's default and NULL otherwise; its unique index makes "at most one default per
//! org" a constraint the database enforces even for two concurrent transactions (every
//! engine allows many NULLs in a unique index). `secure_json_data` is one sealed blob
//! (never plaintext); `secure_json_fields` lists the names of the secrets that are set, so
//! reads need not open it. `provisioned_checksum` is the SHA-256 of the provisioning entry
//! a row was last written from (NULL for rows created through the API). Times are `BIGINT`
//! milliseconds since the epoch.

use crate::ddl::{bytewise, document, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, string_len, string_len_null, text,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let exact = |name: &'static str, len: u32| bytewise(string_len(name, len), backend);
        // jsonData and the sealed secrets may exceed MySQL's 64 KiB TEXT.
        let document = |name: &'static str| document(name, backend);

        manager
            .create_table(
                Table::create()
                    .table("data_source")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("uid", 40))
                    .col(exact("name", 190))
                    .col(string_len("type", 190))
                    .col(string_len("access", 16))
                    .col(text("url"))
                    .col(text("user"))
                    .col(text("database"))
                    .col(boolean("basic_auth"))
                    .col(text("basic_auth_user"))
                    .col(boolean("with_credentials"))
                    .col(boolean("is_default"))
                    .col(big_integer_null("default_org_id"))
                    .col(document("json_data"))
                    .col(document("secure_json_data"))
                    .col(text("secure_json_fields"))
                    .col(boolean("read_only"))
                    .col(string_len_null("provisioned_checksum", 64))
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_data_source_org_uid",
            "data_source",
            &["org_id", "uid"],
        )
        .await?;
        unique(
            manager,
            "uq_data_source_org_name",
            "data_source",
            &["org_id", "name"],
        )
        .await?;
        unique(
            manager,
            "uq_data_source_default",
            "data_source",
            &["default_org_id"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("data_source").to_owned())
            .await
    }
}
