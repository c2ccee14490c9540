//! `GET /api/admin/stats`: Grafana's server statistics, counted in the shared database at
//! the time of the request, so every instance of a cluster answers the same numbers.
//!
//! The counters are Grafana 12.1's names (`stats.AdminStats`). Each is one `COUNT` over the
//! table that holds the thing; this module reads tables of several domains, which is why it
//! builds its statements with sea-query rather than through one domain's store: the answer
//! is a cross-cutting read that no single domain owns. Playlists and legacy
//! alerts do not exist in Tandem and count 0; `alerts` counts alert rules, as Grafana 12
//! does with unified alerting.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tandem_storage::now_ms;
use tandem_storage::sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, Func, Query, SelectStatement,
};
use tandem_storage::sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::{ApiError, AppState, CurrentUser};

/// Grafana's window for "active" users and sessions (`activeUserTimeLimit`): 30 days.
const ACTIVE_MS: i64 = 30 * 24 * 3600 * 1000;
/// Grafana's window for "daily active": 24 hours.
const DAILY_MS: i64 = 24 * 3600 * 1000;

/// `GET /api/admin/stats`: server admins only, as Grafana (`server.stats:read`).
pub(crate) async fn stats(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let now = now_ms();
    let counts = state
        .db
        .read(|conn| async move { count_all(&conn, now).await })
        .await?;
    Ok(Json(counts))
}

async fn count_all(conn: &DatabaseConnection, now: i64) -> Result<Value, DbErr> {
    let people = || {
        let mut select = Query::select();
        select
            .from(Alias::new("user"))
            .and_where(Expr::col(Alias::new("is_service_account")).eq(false));
        select
    };
    let users = count(conn, people()).await?;
    let active_since = now.saturating_sub(ACTIVE_MS);
    let daily_since = now.saturating_sub(DAILY_MS);
    let mut active = people();
    active.and_where(Expr::col(Alias::new("last_seen_at")).gte(active_since));
    let active_users = count(conn, active).await?;
    let mut daily = people();
    daily.and_where(Expr::col(Alias::new("last_seen_at")).gte(daily_since));
    let daily_users = count(conn, daily).await?;

    let (roles, active_roles, daily_roles) = highest_roles(conn, active_since, daily_since).await?;

    let sessions = |since: i64| {
        let mut select = Query::select();
        select
            .from(Alias::new("user_auth_token"))
            .and_where(Expr::col(Alias::new("revoked_at")).is_null())
            .and_where(Expr::col(Alias::new("seen_at")).gte(since));
        select
    };
    let active_sessions = count(conn, sessions(active_since)).await?;
    let daily_sessions = count(conn, sessions(daily_since)).await?;

    let table = |name: &str| {
        let mut select = Query::select();
        select.from(Alias::new(name));
        select
    };
    let orgs = count(conn, table("org")).await?;
    let dashboards = count(conn, table("dashboard")).await?;
    let folders = count(conn, table("folder")).await?;
    let stars = count(conn, table("star")).await?;
    let datasources = count(conn, table("data_source")).await?;
    let alerts = count(conn, table("alert_rule")).await?;
    let snapshots = count(conn, table("dashboard_snapshot")).await?;
    let mut tags = Query::select();
    tags.from(Alias::new("dashboard_tag"));
    let tags = count_distinct(conn, tags, "term").await?;

    let role = |map: &HashMap<&'static str, i64>, name: &str| map.get(name).copied().unwrap_or(0);
    Ok(json!({
        "orgs": orgs,
        "dashboards": dashboards,
        "folders": folders,
        "snapshots": snapshots,
        "tags": tags,
        "datasources": datasources,
        "playlists": 0,
        "stars": stars,
        "alerts": alerts,
        "users": users,
        "admins": role(&roles, "Admin"),
        "editors": role(&roles, "Editor"),
        "viewers": role(&roles, "Viewer"),
        "activeUsers": active_users,
        "activeAdmins": role(&active_roles, "Admin"),
        "activeEditors": role(&active_roles, "Editor"),
        "activeViewers": role(&active_roles, "Viewer"),
        "activeSessions": active_sessions,
        "dailyActiveUsers": daily_users,
        "dailyActiveAdmins": role(&daily_roles, "Admin"),
        "dailyActiveEditors": role(&daily_roles, "Editor"),
        "dailyActiveViewers": role(&daily_roles, "Viewer"),
        "dailyActiveSessions": daily_sessions,
        "monthlyActiveUsers": active_users,
    }))
}

/// How many people have each role as their highest in any org (Grafana counts a user once,
/// by the highest role they hold), overall, active in the last 30 days and in the last day.
async fn highest_roles(
    conn: &DatabaseConnection,
    active_since: i64,
    daily_since: i64,
) -> Result<
    (
        HashMap<&'static str, i64>,
        HashMap<&'static str, i64>,
        HashMap<&'static str, i64>,
    ),
    DbErr,
> {
    let mut select = Query::select();
    select
        .column((Alias::new("org_user"), Alias::new("user_id")))
        .column((Alias::new("org_user"), Alias::new("role")))
        .column((Alias::new("user"), Alias::new("last_seen_at")))
        .from(Alias::new("org_user"))
        .inner_join(
            Alias::new("user"),
            Expr::col((Alias::new("user"), Alias::new("id")))
                .equals((Alias::new("org_user"), Alias::new("user_id"))),
        )
        .and_where(Expr::col((Alias::new("user"), Alias::new("is_service_account"))).eq(false));
    let rows = conn.query_all(&select).await?;
    let mut highest: HashMap<i64, (u8, i64)> = HashMap::new();
    for row in rows {
        let user: i64 = row.try_get_by_index(0)?;
        let role: String = row.try_get_by_index(1)?;
        let seen: i64 = row.try_get_by_index(2)?;
        let rank = match role.as_str() {
            "Admin" => 3,
            "Editor" => 2,
            "Viewer" => 1,
            _ => 0,
        };
        let entry = highest.entry(user).or_insert((0, seen));
        entry.0 = Ord::max(entry.0, rank);
    }
    let (mut all, mut active, mut daily) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (rank, seen) in highest.into_values() {
        let name = match rank {
            3 => "Admin",
            2 => "Editor",
            1 => "Viewer",
            _ => continue,
        };
        *all.entry(name).or_insert(0) += 1;
        if seen >= active_since {
            *active.entry(name).or_insert(0) += 1;
        }
        if seen >= daily_since {
            *daily.entry(name).or_insert(0) += 1;
        }
    }
    Ok((all, active, daily))
}

async fn count(conn: &DatabaseConnection, mut select: SelectStatement) -> Result<i64, DbErr> {
    select.expr(Expr::col(Asterisk).count());
    scalar(conn, &select).await
}

async fn count_distinct(
    conn: &DatabaseConnection,
    mut select: SelectStatement,
    column: &str,
) -> Result<i64, DbErr> {
    select.expr(Func::count_distinct(Expr::col(Alias::new(column))));
    scalar(conn, &select).await
}

async fn scalar(conn: &DatabaseConnection, select: &SelectStatement) -> Result<i64, DbErr> {
    let row = conn.query_one(select).await?;
    match row {
        Some(row) => row.try_get_by_index(0),
        None => Ok(0),
    }
}
