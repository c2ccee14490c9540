//! `/api/admin/users…`: what a server admin does to other people's accounts: create,
//! delete, reset a password, grant or remove server admin, disable, and end sessions.
//!
//! Every route needs a server admin. Shapes and messages are Grafana 12's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{CreateUser, Error, OrgId, Role, TokenId};

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::identity as dto;
use crate::shared::identity::person;
use crate::{ApiError, AppState, CurrentUser};

/// The routes of user administration; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/admin/users", create)
        .body(r#"{"name":"New","email":"new@example.com","login":"new","password":"password1","OrgId":1}"#)
        .delete("/api/admin/users/{id}", remove)
        .put("/api/admin/users/{id}/password", set_password)
        .body(r#"{"password":"password2"}"#)
        .put("/api/admin/users/{id}/permissions", set_permissions)
        .body(r#"{"isGrafanaAdmin":false}"#)
        .post("/api/admin/users/{id}/disable", disable)
        .post("/api/admin/users/{id}/enable", enable)
        .post("/api/admin/users/{id}/logout", logout)
        .get("/api/admin/users/{id}/auth-tokens", sessions)
        .post("/api/admin/users/{id}/revoke-auth-token", revoke_session)
        .body(r#"{"authTokenId":1}"#)
}

/// The body of `POST /api/admin/users`. Grafana matches JSON keys case-insensitively;
/// clients send both `OrgId` and `orgId`.
#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    login: String,
    password: String,
    #[serde(default, rename = "orgId", alias = "OrgId", alias = "orgid")]
    org_id: Option<i64>,
}

/// `POST /api/admin/users {name, email, login, password, OrgId?}`: a Viewer of the given
/// org (org 1 by default). A taken login or email is 412, as in Grafana.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let org = OrgId(body.org_id.filter(|id| *id > 0).unwrap_or(1));
    if state.identity.store().get_org(org).await?.is_none() {
        return Err(org_not_found());
    }
    // Grafana's message repeats the request's values, even empty ones.
    let taken = format!(
        "User with email '{}' or username '{}' already exists",
        body.email, body.login
    );
    let created = state
        .identity
        .create_user(CreateUser {
            login: body.login,
            email: body.email,
            name: body.name,
            password: body.password,
            org_id: Some(org),
            role: Some(Role::Viewer),
            is_admin: false,
        })
        .await;
    let user = match created {
        Ok(user) => user,
        Err(err) if matches!(err, Error::Conflict(_)) || err.is_unique_violation() => {
            return Err(ApiError::new(StatusCode::PRECONDITION_FAILED, taken));
        }
        // The org went away between the check and the insert.
        Err(Error::NotFound(_)) => return Err(org_not_found()),
        Err(err) => return Err(err.into()),
    };
    Ok(Json(
        json!({"id": user.id.0, "uid": user.uid, "message": "User created"}),
    ))
}

fn org_not_found() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "Organization not found")
}

/// `DELETE /api/admin/users/:id`: the user goes with its memberships, sessions and keys.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    state.identity.store().delete_user(user.id).await?;
    crate::shared::access::forget(
        &state,
        None,
        tandem_dashboards::Principal::User(tandem_dashboards::UserId(user.id.0)),
    )
    .await?;
    Ok(Json(json!({"message": "User deleted"})))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// `PUT /api/admin/users/:id/password {password}`: every session of the user ends, and its
/// failed logins are forgotten so that the new password works at once.
async fn set_password(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    state
        .identity
        .set_password(user.id, &body.password, None)
        .await?;
    // Failed logins are counted under what was typed: the login or the email.
    let store = state.identity.store();
    store.clear_failed_logins(&user.login).await?;
    if user.email != user.login {
        store.clear_failed_logins(&user.email).await?;
    }
    Ok(Json(json!({"message": "User password updated"})))
}

#[derive(Deserialize)]
struct PermissionsBody {
    // Required, unlike Grafana where a missing key demotes: a typo must not remove an admin.
    #[serde(rename = "isGrafanaAdmin", alias = "IsGrafanaAdmin")]
    is_grafana_admin: bool,
}

/// `PUT /api/admin/users/:id/permissions {isGrafanaAdmin}`: grants or removes server admin.
/// The store refuses to demote the last server admin (400 "cannot remove last grafana
/// admin"), inside the write, so two admins demoting each other at once cannot both win.
async fn set_permissions(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<PermissionsBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    state
        .identity
        .store()
        .set_server_admin(user.id, body.is_grafana_admin)
        .await?;
    Ok(Json(json!({"message": "User permissions updated"})))
}

/// `POST /api/admin/users/:id/disable`: the user can no longer log in, and its sessions
/// end in the same transaction.
async fn disable(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    state.identity.store().set_disabled(user.id, true).await?;
    Ok(Json(json!({"message": "User disabled"})))
}

/// `POST /api/admin/users/:id/enable`.
async fn enable(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    state.identity.store().set_disabled(user.id, false).await?;
    Ok(Json(json!({"message": "User enabled"})))
}

/// `POST /api/admin/users/:id/logout`: ends every session of another user.
async fn logout(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    if current.user.id.0 == id {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "You cannot logout yourself",
        ));
    }
    let user = person(&state, id).await?;
    state
        .identity
        .store()
        .revoke_user_sessions(user.id, None)
        .await?;
    Ok(Json(json!({"message": "User logged out"})))
}

/// `GET /api/admin/users/:id/auth-tokens`: the user's sessions, newest first; the one of
/// this request (an admin looking at their own) is active.
async fn sessions(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    let active = current.session().map(|session| session.id);
    let sessions = state.identity.store().user_sessions(user.id).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| dto::session(s, Some(s.id) == active))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevokeBody {
    auth_token_id: i64,
}

/// `POST /api/admin/users/:id/revoke-auth-token {authTokenId}`: ends one session of the
/// user; a session of someone else is not found.
async fn revoke_session(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<RevokeBody>,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let user = person(&state, id).await?;
    let token = TokenId(body.auth_token_id);
    if current.session().is_some_and(|session| session.id == token) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Cannot revoke active user auth token",
        ));
    }
    if !state
        .identity
        .store()
        .revoke_session(user.id, token)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "User auth token not found",
        ));
    }
    Ok(Json(json!({"message": "User auth token revoked"})))
}
