//! `/api/org…` (the org the request acts in) and `/api/orgs…` (every org, for server admins):
//! org names and memberships.
//!
//! Answers and messages follow Grafana 12.1: a duplicate name is 409 on create but 400 on
//! rename, an org is never left without an Admin, and removing a person from the last org
//! they belong to (through `/api/org/users`) deletes them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{Error, Org, OrgId, OrgUser, Paging, Role, User, UserId};

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::identity::{self as dto, SearchQuery, user_not_found};
use crate::{ApiError, AppState, CurrentUser};

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/org", current_get)
        .put("/api/org", current_update)
        .body(r#"{"name":"Main Org."}"#)
        .get("/api/org/users", current_users)
        .query("query=a&limit=10")
        .post("/api/org/users", current_add_user)
        .body(r#"{"loginOrEmail":"member","role":"Viewer"}"#)
        .patch("/api/org/users/{user_id}", current_update_user)
        .body(r#"{"role":"Editor"}"#)
        .delete("/api/org/users/{user_id}", current_remove_user)
        .get("/api/orgs", search)
        .query("query=a&name=b&page=1&perpage=10")
        .post("/api/orgs", create)
        .body(r#"{"name":"Another org"}"#)
        .get("/api/orgs/name/{name}", get_by_name)
        .get("/api/orgs/{org_id}", get_by_id)
        .put("/api/orgs/{org_id}", update_by_id)
        .body(r#"{"name":"Renamed org"}"#)
        .delete("/api/orgs/{org_id}", delete_by_id)
        .get("/api/orgs/{org_id}/users", org_users)
        .query("query=a&limit=10")
        .post("/api/orgs/{org_id}/users", org_add_user)
        .body(r#"{"loginOrEmail":"member","role":"Viewer"}"#)
        .patch("/api/orgs/{org_id}/users/{user_id}", org_update_user)
        .body(r#"{"role":"Editor"}"#)
        .delete("/api/orgs/{org_id}/users/{user_id}", org_remove_user)
}

/// The body of `PUT /api/org`, `POST /api/orgs` and `PUT /api/orgs/:id`.
#[derive(Deserialize)]
pub(crate) struct NameBody {
    name: String,
}

impl NameBody {
    fn name(&self) -> Result<&str, ApiError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 190 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad request data: name must be 1 to 190 characters",
            ));
        }
        Ok(name)
    }
}

/// The body of `POST /api/org/users` and `POST /api/orgs/:id/users`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddUserBody {
    #[serde(alias = "LoginOrEmail")]
    login_or_email: String,
    #[serde(alias = "Role")]
    role: String,
}

/// The body of `PATCH /api/org/users/:userId` and `PATCH /api/orgs/:id/users/:userId`.
#[derive(Deserialize)]
pub(crate) struct RoleBody {
    #[serde(alias = "Role")]
    role: String,
}

/// The query of `GET /api/org/users` and `GET /api/orgs/:id/users`.
#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    #[serde(default)]
    query: Option<String>,
    /// At most this many users; all when absent, not positive or not a number.
    #[serde(default)]
    limit: Option<String>,
}

// ---- the current org

/// `GET /api/org`: the org the request acts in.
async fn current_get(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let org = existing_org(&state, current.org_id).await?;
    Ok(Json(dto::org(&org)))
}

/// `PUT /api/org {name}`: renames the current org.
async fn current_update(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<NameBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    rename(&state, current.org_id, body.name()?).await
}

/// `GET /api/org/users?query&limit`: the people of the current org.
async fn current_users(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    list_users(&state, current.org_id, &query).await
}

/// `POST /api/org/users {loginOrEmail, role}`: adds an existing user to the current org.
async fn current_add_user(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<AddUserBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    add_user(&state, current.org_id, &body).await
}

/// `PATCH /api/org/users/:userId {role}`: changes a member's role in the current org.
async fn current_update_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(user): PathParams<i64>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    update_user(&state, current.org_id, UserId(user), &body).await
}

/// `DELETE /api/org/users/:userId`: removes a member from the current org; a person who then
/// belongs to no org at all is deleted, as Grafana does.
async fn current_remove_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(user): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    remove_user(&state, current.org_id, UserId(user), true).await
}

