//! Folders, dashboards, their versions, tags, stars and file-provisioning records.
//!
//! Every row belongs to an org (`org_id`); uids are unique per org. Times are `BIGINT`
//! milliseconds since the epoch, as everywhere in Tandem. `title_lower` holds the title
//! lower-cased by Tandem itself (not by the database, whose `LOWER` differs between
//! engines outside ASCII), and is compared and ordered byte-wise on every engine, so that
//! search matches and sorts the same on SQLite, PostgreSQL and MySQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, string_len, string_len_null, text,
};
use sea_orm_migration::sea_orm::DbBackend;

use crate::ddl::{bytewise, index, unique};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// Grafana refuses titles longer than this many bytes.
const TITLE_LEN: u32 = 5000;
/// MySQL cannot index a whole 5000-character column; a prefix is enough to sort by.
const MYSQL_TITLE_INDEX_PREFIX: u32 = 191;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        // Byte-wise comparison for identifiers and the lower-cased title.
        let exact = |name: &'static str, len: u32| bytewise(string_len(name, len), backend);
        let exact_null =
            |name: &'static str, len: u32| bytewise(string_len_null(name, len), backend);
        // Dashboard JSON easily exceeds MySQL's 64 KiB TEXT.
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

        manager
            .create_table(
                Table::create()
                    .table("folder")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("uid", 40))
                    .col(exact("title", TITLE_LEN))
                    .col(exact("title_lower", TITLE_LEN))
                    .col(exact_null("parent_uid", 40))
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .col(big_integer("created_by"))
                    .col(big_integer("updated_by"))
                    .to_owned(),
            )
            .await?;
        unique(manager, "uq_folder_org_uid", "folder", &["org_id", "uid"]).await?;
        index(
            manager,
            "idx_folder_org_parent",
            "folder",
            &["org_id", "parent_uid"],
        )
        .await?;
        title_index(manager, "idx_folder_org_title", "folder").await?;

        manager
            .create_table(
                Table::create()
                    .table("dashboard")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("uid", 40))
                    .col(exact_null("folder_uid", 40))
                    .col(exact("title", TITLE_LEN))
                    .col(exact("title_lower", TITLE_LEN))
                    .col(text("slug"))
                    // No JSON here: the current version's row in dashboard_version holds
                    // it, so that search reads narrow rows.
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .col(big_integer("created_by"))
                    .col(big_integer("updated_by"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_dashboard_org_uid",
            "dashboard",
            &["org_id", "uid"],
        )
        .await?;
        index(
            manager,
            "idx_dashboard_org_folder",
            "dashboard",
            &["org_id", "folder_uid"],
        )
        .await?;
        title_index(manager, "idx_dashboard_org_title", "dashboard").await?;

        manager
            .create_table(
                Table::create()
                    .table("dashboard_version")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("dashboard_id"))
                    .col(big_integer("parent_version"))
                    .col(big_integer_null("restored_from"))
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("created_by"))
                    .col(string_len("message", 500))
                    .col(document("data"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_dashboard_version",
            "dashboard_version",
            &["dashboard_id", "version"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("dashboard_tag")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("dashboard_id"))
                    .col(exact("term", 190))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_dashboard_tag",
            "dashboard_tag",
            &["dashboard_id", "term"],
        )
        .await?;
        index(
            manager,
            "idx_dashboard_tag_org_term",
            "dashboard_tag",
            &["org_id", "term"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("star")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("user_id"))
                    .col(big_integer("dashboard_id"))
                    .col(big_integer("created"))
                    .to_owned(),
            )
            .await?;
        unique(manager, "uq_star", "star", &["user_id", "dashboard_id"]).await?;
        index(manager, "idx_star_dashboard", "star", &["dashboard_id"]).await?;

        manager
            .create_table(
                Table::create()
                    .table("dashboard_provisioning")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("dashboard_id"))
                    .col(exact("name", 190))
                    .col(text("external_id"))
                    .col(string_len("check_sum", 64))
                    .col(boolean("allow_ui_updates"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_dashboard_provisioning_dashboard",
            "dashboard_provisioning",
            &["dashboard_id"],
        )
        .await?;
        index(
            manager,
            "idx_dashboard_provisioning_name",
            "dashboard_provisioning",
            &["org_id", "name"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "dashboard_provisioning",
            "star",
            "dashboard_tag",
            "dashboard_version",
            "dashboard",
            "folder",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// `(org_id, title_lower)`, the order search lists an org's items in.
async fn title_index(manager: &SchemaManager<'_>, name: &str, table: &str) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.if_not_exists()
        .name(name)
        .table(Alias::new(table))
        .col(Alias::new("org_id"));
    if manager.get_database_backend() == DbBackend::MySql {
        stmt.col((Alias::new("title_lower"), MYSQL_TITLE_INDEX_PREFIX));
    } else {
        stmt.col(Alias::new("title_lower"));
    }
    manager.create_index(stmt).await
}
