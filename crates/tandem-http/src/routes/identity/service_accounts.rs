//! `/api/serviceaccounts…`: the service accounts of the org the request acts in and their
//! tokens (`glsa_…` keys). Every route needs an org Admin.
//!
//! A token is shown once, when it is created; the database keeps only its hash, so every
//! instance accepts it at once and a deleted token stops working on every instance with the
//! next request. Answers and messages follow Grafana 12.1 (`serviceaccounts.Err…` errors).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{ApiKey, Error, Identity, Paging, Role, User, UserId, UserUpdate};
use time::OffsetDateTime;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::identity::SearchQuery;
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/serviceaccounts", create)
        .body(r#"{"name":"robot","role":"Viewer","isDisabled":false}"#)
        .get("/api/serviceaccounts/search", search)
        .query("query=a&page=1&perpage=10")
        .get("/api/serviceaccounts/{id}", get_one)
        .patch("/api/serviceaccounts/{id}", update)
        .body(r#"{"name":"robot2","role":"Editor","isDisabled":false}"#)
        .delete("/api/serviceaccounts/{id}", remove)
        .get("/api/serviceaccounts/{id}/tokens", tokens)
        .post("/api/serviceaccounts/{id}/tokens", create_token)
        .body(r#"{"name":"token","secondsToLive":3600}"#)
        .delete("/api/serviceaccounts/{id}/tokens/{token_id}", delete_token)
}

/// The body of `POST /api/serviceaccounts`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    #[serde(alias = "Name")]
    name: String,
    #[serde(default, alias = "Role")]
    role: Option<String>,
    #[serde(default, alias = "IsDisabled")]
    is_disabled: Option<bool>,
}

/// The body of `PATCH /api/serviceaccounts/:id`; what is absent stays as it is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateBody {
    #[serde(default, alias = "Name")]
    name: Option<String>,
    #[serde(default, alias = "Role")]
    role: Option<String>,
    #[serde(default, alias = "IsDisabled")]
    is_disabled: Option<bool>,
}

/// The body of `POST /api/serviceaccounts/:id/tokens`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenBody {
    #[serde(alias = "Name")]
    name: String,
    /// Absent or not positive: the token never expires.
    #[serde(default, alias = "SecondsToLive")]
    seconds_to_live: Option<i64>,
}

/// `POST /api/serviceaccounts {name, role, isDisabled}`: 201 with the new account
/// (login `sa-<org>-<name>`); the role defaults to Viewer.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    current.require(Role::Admin)?;
    let role = match body
        .role
        .as_deref()
        .map(str::trim)
        .filter(|role| !role.is_empty())
    {
        Some(role) => parse_role(role)?,
        None => Role::Viewer,
    };
    let disabled = body.is_disabled.unwrap_or(false);
    let created = state
        .identity
        .create_service_account(current.org_id, &body.name, role, disabled)
        .await;
    match created {
        Ok(account) => Ok((StatusCode::CREATED, Json(summary(&account, role, 0)))),
        Err(Error::Conflict(_)) => Err(already_exists()),
        Err(err) => Err(err.into()),
    }
}

/// `GET /api/serviceaccounts/search?query&page&perpage`:
/// `{totalCount, serviceAccounts, page, perPage}`, by login.
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let paging = query.paging();
    let text = Some(query.text().to_owned()).filter(|text| !text.is_empty());
    let filter = Identity::service_account_filter(current.org_id, text);
    let found = state.identity.store().search_users(filter, paging).await?;
    let mut accounts = Vec::with_capacity(found.items.len());
    for account in &found.items {
        // An account removed from the org between the two reads is left out.
        let Some(role) = state.identity.org_role(account.id, current.org_id).await? else {
            continue;
        };
        let tokens = state.identity.store().api_keys(account.id).await?.len();
        accounts.push(summary(account, role, tokens));
    }
    Ok(Json(json!({
        "totalCount": found.total,
        "serviceAccounts": accounts,
        "page": paging.page,
        "perPage": paging.per_page,
    })))
}

/// `GET /api/serviceaccounts/:id`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let (account, role) = service_account(&state, &current, id).await?;
    Ok(Json(profile(&state, &account, role).await?))
}