// ---- every org (server admins)

/// `GET /api/orgs?query&name&page&perpage`: `[{id, name}]`, by name.
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let orgs = match query.name() {
        Some(name) => state
            .identity
            .store()
            .get_org_by_name(name)
            .await?
            .into_iter()
            .collect(),
        None => {
            state
                .identity
                .store()
                .search_orgs(query.text(), query.paging())
                .await?
                .items
        }
    };
    Ok(Json(
        orgs.iter()
            .map(|org| json!({"id": org.id.0, "name": org.name}))
            .collect(),
    ))
}

/// `POST /api/orgs {name}`: creates an org; the caller joins it as Admin.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<NameBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    match state
        .identity
        .store()
        .create_org(body.name()?, Some(current.user.id))
        .await
    {
        Ok(org) => Ok(Json(
            json!({"orgId": org.id.0, "message": "Organization created"}),
        )),
        Err(Error::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "Organization name taken",
        )),
        Err(err) => Err(err.into()),
    }
}

/// `GET /api/orgs/name/:name`.
async fn get_by_name(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = state
        .identity
        .store()
        .get_org_by_name(&name)
        .await?
        .ok_or_else(org_not_found)?;
    Ok(Json(dto::org(&org)))
}

/// `GET /api/orgs/:id`.
async fn get_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    Ok(Json(dto::org(&org)))
}

/// `PUT /api/orgs/:id {name}`.
async fn update_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
    JsonBody(body): JsonBody<NameBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    rename(&state, org.id, body.name()?).await
}

/// `DELETE /api/orgs/:id`: deletes an org with its memberships, teams and keys; never the
/// org the request acts in.
async fn delete_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = OrgId(org);
    if org == current.org_id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Cannot delete your active organization",
        ));
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "Failed to delete organization. ID not found",
        )
    };
    if state.identity.store().get_org(org).await?.is_none() {
        return Err(not_found());
    }
    match state.identity.store().delete_org(org).await {
        Ok(()) => Ok(Json(json!({"message": "Organization deleted"}))),
        Err(Error::NotFound(_)) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

/// `GET /api/orgs/:id/users?query&limit`.
async fn org_users(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
    QueryParams(query): QueryParams<UsersQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    list_users(&state, org.id, &query).await
}

/// `POST /api/orgs/:id/users {loginOrEmail, role}`.
async fn org_add_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
    JsonBody(body): JsonBody<AddUserBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    add_user(&state, org.id, &body).await
}

/// `PATCH /api/orgs/:id/users/:userId {role}`.
async fn org_update_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((org, user)): PathParams<(i64, i64)>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    update_user(&state, org.id, UserId(user), &body).await
}

/// `DELETE /api/orgs/:id/users/:userId`: unlike `/api/org/users`, never deletes the user.
async fn org_remove_user(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((org, user)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = existing_org(&state, OrgId(org)).await?;
    remove_user(&state, org.id, UserId(user), false).await
}

// ---- shared by both families

fn org_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Organization not found")
}

/// Grafana's roles; `None` (no basic role) does not exist in Tandem.
fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Invalid role specified"))
}

async fn existing_org(state: &AppState, org: OrgId) -> Result<Org, ApiError> {
    state
        .identity
        .store()
        .get_org(org)
        .await?
        .ok_or_else(org_not_found)
}

