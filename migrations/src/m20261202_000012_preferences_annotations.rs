//! Preferences of users, teams and orgs (Grafana's `preferences` table), and annotations.
//!
//! - `preferences`: one row per (org, user, team); `user_id = 0, team_id = 0` is the org's
//!   row, `team_id = 0` a user's, `user_id = 0` a team's. The unique index is what makes
//!   two instances creating one row at once store one. `home_dashboard_id` is Grafana's id
//!   of the home dashboard (0: none); `json_data` holds the rest of Grafana's preference
//!   JSON (`language`, `queryHistory`…). `version` counts writes.
//! - `annotation`: one row per annotation of an org: a point (`epoch = epoch_end`) or a
//!   region, optionally on a dashboard (`dashboard_id`, 0 for none) and panel; `alert_id`
//!   is non-zero for alert state changes. `version` counts edits.
//! - `annotation_tag`: its tags, one row per (annotation, term).
//!
//! Times are `BIGINT` milliseconds since the epoch.

use crate::ddl::{bytewise, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, string_len, text};

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
                    .table("preferences")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("user_id"))
                    .col(big_integer("team_id"))
                    .col(big_integer("version"))
                    .col(big_integer("home_dashboard_id"))
                    .col(string_len("timezone", 50))
                    .col(string_len("week_start", 10))
                    .col(string_len("theme", 20))
                    .col(text("json_data"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_preferences_org_user_team",
            "preferences",
            &["org_id", "user_id", "team_id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("annotation")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("dashboard_id"))
                    .col(big_integer("panel_id"))
                    .col(big_integer("user_id"))
                    .col(big_integer("alert_id"))
                    .col(string_len("prev_state", 40))
                    .col(string_len("new_state", 40))
                    .col(text("text"))
                    .col(text("data"))
                    .col(big_integer("epoch"))
                    .col(big_integer("epoch_end"))
                    .col(big_integer("version"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_annotation_org_epoch",
            "annotation",
            &["org_id", "epoch_end", "epoch"],
        )
        .await?;
        index(
            manager,
            "ix_annotation_org_dashboard",
            "annotation",
            &["org_id", "dashboard_id", "epoch_end"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("annotation_tag")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("annotation_id"))
                    .col(bytewise(string_len("term", 190), backend))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_annotation_tag",
            "annotation_tag",
            &["annotation_id", "term"],
        )
        .await?;
        index(
            manager,
            "ix_annotation_tag_org_term",
            "annotation_tag",
            &["org_id", "term"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["annotation_tag", "annotation", "preferences"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