/// `PATCH /api/serviceaccounts/:id {name?, role?, isDisabled?}`: the login stays as it was.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let (account, _) = service_account(&state, &current, id).await?;
    let role = body
        .role
        .as_deref()
        .map(str::trim)
        .filter(|role| !role.is_empty())
        .map(parse_role)
        .transpose()?;
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != account.name);
    if let Some(name) = name {
        if name.len() > 190 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "service account name must be 1 to 190 characters",
            ));
        }
        if name_taken(&state, &current, &account, name).await? {
            return Err(already_exists());
        }
    }
    let store = state.identity.store();
    if let Some(role) = role {
        store
            .set_org_role(current.org_id, account.id, role)
            .await
            .map_err(not_found_as_account)?;
    }
    if let Some(name) = name {
        let update = UserUpdate {
            name: Some(name.to_owned()),
            ..UserUpdate::default()
        };
        match store.update_user(account.id, update).await {
            Ok(_) => {}
            Err(Error::Conflict(_)) => return Err(already_exists()),
            Err(err) => return Err(not_found_as_account(err)),
        }
    }
    if let Some(disabled) = body
        .is_disabled
        .filter(|disabled| *disabled != account.is_disabled)
    {
        store
            .set_disabled(account.id, disabled)
            .await
            .map_err(not_found_as_account)?;
    }
    let (account, role) = service_account(&state, &current, id).await?;
    Ok(Json(json!({
        "message": "Service account updated",
        "id": account.id.0,
        "name": account.name,
        "serviceaccount": profile(&state, &account, role).await?,
    })))
}

/// `DELETE /api/serviceaccounts/:id`: the account and its tokens.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let (account, _) = service_account(&state, &current, id).await?;
    state
        .identity
        .store()
        .delete_user(account.id)
        .await
        .map_err(not_found_as_account)?;
    crate::shared::access::forget(
        &state,
        None,
        tandem_dashboards::Principal::User(tandem_dashboards::UserId(account.id.0)),
    )
    .await?;
    Ok(Json(json!({"message": "Service account deleted"})))
}

/// `GET /api/serviceaccounts/:id/tokens`, by id. Like Grafana, an unknown account has none
/// rather than being an error.
async fn tokens(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let account = match service_account(&state, &current, id).await {
        Ok((account, _)) => account,
        Err(err) if err.code == StatusCode::NOT_FOUND => return Ok(Json(json!([]))),
        Err(err) => return Err(err),
    };
    let keys = state.identity.store().api_keys(account.id).await?;
    let now = OffsetDateTime::now_utc();
    Ok(Json(keys.iter().map(|key| token(key, now)).collect()))
}

/// `POST /api/serviceaccounts/:id/tokens {name, secondsToLive}`: `{id, name, key}`, the
/// only answer that ever carries the key.
async fn create_token(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let (account, _) = service_account(&state, &current, id).await?;
    let created = state
        .identity
        .create_api_key(current.org_id, account.id, &body.name, body.seconds_to_live)
        .await;
    match created {
        Ok((key, secret)) => Ok(Json(json!({"id": key.id, "name": key.name, "key": secret}))),
        Err(Error::Conflict(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "service account token with given name already exists in the organization",
        )),
        Err(err) => Err(not_found_as_account(err)),
    }
}

/// `DELETE /api/serviceaccounts/:id/tokens/:tokenId`.
async fn delete_token(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((id, token_id)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let (account, _) = service_account(&state, &current, id).await?;
    let token_not_found =
        || ApiError::new(StatusCode::NOT_FOUND, "service account token not found");
    let keys = state.identity.store().api_keys(account.id).await?;
    if !keys.iter().any(|key| key.id == token_id) {
        return Err(token_not_found());
    }
    match state
        .identity
        .store()
        .delete_api_key(account.id, token_id)
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Service account token deleted"}))),
        Err(Error::NotFound(_)) => Err(token_not_found()),
        Err(err) => Err(err.into()),
    }
}

fn account_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "service account not found")
}

fn already_exists() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "service account already exists")
}

