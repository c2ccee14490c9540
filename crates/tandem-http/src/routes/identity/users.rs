//! `/api/users…`: the server admin's directory of people.
//!
//! Grafana guards these with `users:read` and `users:write`, which only server admins hold
//! by default; Tandem asks for a server admin. Service accounts are users in the store but
//! not people: the directory neither lists nor finds them (they have their own API).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{Paging, UserFilter};

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::identity as dto;
use crate::shared::identity::{ProfileBody, person, person_at, update_error, user_not_found};
use crate::{ApiError, AppState, CurrentUser};

/// The routes of the user directory; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    // axum matches a static segment before a capture, so `lookup` and `search` never reach
    // the `{id}` routes.
    Routes::new()
        .get("/api/users", list)
        .query("perpage=10&page=1&query=a")
        .get("/api/users/search", search)
        .query("perpage=10&page=1&query=a")
        .get("/api/users/lookup", lookup)
        .query("loginOrEmail=admin")
        .get("/api/users/{id}", get_user)
        .put("/api/users/{id}", update)
        .body(r#"{"name":"Name","email":"user@example.com","login":"user"}"#)
        .get("/api/users/{id}/orgs", orgs)
        .get("/api/users/{id}/teams", teams)
        .post("/api/users/{id}/using/{org_id}", using)
}

/// The query of `GET /api/users` and `/api/users/search`; Grafana's `sort` and filters are
/// accepted and ignored (the order is by login).
#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    perpage: Option<i64>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default)]
    query: Option<String>,
}

impl SearchQuery {
    /// Grafana's defaults: 1000 per page when missing or not positive, page 1 below 1.
    fn paging(&self) -> Paging {
        let per_page = self.perpage.filter(|n| *n > 0).unwrap_or(1000);
        let page = self.page.unwrap_or(1).max(1);
        Paging::new(page.unsigned_abs(), per_page.unsigned_abs())
    }

    fn filter(self) -> UserFilter {
        UserFilter {
            query: self
                .query
                .map(|q| q.trim().to_owned())
                .filter(|q| !q.is_empty()),
            org_id: None,
            service_accounts: false,
        }
    }
}

/// `GET /api/users?perpage&page&query`: a plain array, `[]` past the last page
/// (grafana-client pages until it reads one).
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let paging = query.paging();
    let page = state
        .identity
        .store()
        .search_users(query.filter(), paging)
        .await?;
    Ok(Json(page.items.iter().map(dto::user_hit).collect()))
}

/// `GET /api/users/search?perpage&page&query`: `{totalCount, users, page, perPage}`.
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let paging = query.paging();
    let page = state
        .identity
        .store()
        .search_users(query.filter(), paging)
        .await?;
    let users: Vec<Value> = page.items.iter().map(dto::user_hit).collect();
    Ok(Json(json!({
        "totalCount": page.total,
        "users": users,
        "page": paging.page,
        "perPage": paging.per_page,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LookupQuery {
    #[serde(default)]
    login_or_email: String,
}

/// `GET /api/users/lookup?loginOrEmail=`: the profile of the user with that login or email.
async fn lookup(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<LookupQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let wanted = query.login_or_email.trim();
    if wanted.is_empty() {
        return Err(user_not_found());
    }
    let user = state
        .identity
        .store()
        .find_user(wanted)
        .await?
        .filter(|user| !user.is_service_account)
        .ok_or_else(user_not_found)?;
    Ok(Json(dto::user_profile(&user)))
}

/// `GET /api/users/:id`.
async fn get_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person_at(&state, &id).await?;
    Ok(Json(dto::user_profile(&user)))
}

/// `PUT /api/users/:id {name, email, login}`: the same rules as `PUT /api/user`.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person_at(&state, &id).await?;
    let update = body.into_update()?;
    state
        .identity
        .store()
        .update_user(user.id, update)
        .await
        .map_err(update_error)?;
    Ok(Json(json!({"message": "User updated"})))
}

/// `GET /api/users/:id/teams`: the user's teams in the org the request acts in (Grafana
/// 12.1 answers for the caller's org too), by name.
async fn teams(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person_at(&state, &id).await?;
    let teams = state
        .identity
        .store()
        .user_teams(current.org_id, user.id)
        .await?;
    Ok(Json(teams.iter().map(dto::team).collect()))
}

/// `GET /api/users/:id/orgs`: the user's orgs with its role in each, by name.
async fn orgs(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person_at(&state, &id).await?;
    let orgs = state.identity.store().user_orgs(user.id).await?;
    Ok(Json(
        orgs.iter()
            .map(|(org, role)| dto::user_org(org, *role))
            .collect(),
    ))
}

/// `POST /api/users/:id/using/:orgId`: a server admin switches a user's active org; the
/// user must be a member of it (401 `Not a valid organization` otherwise, as Grafana).
async fn using(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((id, org)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    match state
        .identity
        .store()
        .set_current_org(user.id, tandem_sessions::OrgId(org))
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Active organization changed"}))),
        Err(tandem_sessions::Error::NotFound(_)) => Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "Not a valid organization",
        )),
        Err(err) => Err(err.into()),
    }
}
