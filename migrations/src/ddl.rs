//! Building blocks of the migrations from `m20261125_000003_dashboards` on.
//!
//! Released migration files are never edited, so the earlier ones keep their own copies.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// `column`, compared byte-wise: MySQL's default collations are case- and
/// accent-insensitive, and PostgreSQL's follow the locale.
pub(crate) fn bytewise(mut column: ColumnDef, backend: DbBackend) -> ColumnDef {
    match backend {
        DbBackend::MySql => {
            column.extra("COLLATE utf8mb4_bin");
        }
        DbBackend::Postgres => {
            column.extra("COLLATE \"C\"");
        }
        _ => {}
    }
    column
}

/// A `NOT NULL` text column for documents that may exceed MySQL's 64 KiB `TEXT`:
/// `LONGTEXT` on MySQL, `TEXT` elsewhere.
pub(crate) fn document(name: &'static str, backend: DbBackend) -> ColumnDef {
    if backend == DbBackend::MySql {
        ColumnDef::new(name)
            .custom(Alias::new("LONGTEXT"))
            .not_null()
            .to_owned()
    } else {
        sea_orm_migration::schema::text(name)
    }
}

/// A unique index, created unless it exists.
pub(crate) async fn unique(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.unique();
    create_index(manager, stmt, name, table, cols).await
}

/// An index, created unless it exists.
pub(crate) async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    create_index(manager, Index::create(), name, table, cols).await
}

async fn create_index(
    manager: &SchemaManager<'_>,
    mut stmt: IndexCreateStatement,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    stmt.if_not_exists().name(name).table(Alias::new(table));
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    manager.create_index(stmt).await
}
