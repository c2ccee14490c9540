//! Folder and dashboard permissions, and a team member's permission on the team.
//!
//! - `content_permission`: one row per item of a folder's or a dashboard's access list
//!   (Grafana's legacy `dashboard_acl`, which Grafana 12 keeps as managed permissions).
//!   `kind` is `folder` or `dashboard`, `uid` the resource's uid in the org. The item
//!   names one principal: a user (`user_id`), a team (`team_id`) or a basic role (`role`,
//!   `Viewer`, `Editor` or `Admin`); the other two are `0` and `''`, so the unique index
//!   (NULLs would be distinct in it) makes one principal hold one item per resource.
//!   `permission` is Grafana's level: 1 View, 2 Edit, 4 Admin.
//! - `team_member.permission`: 0 for a member, 4 for a team Admin (Grafana's values).
//!
//! Existing content gets the items Grafana gives new content: a root folder and a
//! dashboard at the root let the Viewer role view and the Editor role edit, and their
//! creator administer; nested folders and dashboards in a folder inherit.

use crate::ddl::{bytewise, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, string_len};

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
                    .table("content_permission")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(string_len("kind", 10))
                    .col(bytewise(string_len("uid", 40), backend))
                    .col(big_integer("user_id"))
                    .col(big_integer("team_id"))
                    .col(string_len("role", 10))
                    .col(big_integer("permission"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_content_permission_principal",
            "content_permission",
            &["org_id", "kind", "uid", "user_id", "team_id", "role"],
        )
        .await?;
        index(
            manager,
            "idx_content_permission_user",
            "content_permission",
            &["user_id"],
        )
        .await?;
        index(
            manager,
            "idx_content_permission_team",
            "content_permission",
            &["team_id"],
        )
        .await?;

        if !manager.has_column("team_member", "permission").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table("team_member")
                        .add_column(big_integer("permission").default(0))
                        .to_owned(),
                )
                .await?;
        }

        // Grafana's defaults for what exists already: the basic roles on root folders
        // and root dashboards, and each creator (when a user created it) as Admin.
        let db = manager.get_connection();
        for (kind, table, parent) in [
            ("folder", "folder", "parent_uid"),
            ("dashboard", "dashboard", "folder_uid"),
        ] {
            for (role, level) in [("Viewer", 1), ("Editor", 2)] {
                db.execute_unprepared(&format!(
                    "INSERT INTO content_permission \
                     (org_id, kind, uid, user_id, team_id, role, permission, created, updated) \
                     SELECT org_id, '{kind}', uid, 0, 0, '{role}', {level}, created, created \
                     FROM {table} WHERE {parent} IS NULL"
                ))
                .await?;
            }
            db.execute_unprepared(&format!(
                "INSERT INTO content_permission \
                 (org_id, kind, uid, user_id, team_id, role, permission, created, updated) \
                 SELECT org_id, '{kind}', uid, created_by, 0, '', 4, created, created \
                 FROM {table} WHERE created_by > 0"
            ))
            .await?;
        }
        Ok(())
    }
}
