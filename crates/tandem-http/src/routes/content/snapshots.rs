//! `/api/snapshots…` and `/api/dashboard/snapshots`: dashboard snapshots in Grafana 12's
//! shapes, kept in the shared database so one made through any instance is read through
//! every other.
//!
//! Editors make snapshots and delete them (Grafana 12's `snapshots:create` and
//! `snapshots:delete`, which the Editor role holds), by key or by delete key; a snapshot of
//! a saved dashboard is deleted by key only by its maker or with Edit on that dashboard.
//! Any signed-in user holding a key reads the snapshot (the key is the secret, as in
//! Grafana). Publishing to an external snapshot server is not done (Tandem reaches no
//! outside service): `external: true` is a 400.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{DashboardId, Error, Level, NewSnapshot, Snapshot};
use tandem_sessions::Role;
use time::OffsetDateTime;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::access::{require_dashboard, subject};
use crate::shared::content::{org, user};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// Grafana's answer to a deletion.
const DELETED: &str =
    "Snapshot deleted. It might take an hour before it's cleared from any CDN caches.";

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/snapshots", create)
        .body(r#"{"dashboard":{"title":"Snap","panels":[]},"name":"Snap","expires":3600}"#)
        .get("/api/snapshots/{key}", get_one)
        .delete("/api/snapshots/{key}", remove)
        .get("/api/snapshots-delete/{delete_key}", remove_by_delete_key)
        .get("/api/dashboard/snapshots", list)
        .query("query=snap&limit=10")
}

/// The body of `POST /api/snapshots`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    dashboard: Value,
    #[serde(default)]
    name: Option<String>,
    /// Seconds until it expires; 0 or none is never.
    #[serde(default)]
    expires: Option<i64>,
    #[serde(default)]
    external: bool,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    delete_key: Option<String>,
}

/// `POST /api/snapshots`: `{deleteKey, deleteUrl, id, key, url}`.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    if body.external {
        return Err(ApiError::bad_request(
            "External dashboard creation is disabled",
        ));
    }
    let made = state
        .snapshots
        .create_snapshot(NewSnapshot {
            org_id: org(&current),
            name: body.name.unwrap_or_default(),
            key: body.key.filter(|key| !key.is_empty()),
            delete_key: body.delete_key.filter(|key| !key.is_empty()),
            user_id: user(&current),
            external: false,
            external_url: String::new(),
            dashboard: body.dashboard,
            expires_seconds: body.expires.unwrap_or(0),
        })
        .await?;
    let base = state.root_url.trim_end_matches('/');
    Ok(Json(json!({
        "deleteKey": made.delete_key,
        "deleteUrl": format!("{base}/api/snapshots-delete/{}", made.delete_key),
        "id": made.id,
        "key": made.key,
        "url": format!("{base}/dashboard/snapshot/{}", made.key),
    })))
}

/// When a snapshot expires as Grafana writes it: a snapshot that never expires is given
/// one 50 years after it was made, as Grafana stores it.
fn expires(snapshot: &Snapshot) -> OffsetDateTime {
    snapshot.expires.unwrap_or_else(|| {
        snapshot
            .created
            .checked_add(time::Duration::days(365 * 50))
            .unwrap_or(snapshot.created)
    })
}

/// `GET /api/snapshots/:key`: `{dashboard, meta}`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(key): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let snapshot = state
        .snapshots
        .snapshot(&key)
        .await?
        .ok_or(Error::SnapshotNotFound)?;
    Ok(Json(json!({
        "dashboard": snapshot.dashboard,
        "meta": {
            "isSnapshot": true,
            "type": "snapshot",
            "canSave": false,
            "canEdit": false,
            "canAdmin": false,
            "canStar": false,
            "canShare": false,
            "canDelete": false,
            "slug": "",
            "url": "",
            "expires": rfc3339(expires(&snapshot)),
            "created": rfc3339(snapshot.created),
            "updated": rfc3339(snapshot.updated),
            "version": 0,
        },
    })))
}

/// `DELETE /api/snapshots/:key`: Editors of the snapshot's org; one of a saved dashboard
/// (its JSON has an `id`) also takes its maker or Edit on that dashboard, unless the
/// dashboard is gone, as in Grafana 12.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(key): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    let snapshot = state
        .snapshots
        .snapshot(&key)
        .await?
        .filter(|snapshot| snapshot.org_id == org(&current))
        .ok_or(Error::SnapshotNotFound)?;
    let dashboard_id = snapshot
        .dashboard
        .get("id")
        .and_then(Value::as_i64)
        .filter(|id| *id != 0);
    if let (Some(id), false) = (dashboard_id, snapshot.user_id == user(&current)) {
        match state
            .dashboards
            .get_by_id(org(&current), DashboardId(id))
            .await
        {
            Ok(dashboard) => {
                let subject = subject(&state, &current).await?;
                require_dashboard(&state, &subject, &dashboard, Level::Edit).await?;
            }
            Err(Error::DashboardNotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    state.snapshots.delete_snapshot(&snapshot.key).await?;
    Ok(Json(json!({ "message": DELETED, "id": snapshot.id })))
}

/// `GET /api/snapshots-delete/:deleteKey`: an Editor holding the delete key (Grafana 12's
/// `snapshots:delete`; before it, any signed-in user).
async fn remove_by_delete_key(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(delete_key): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    let snapshot = state
        .snapshots
        .snapshot_by_delete_key(&delete_key)
        .await?
        .ok_or(Error::SnapshotNotFound)?;
    state.snapshots.delete_snapshot(&snapshot.key).await?;
    Ok(Json(json!({ "message": DELETED, "id": snapshot.id })))
}

/// `?query=&limit=` of `GET /api/dashboard/snapshots`.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

/// `GET /api/dashboard/snapshots`: the org's snapshots, newest first, without dashboards.
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let text = query.query.unwrap_or_default();
    if text.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "query must be at most 1000 characters long",
        ));
    }
    let found = state
        .snapshots
        .list_snapshots(org(&current), &text, query.limit.unwrap_or(0))
        .await?;
    Ok(Json(Value::Array(
        found
            .iter()
            .map(|snapshot| {
                json!({
                    "id": snapshot.id,
                    "name": snapshot.name,
                    "key": snapshot.key,
                    "orgId": snapshot.org_id.0,
                    "userId": snapshot.user_id.0,
                    "external": snapshot.external,
                    "externalUrl": snapshot.external_url,
                    "expires": rfc3339(expires(snapshot)),
                    "created": rfc3339(snapshot.created),
                    "updated": rfc3339(snapshot.updated),
                })
            })
            .collect(),
    )))
}
