//! `/api/user…`: the signed-in user's own profile, password, orgs and sessions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{Error, OrgId, TokenId};

use crate::extract::{JsonBody, PathParams};
use crate::shared::identity::{self as dto, ProfileBody, update_error};
use crate::{ApiError, AppState, CurrentUser};

/// Only people have a profile, a password and sessions; service accounts do not.
fn person(current: &CurrentUser) -> Result<(), ApiError> {
    if current.user.is_service_account {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Endpoint only available for users",
        ));
    }
    Ok(())
}

/// `GET /api/user`.
pub(crate) async fn get(current: CurrentUser) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    Ok(Json(dto::user_profile(&current.user)))
}

/// `PUT /api/user`.
pub(crate) async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    let update = body.into_update()?;
    state
        .identity
        .store()
        .update_user(current.user.id, update)
        .await
        .map_err(update_error)?;
    Ok(Json(json!({"message": "User updated"})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordBody {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password: String,
}

/// `PUT /api/user/password {oldPassword, newPassword}`: every other session of the user ends.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    let keep = current.session().map(|session| session.id);
    state
        .identity
        .change_password(&current.user, &body.old_password, &body.new_password, keep)
        .await?;
    Ok(Json(json!({"message": "User password changed"})))
}

/// `GET /api/user/orgs`.
pub(crate) async fn orgs(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let orgs = state.identity.store().user_orgs(current.user.id).await?;
    Ok(Json(
        orgs.iter()
            .map(|(org, role)| dto::user_org(org, *role))
            .collect(),
    ))
}

/// `GET /api/user/teams`: the caller's teams in the org the request acts in, by name.
pub(crate) async fn teams(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let teams = state
        .identity
        .store()
        .user_teams(current.org_id, current.user.id)
        .await?;
    Ok(Json(teams.iter().map(dto::team).collect()))
}

/// `POST /api/user/using/:orgId`: switches the user's default org.
pub(crate) async fn using(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(org): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    match state
        .identity
        .store()
        .set_current_org(current.user.id, OrgId(org))
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Active organization changed"}))),
        Err(Error::NotFound(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Not a valid organization",
        )),
        Err(err) => Err(err.into()),
    }
}

/// `GET /api/user/auth-tokens`: the user's sessions; the one of this request is active.
pub(crate) async fn sessions(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    let active = current.session().map(|session| session.id);
    let sessions = state
        .identity
        .store()
        .user_sessions(current.user.id)
        .await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| dto::session(s, Some(s.id) == active))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevokeBody {
    auth_token_id: i64,
}

/// `POST /api/user/revoke-auth-token {authTokenId}`: ends one of the user's other sessions.
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<RevokeBody>,
) -> Result<Json<Value>, ApiError> {
    person(&current)?;
    let id = TokenId(body.auth_token_id);
    if current.session().is_some_and(|session| session.id == id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Cannot revoke active user auth token",
        ));
    }
    if !state
        .identity
        .store()
        .revoke_session(current.user.id, id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "User auth token not found",
        ));
    }
    Ok(Json(json!({"message": "User auth token revoked"})))
}