async fn rename(state: &AppState, org: OrgId, name: &str) -> Result<Json<Value>, ApiError> {
    match state.identity.store().rename_org(org, name).await {
        Ok(()) => Ok(Json(json!({"message": "Organization updated"}))),
        // Grafana answers 400 here, unlike the 409 of a create.
        Err(Error::Conflict(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Organization name taken",
        )),
        Err(Error::NotFound(_)) => Err(org_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// Every member of `org` matching `query`, service accounts included, by login.
async fn members(state: &AppState, org: OrgId, query: &str) -> Result<Vec<OrgUser>, ApiError> {
    const PER_PAGE: u64 = 1000;
    let mut members = Vec::new();
    for page in 1.. {
        let found = state
            .identity
            .store()
            .org_users(org, query, Paging::new(page, PER_PAGE))
            .await?;
        let last = found.items.len() < PER_PAGE as usize;
        members.extend(found.items);
        if last || members.len() as u64 >= found.total {
            break;
        }
    }
    Ok(members)
}

async fn list_users(
    state: &AppState,
    org: OrgId,
    query: &UsersQuery,
) -> Result<Json<Value>, ApiError> {
    let text = query.query.as_deref().unwrap_or_default().trim();
    let limit = query
        .limit
        .as_deref()
        .and_then(|n| n.trim().parse::<usize>().ok());
    let limit = limit.filter(|n| *n > 0).unwrap_or(usize::MAX);
    // Service accounts are members too, but Grafana lists them under /api/serviceaccounts only.
    let people = members(state, org, text).await?;
    let people = people
        .iter()
        .filter(|member| !member.user.is_service_account)
        .take(limit);
    Ok(Json(people.map(dto::org_user).collect()))
}

async fn add_user(
    state: &AppState,
    org: OrgId,
    body: &AddUserBody,
) -> Result<Json<Value>, ApiError> {
    let role = parse_role(&body.role)?;
    let user = state
        .identity
        .store()
        .find_user(body.login_or_email.trim())
        .await?
        // A service account belongs to the org it was created in, and only there.
        .filter(|user| !user.is_service_account)
        .ok_or_else(user_not_found)?;
    let already = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "User is already member of this organization",
        )
    };
    if state.identity.org_role(user.id, org).await?.is_some() {
        return Err(already());
    }
    match state
        .identity
        .store()
        .add_org_user(org, user.id, role)
        .await
    {
        Ok(()) => Ok(Json(
            json!({"message": "User added to organization", "userId": user.id.0}),
        )),
        Err(Error::Conflict(_)) => Err(already()),
        Err(err) => Err(err.into()),
    }
}

async fn update_user(
    state: &AppState,
    org: OrgId,
    user: UserId,
    body: &RoleBody,
) -> Result<Json<Value>, ApiError> {
    let role = parse_role(&body.role)?;
    // Grafana answers 500 "Failed update org user" for a non-member; a 404 says what
    // happened. The store refuses to demote the org's last Admin (400), checked under row locks so
    // two Admins demoting each other at once cannot both succeed.
    match state.identity.store().set_org_role(org, user, role).await {
        Ok(()) => Ok(Json(json!({"message": "Organization user updated"}))),
        Err(Error::NotFound(_)) => Err(user_not_found()),
        Err(err) => Err(err.into()),
    }
}

async fn remove_user(
    state: &AppState,
    org: OrgId,
    user: UserId,
    delete_orphan: bool,
) -> Result<Json<Value>, ApiError> {
    // The store refuses to remove the org's last Admin (400), under row locks.
    match state.identity.store().remove_org_user(org, user).await {
        Ok(()) => {}
        Err(Error::NotFound(_)) => return Err(user_not_found()),
        Err(err) => return Err(err.into()),
    }
    crate::shared::access::forget(
        state,
        Some(tandem_dashboards::OrgId(org.0)),
        tandem_dashboards::Principal::User(tandem_dashboards::UserId(user.0)),
    )
    .await?;
    let Some(removed) = state.identity.store().get_user(user).await? else {
        return Ok(Json(json!({"message": "User removed from organization"})));
    };
    let orgs = state.identity.store().user_orgs(user).await?;
    match orgs.first() {
        None if delete_orphan && !removed.is_service_account => {
            state.identity.store().delete_user(user).await?;
            Ok(Json(json!({"message": "User deleted"})))
        }
        Some((other, _)) => {
            move_default_org(state, &removed, org, other.id).await?;
            Ok(Json(json!({"message": "User removed from organization"})))
        }
        None => Ok(Json(json!({"message": "User removed from organization"}))),
    }
}

/// A user removed from their default org works in another of theirs from now on.
async fn move_default_org(
    state: &AppState,
    user: &User,
    removed: OrgId,
    other: OrgId,
) -> Result<(), ApiError> {
    if user.org_id != removed {
        return Ok(());
    }
    match state.identity.store().set_current_org(user.id, other).await {
        // Removed from that one too, concurrently: nothing better to choose.
        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
