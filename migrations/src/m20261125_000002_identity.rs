//! Orgs, users, org membership, teams, service-account tokens, sessions and login attempts.
//!
//! The shapes follow Grafana's tables where clients or operators look at them; times are
//! `BIGINT` milliseconds since the epoch, as everywhere in Tandem. Logins and emails are
//! stored lower-case, so their unique indexes are case-insensitive on every engine.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, string_len, string_len_null,
};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mysql = manager.get_database_backend() == DbBackend::MySql;
        let text = |name: Alias, len: u32| {
            let mut column = string_len(name, len);
            if mysql {
                column.extra("COLLATE utf8mb4_bin");
            }
            column
        };
        manager
            .create_table(
                Table::create()
                    .table("org")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(text(Alias::new("name"), 190).unique_key())
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("user")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(text(Alias::new("uid"), 40).unique_key())
                    .col(text(Alias::new("login"), 190).unique_key())
                    .col(text(Alias::new("email"), 190).unique_key())
                    .col(string_len("name", 255))
                    .col(string_len("password", 255))
                    .col(string_len("salt", 50))
                    .col(big_integer("org_id"))
                    .col(boolean("is_admin"))
                    .col(boolean("is_disabled"))
                    .col(boolean("is_service_account"))
                    .col(big_integer("last_seen_at"))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("org_user")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("user_id"))
                    .col(string_len("role", 20))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(manager, "uq_org_user", "org_user", &["org_id", "user_id"]).await?;
        index(manager, "idx_org_user_user_id", "org_user", &["user_id"]).await?;
        manager
            .create_table(
                Table::create()
                    .table("team")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(text(Alias::new("uid"), 40).unique_key())
                    .col(big_integer("org_id"))
                    .col(text(Alias::new("name"), 190))
                    .col(string_len("email", 190))
                    .col(big_integer("created"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(manager, "uq_team_org_name", "team", &["org_id", "name"]).await?;
        manager
            .create_table(
                Table::create()
                    .table("team_member")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("team_id"))
                    .col(big_integer("user_id"))
                    .col(big_integer("created"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_team_member",
            "team_member",
            &["team_id", "user_id"],
        )
        .await?;
        index(
            manager,
            "idx_team_member_user_id",
            "team_member",
            &["user_id"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("api_key")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(big_integer("service_account_id"))
                    .col(text(Alias::new("name"), 190))
                    .col(text(Alias::new("key_hash"), 190).unique_key())
                    .col(big_integer_null("expires"))
                    .col(big_integer_null("last_used_at"))
                    .col(big_integer("created"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_api_key_sa_name",
            "api_key",
            &["service_account_id", "name"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("user_auth_token")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("user_id"))
                    .col(text(Alias::new("auth_token"), 100).unique_key())
                    .col(text(Alias::new("prev_auth_token"), 100))
                    .col(string_len("user_agent", 255))
                    .col(string_len("client_ip", 255))
                    .col(big_integer("seen_at"))
                    .col(big_integer("rotated_at"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("revoked_at"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_user_auth_token_prev",
            "user_auth_token",
            &["prev_auth_token"],
        )
        .await?;
        index(
            manager,
            "idx_user_auth_token_user_id",
            "user_auth_token",
            &["user_id"],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table("login_attempt")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(text(Alias::new("username"), 190))
                    .col(string_len_null("ip_address", 50))
                    .col(big_integer("created"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_login_attempt_username",
            "login_attempt",
            &["username", "created"],
        )
        .await?;

        // Grafana's first org. Migrations run under the cluster-wide lock, so checking first
        // is enough; the check keeps the migration idempotent.
        let exists = manager
            .get_connection()
            .query_one(
                &Query::select()
                    .expr(Expr::val(1))
                    .from("org")
                    .and_where(Expr::col("id").eq(1))
                    .to_owned(),
            )
            .await?
            .is_some();
        if !exists {
            let main_org = Query::insert()
                .into_table("org")
                .columns(["id", "name", "created", "updated"])
                .values_panic([1.into(), "Main Org.".into(), 0.into(), 0.into()])
                .to_owned();
            manager.exec_stmt(main_org).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            // The explicit id does not move PostgreSQL's sequence; the next org must not
            // collide with it.
            manager
                .get_connection()
                .execute_unprepared("SELECT setval(pg_get_serial_sequence('org', 'id'), GREATEST((SELECT MAX(id) FROM org), 1))")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "login_attempt",
            "user_auth_token",
            "api_key",
            "team_member",
            "team",
            "org_user",
            "user",
            "org",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn unique(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.if_not_exists()
        .name(name)
        .table(Alias::new(table))
        .unique();
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    manager.create_index(stmt).await
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.if_not_exists().name(name).table(Alias::new(table));
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    manager.create_index(stmt).await
}