/// A row that vanished under a write means the account was deleted meanwhile.
fn not_found_as_account(err: Error) -> ApiError {
    match err {
        Error::NotFound(_) => account_not_found(),
        other => other.into(),
    }
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid role specified"))
}

/// The service account `id` of the current org, with its role there; 404 for anything else
/// (a person, another org's account), so other orgs' accounts cannot be probed.
async fn service_account(
    state: &AppState,
    current: &CurrentUser,
    id: i64,
) -> Result<(User, Role), ApiError> {
    let account = state
        .identity
        .store()
        .get_user(UserId(id))
        .await?
        .filter(|user| user.is_service_account && user.org_id == current.org_id)
        .ok_or_else(account_not_found)?;
    let role = state
        .identity
        .org_role(account.id, current.org_id)
        .await?
        .ok_or_else(account_not_found)?;
    Ok((account, role))
}

/// Whether another service account of the org already has `name`; the store only keeps
/// logins unique, and a rename keeps the login.
async fn name_taken(
    state: &AppState,
    current: &CurrentUser,
    account: &User,
    name: &str,
) -> Result<bool, ApiError> {
    const PER_PAGE: u64 = 1000;
    let filter = Identity::service_account_filter(current.org_id, Some(name.to_owned()));
    let mut page = 1;
    loop {
        let found = state
            .identity
            .store()
            .search_users(filter.clone(), Paging::new(page, PER_PAGE))
            .await?;
        if found
            .items
            .iter()
            .any(|other| other.id != account.id && other.name.eq_ignore_ascii_case(name))
        {
            return Ok(true);
        }
        if found.items.len() < PER_PAGE as usize || page * PER_PAGE >= found.total {
            return Ok(false);
        }
        page += 1;
    }
}

/// Grafana's `ServiceAccountDTO`, as created and searched.
fn summary(account: &User, role: Role, tokens: usize) -> Value {
    json!({
        "id": account.id.0,
        "uid": account.uid,
        "name": account.name,
        "login": account.login,
        "orgId": account.org_id.0,
        "isDisabled": account.is_disabled,
        "role": role.as_str(),
        "tokens": tokens,
        "avatarUrl": "",
        "accessControl": access_control(),
    })
}

/// Grafana's `accessControl` of a service account: what the caller may do with it. Every
/// service-account route needs an org Admin, who may do everything.
fn access_control() -> Value {
    json!({
        "serviceaccounts:delete": true,
        "serviceaccounts:read": true,
        "serviceaccounts:write": true,
        "serviceaccounts.permissions:read": true,
        "serviceaccounts.permissions:write": true,
    })
}

/// Grafana's `ServiceAccountProfileDTO`, as read and updated.
async fn profile(state: &AppState, account: &User, role: Role) -> Result<Value, ApiError> {
    let tokens = state.identity.store().api_keys(account.id).await?.len();
    Ok(json!({
        "id": account.id.0,
        "uid": account.uid,
        "name": account.name,
        "login": account.login,
        "orgId": account.org_id.0,
        "isDisabled": account.is_disabled,
        "createdAt": rfc3339(account.created),
        "updatedAt": rfc3339(account.updated),
        "avatarUrl": "",
        "role": role.as_str(),
        "teams": [],
        "tokens": tokens,
        "accessControl": access_control(),
    }))
}

/// Grafana's `TokenDTO`: `secondsUntilExpiration` is set only within the last week, as
/// Grafana's UI warns then.
fn token(key: &ApiKey, now: OffsetDateTime) -> Value {
    let expired = key.expires.is_some_and(|expires| expires <= now);
    let seconds_until = match key.expires {
        Some(expires) if !expired && expires - now <= time::Duration::days(7) => {
            (expires - now).whole_seconds()
        }
        _ => 0,
    };
    json!({
        "id": key.id,
        "name": key.name,
        "created": rfc3339(key.created),
        "lastUsedAt": key.last_used_at.map(rfc3339),
        "expiration": key.expires.map(rfc3339),
        "secondsUntilExpiration": seconds_until,
        "hasExpired": expired,
        "isRevoked": false,
    })
}
