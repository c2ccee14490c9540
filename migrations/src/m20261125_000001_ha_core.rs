//! The tables behind the HA primitives: server locks, leases, cluster membership and the
//! key-value cache.
//!
//! Every statement is idempotent (`IF NOT EXISTS`): MySQL cannot roll DDL back, so a
//! migration cut short by a crash is simply run again by the next instance.
//!
//! Times are stored as milliseconds since the Unix epoch in `BIGINT` columns, so that the
//! same comparisons work unchanged on SQLite, PostgreSQL and MySQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, blob, pk_auto, string_len};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mysql = manager.get_database_backend() == DbBackend::MySql;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(ServerLock::Table)
                    .col(pk_auto(ServerLock::Id))
                    .col(key(mysql, ServerLock::OperationUid, 100).unique_key())
                    .col(big_integer(ServerLock::Version))
                    .col(big_integer(ServerLock::LastExecution))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(Lease::Table)
                    .col(key(mysql, Lease::LeaseKey, 190).primary_key())
                    .col(key(mysql, Lease::Holder, 190))
                    .col(big_integer(Lease::ExpiresAt))
                    .col(big_integer(Lease::Token))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(ClusterMember::Table)
                    .col(key(mysql, ClusterMember::InstanceId, 190).primary_key())
                    .col(string_len(ClusterMember::Address, 255))
                    .col(string_len(ClusterMember::Version, 64))
                    .col(big_integer(ClusterMember::StartedAt))
                    .col(big_integer(ClusterMember::LastHeartbeat))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_cluster_member_last_heartbeat")
                    .table(ClusterMember::Table)
                    .col(ClusterMember::LastHeartbeat)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .if_not_exists()
                    .table(CacheData::Table)
                    .col(key(mysql, CacheData::CacheKey, 168).primary_key())
                    .col(if mysql {
                        // MySQL's BLOB stops at 64 KiB.
                        ColumnDef::new(CacheData::Data)
                            .custom(Alias::new("LONGBLOB"))
                            .not_null()
                            .take()
                    } else {
                        blob(CacheData::Data)
                    })
                    .col(big_integer(CacheData::ExpiresAt))
                    .col(big_integer(CacheData::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_cache_data_expires_at")
                    .table(CacheData::Table)
                    .col(CacheData::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CacheData::Table.into_iden(),
            ClusterMember::Table.into_iden(),
            Lease::Table.into_iden(),
            ServerLock::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// A column holding a key that must compare byte for byte: MySQL's default collation would
/// make `"Key"` and `"key"` the same row.
fn key(mysql: bool, name: impl IntoIden, len: u32) -> ColumnDef {
    let mut column = string_len(name, len);
    if mysql {
        column.extra("COLLATE utf8mb4_bin");
    }
    column
}

#[derive(DeriveIden)]
enum ServerLock {
    Table,
    Id,
    OperationUid,
    Version,
    LastExecution,
}

// The column is `lease_key` because `key` is reserved in MySQL.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Lease {
    Table,
    LeaseKey,
    Holder,
    ExpiresAt,
    Token,
}

#[derive(DeriveIden)]
enum ClusterMember {
    Table,
    InstanceId,
    Address,
    Version,
    StartedAt,
    LastHeartbeat,
}

#[derive(DeriveIden)]
enum CacheData {
    Table,
    CacheKey,
    Data,
    ExpiresAt,
    CreatedAt,
}
