//! Library elements (Grafana's `library_element`) and the dashboards that use them
//! (`library_element_connection`).
//!
//! An element lives in a folder, `folder_uid`, which is `''` for General rather than
//! `NULL`, so that the unique index on org, folder, name and kind also holds at the root
//! (every engine treats `NULL`s as distinct in a unique index). A connection names the
//! dashboard by id; the store deletes a dashboard's connections with the dashboard, in the
//! same transaction. Times are milliseconds since the epoch.

use crate::ddl::{bytewise, document, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, integer, string_len};

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
                    .table("library_element")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(bytewise(string_len("folder_uid", 40), backend))
                    .col(bytewise(string_len("uid", 40), backend))
                    .col(bytewise(string_len("name", 150), backend))
                    .col(integer("kind"))
                    .col(string_len("type", 40))
                    .col(string_len("description", 2048))
                    .col(document("model", backend))
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("created_by"))
                    .col(big_integer("updated"))
                    .col(big_integer("updated_by"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_library_element_org_uid",
            "library_element",
            &["org_id", "uid"],
        )
        .await?;
        unique(
            manager,
            "uq_library_element_org_folder_name_kind",
            "library_element",
            &["org_id", "folder_uid", "name", "kind"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("library_element_connection")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("element_id"))
                    .col(integer("kind"))
                    .col(big_integer("connection_id"))
                    .col(big_integer("created"))
                    .col(big_integer("created_by"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_library_element_connection",
            "library_element_connection",
            &["element_id", "kind", "connection_id"],
        )
        .await?;
        index(
            manager,
            "idx_library_element_connection_dashboard",
            "library_element_connection",
            &["connection_id"],
        )
        .await?;
        Ok(())
    }
}
