//! One id sequence for folders and dashboards, as Grafana has (both are rows of its
//! `dashboard` table): `content_id` holds the next id to hand out, drawn by the creating
//! transaction, so an id names one folder or one dashboard, never both. It starts above
//! every id either table already holds; ids given out before this migration keep their
//! values (they are referenced by stars, permissions and annotations).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("content_id")
                    .if_not_exists()
                    .col(string_len("name", 40).primary_key())
                    .col(big_integer("next_id"))
                    .to_owned(),
            )
            .await?;
        // The sum of both maxima is above either of them.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO content_id (name, next_id) SELECT 'content', 1 \
                 + (SELECT COALESCE(MAX(id), 0) FROM folder) \
                 + (SELECT COALESCE(MAX(id), 0) FROM dashboard)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("content_id").if_exists().to_owned())
            .await
    }
}
