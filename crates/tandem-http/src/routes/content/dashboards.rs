//! `/api/dashboards…` and the user's stars: saving, reading, deleting, versions, tags.
//!
//! Viewers read; Editors and Admins save, delete and restore. Shapes and messages follow
//! Grafana 12.1. A save is a compare-and-swap on the stored version in
//! `tandem-dashboards`, so two instances saving the same version at once give one 200 and
//! one 412 `version-mismatch`, never two successes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{
    Dashboard, DashboardId, DashboardUid, Error, FolderRef, Level, Resource, SaveDashboard,
    Version, VersionInfo, VersionQuery,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::access::{Abilities, require_create, require_dashboard, subject};
use crate::shared::content::{Logins, dashboard_url, folder_url, org, user};
use crate::shared::identity::rfc3339;
use crate::shared::preferences::{effective, home_dashboard};
use crate::{ApiError, AppState, CurrentUser};

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/dashboards/db", save)
        .body(SAVE_EXAMPLE)
        .post("/api/dashboards/db/", save)
        .body(SAVE_EXAMPLE)
        .get("/api/dashboards/uid/{uid}", get_one)
        .delete("/api/dashboards/uid/{uid}", remove)
        .get("/api/dashboards/uid/{uid}/versions", versions)
        .query("limit=10&start=0&continueToken=")
        .get("/api/dashboards/uid/{uid}/versions/{version}", version)
        .post("/api/dashboards/uid/{uid}/restore", restore)
        .body(r#"{"version":1}"#)
        .get("/api/dashboards/id/{id}/versions", versions_by_id)
        .query("limit=10&start=0")
        .get("/api/dashboards/id/{id}/versions/{version}", version_by_id)
        .get("/api/dashboards/tags", tags)
        .get("/api/dashboards/home", home)
        .get("/api/user/stars", stars)
        .post("/api/user/stars/dashboard/uid/{uid}", star)
        .delete("/api/user/stars/dashboard/uid/{uid}", unstar)
}

/// The example save of the route table.
const SAVE_EXAMPLE: &str = r#"{"dashboard":{"title":"Example","tags":["a","b"],"panels":[{"id":1,"title":"p"}]},"folderUid":"","folderId":0,"overwrite":false,"message":"saved"}"#;

/// The body of `POST /api/dashboards/db`. Unknown fields are ignored (clients post back
/// what they read); unknown fields inside `dashboard` are kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SaveBody {
    dashboard: Value,
    #[serde(default)]
    folder_uid: Option<String>,
    #[serde(default)]
    folder_id: Option<i64>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    message: Option<String>,
}

/// `POST /api/dashboards/db`: creates or updates a dashboard.
async fn save(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<SaveBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    if !body.dashboard.is_object() {
        return Err(ApiError::bad_request("dashboard must be a JSON object"));
    }
    let folder = FolderRef::from_request(body.folder_uid.as_deref(), body.folder_id);
    let subject = subject(&state, &current).await?;
    let target = match &folder {
        FolderRef::Root => None,
        FolderRef::Uid(uid) => Some(uid.clone()),
        // An unknown folder is the save's own 400, below.
        FolderRef::Id(id) => match state.dashboards.folder_by_id(org(&current), *id).await {
            Ok(found) => Some(found.uid),
            Err(Error::FolderNotFound) => None,
            Err(err) => return Err(err.into()),
        },
    };
    match saved_over(&state, &current, &body.dashboard).await? {
        Some(existing) => {
            require_dashboard(&state, &subject, &existing, Level::Edit).await?;
            if existing.folder.as_ref().map(|f| &f.uid) != target.as_ref() {
                require_create(
                    &state,
                    &subject,
                    &current,
                    target.as_ref(),
                    "dashboards:create",
                )
                .await?;
            }
        }
        None => {
            require_create(
                &state,
                &subject,
                &current,
                target.as_ref(),
                "dashboards:create",
            )
            .await?;
        }
    }
    let saved = state
        .dashboards
        .save(SaveDashboard {
            org_id: org(&current),
            dashboard: body.dashboard,
            folder,
            overwrite: body.overwrite,
            message: body.message.unwrap_or_default(),
            user_id: user(&current),
        })
        .await
        .map_err(save_error)?;
    Ok(Json(saved_answer(&state, &saved)))
}

/// `GET /api/dashboards/uid/:uid`: the dashboard and Grafana's `meta`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let uid = DashboardUid::from(uid);
    let dashboard = state.dashboards.get(org(&current), &uid).await?;
    let subject = subject(&state, &current).await?;
    let level = require_dashboard(&state, &subject, &dashboard, Level::View).await?;
    let starred = state
        .dashboards
        .is_starred(user(&current), org(&current), &uid)
        .await?;
    let meta = meta(&state, &dashboard, starred, level).await?;
    Ok(Json(json!({ "dashboard": dashboard.data, "meta": meta })))
}

/// `DELETE /api/dashboards/uid/:uid`.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::Edit).await?;
    let deleted = state.dashboards.delete(org(&current), &uid).await?;
    Ok(Json(json!({
        "id": deleted.id.0,
        "uid": deleted.uid.as_str(),
        "title": deleted.title,
        "message": format!("Dashboard {} deleted", deleted.title),
    })))
}

/// `?limit=&start=&continueToken=` of the version lists.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionsQuery {
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    continue_token: Option<String>,
}

impl VersionsQuery {
    fn into_query(self) -> VersionQuery {
        VersionQuery {
            limit: self.limit.unwrap_or(0),
            start: self.start.unwrap_or(0),
            continue_token: self.continue_token.filter(|token| !token.is_empty()),
        }
    }
}

/// `GET /api/dashboards/uid/:uid/versions`: `{versions, continueToken}`, newest first.
async fn versions(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    QueryParams(query): QueryParams<VersionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::View).await?;
    let page = state
        .dashboards
        .versions(org(&current), &uid, query.into_query())
        .await?;
    let versions = version_entries(&state, &page.versions).await?;
    Ok(Json(json!({
        "versions": versions,
        "continueToken": page.continue_token.unwrap_or_default(),
    })))
}

/// `GET /api/dashboards/id/:id/versions`: Grafana's older plain list.
async fn versions_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    QueryParams(query): QueryParams<VersionsQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let dashboard = state
        .dashboards
        .get_by_id(org(&current), DashboardId(id))
        .await?;
    viewed(&state, &current, &dashboard.uid, Level::View).await?;
    let page = state
        .dashboards
        .versions(org(&current), &dashboard.uid, query.into_query())
        .await?;
    let versions = version_entries(&state, &page.versions).await?;
    Ok(Json(Value::Array(versions)))
}

/// `GET /api/dashboards/uid/:uid/versions/:n`: one version with its `data`.
async fn version(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((uid, version)): PathParams<(String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::View).await?;
    version_with_data(&state, &current, &uid, version).await
}

/// `GET /api/dashboards/id/:id/versions/:n`.
async fn version_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((id, version)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let dashboard = state
        .dashboards
        .get_by_id(org(&current), DashboardId(id))
        .await?;
    viewed(&state, &current, &dashboard.uid, Level::View).await?;
    version_with_data(&state, &current, &dashboard.uid, version).await
}

/// The body of `POST /api/dashboards/uid/:uid/restore`.
#[derive(Deserialize)]
pub(crate) struct RestoreBody {
    version: i64,
}

/// `POST /api/dashboards/uid/:uid/restore {version}`: saves that version's data as the
/// next version; answers like a save.
async fn restore(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<RestoreBody>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::Edit).await?;
    let restored = state
        .dashboards
        .restore(org(&current), &uid, Version(body.version), user(&current))
        .await
        .map_err(save_error)?;
    Ok(Json(saved_answer(&state, &restored)))
}

/// `GET /api/dashboards/tags`: `[{term, count}]`.
async fn tags(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let tags = state.dashboards.tags(org(&current)).await?;
    Ok(Json(Value::Array(
        tags.into_iter()
            .map(|tag| json!({ "term": tag.term, "count": tag.count }))
            .collect(),
    )))
}

/// `GET /api/dashboards/home`: `{"redirectUri":"/d/<uid>/<slug>"}` when the caller's
/// preferences (user over team over org) name a home dashboard that exists, as Grafana
/// answers; otherwise Grafana's built-in home, which nobody can save.
async fn home(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let preferences = effective(&state, &current).await?;
    if let Some(dashboard) = home_dashboard(&state, &current, preferences.home_dashboard_id).await?
    {
        let url = dashboard_url(&state, dashboard.uid.as_str(), &dashboard.slug);
        return Ok(Json(json!({ "redirectUri": url })));
    }
    Ok(built_in_home(&state, &current))
}

/// Grafana's built-in home dashboard.
fn built_in_home(state: &AppState, current: &CurrentUser) -> Json<Value> {
    let now = rfc3339(time::OffsetDateTime::now_utc());
    Json(json!({
        "dashboard": {
            "title": "Home",
            "uid": "",
            "version": 0,
            "editable": false,
            "schemaVersion": 41,
            "tags": [],
            "time": { "from": "now-6h", "to": "now" },
            "panels": [{
                "id": 1,
                "type": "text",
                "title": "",
                "gridPos": { "h": 4, "w": 24, "x": 0, "y": 0 },
                "options": { "mode": "markdown", "content": "# Welcome to Tandem" },
            }],
        },
        "meta": {
            "isHome": true,
            "canSave": false,
            "canEdit": current.role.is_some_and(|role| role >= Role::Editor),
            "canAdmin": false,
            "canStar": false,
            "canDelete": false,
            "slug": "",
            "url": format!("{}/", state.sub_path()),
            "expires": "0001-01-01T00:00:00Z",
            "created": now,
            "updated": now,
            "version": 0,
            "hasAcl": false,
            "isFolder": false,
            "folderId": 0,
            "folderUid": "",
            "folderTitle": "General",
            "folderUrl": "",
            "provisioned": false,
            "provisionedExternalId": "",
        },
    }))
}

/// `GET /api/user/stars`: the uids of the dashboards the caller starred in the org.
async fn stars(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let starred = state
        .dashboards
        .starred(user(&current), org(&current))
        .await?;
    Ok(Json(Value::Array(
        starred
            .into_iter()
            .map(|uid| Value::String(uid.into_string()))
            .collect(),
    )))
}

/// `POST /api/user/stars/dashboard/uid/:uid`.
async fn star(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::View).await?;
    state
        .dashboards
        .star(user(&current), org(&current), &uid)
        .await?;
    Ok(Json(json!({ "message": "Dashboard starred!" })))
}

/// `DELETE /api/user/stars/dashboard/uid/:uid`.
async fn unstar(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let uid = DashboardUid::from(uid);
    viewed(&state, &current, &uid, Level::View).await?;
    state
        .dashboards
        .unstar(user(&current), org(&current), &uid)
        .await?;
    Ok(Json(json!({ "message": "Dashboard unstarred" })))
}

/// Save errors in Grafana's table: an unknown folder is the caller's mistake (400) here,
/// while `GET /api/folders/:uid` answers 404 for it.
fn save_error(err: Error) -> ApiError {
    match err {
        Error::FolderNotFound => ApiError::bad_request("Folder not found"),
        other => ApiError::from(other),
    }
}

fn saved_answer(state: &AppState, dashboard: &Dashboard) -> Value {
    json!({
        "status": "success",
        "id": dashboard.id.0,
        "uid": dashboard.uid.as_str(),
        "url": dashboard_url(state, dashboard.uid.as_str(), &dashboard.slug),
        "version": dashboard.version.0,
        "slug": dashboard.slug,
        "folderUid": dashboard.folder.as_ref().map_or("", |folder| folder.uid.as_str()),
    })
}

/// The dashboard `uid` names, once the caller is known to hold `need` on it: 404 when it
/// does not exist, 403 when they lack the level.
async fn viewed(
    state: &AppState,
    current: &CurrentUser,
    uid: &DashboardUid,
    need: Level,
) -> Result<Dashboard, ApiError> {
    current.require(Role::Viewer)?;
    let dashboard = state.dashboards.get(org(current), uid).await?;
    let subject = subject(state, current).await?;
    require_dashboard(state, &subject, &dashboard, need).await?;
    Ok(dashboard)
}

/// The stored dashboard a save body would update: the one its `uid` names, or else its
/// non-zero `id`; `None` when the save creates one.
async fn saved_over(
    state: &AppState,
    current: &CurrentUser,
    dashboard: &Value,
) -> Result<Option<Dashboard>, ApiError> {
    let found = if let Some(uid) = dashboard
        .get("uid")
        .and_then(Value::as_str)
        .filter(|uid| !uid.trim().is_empty())
    {
        state
            .dashboards
            .get(org(current), &DashboardUid::from(uid.trim()))
            .await
    } else if let Some(id) = dashboard
        .get("id")
        .and_then(Value::as_i64)
        .filter(|id| *id != 0)
    {
        state
            .dashboards
            .get_by_id(org(current), DashboardId(id))
            .await
    } else {
        return Ok(None);
    };
    match found {
        Ok(dashboard) => Ok(Some(dashboard)),
        // The save itself says what is wrong with an unknown id.
        Err(Error::DashboardNotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

async fn meta(
    state: &AppState,
    dashboard: &Dashboard,
    starred: bool,
    level: Level,
) -> Result<Value, ApiError> {
    let can = Abilities::of(Some(level));
    let (editor, admin) = (can.can_edit, can.can_admin);
    let has_acl = !state
        .permissions
        .list(
            dashboard.org_id,
            &Resource::Dashboard(dashboard.uid.clone()),
        )
        .await?
        .is_empty();
    let provisioned = dashboard.provisioning.is_some();
    let mut logins = Logins::default();
    let (folder_id, folder_uid, folder_title, folder_url) = match &dashboard.folder {
        Some(folder) => (
            folder.id.0,
            folder.uid.as_str().to_owned(),
            folder.title.clone(),
            folder_url(state, folder.uid.as_str(), &folder.title),
        ),
        None => (0, String::new(), "General".to_owned(), String::new()),
    };
    Ok(json!({
        "type": "db",
        "canSave": editor && dashboard.can_save(),
        "canEdit": editor,
        "canAdmin": admin,
        "canStar": true,
        "canDelete": editor && !provisioned,
        "slug": dashboard.slug,
        "url": dashboard_url(state, dashboard.uid.as_str(), &dashboard.slug),
        "expires": "0001-01-01T00:00:00Z",
        "created": rfc3339(dashboard.created),
        "updated": rfc3339(dashboard.updated),
        // Usually one person: the second lookup is then answered from the first.
        "createdBy": logins.of(state, dashboard.created_by).await?,
        "updatedBy": logins.of(state, dashboard.updated_by).await?,
        "version": dashboard.version.0,
        "hasAcl": has_acl,
        "isFolder": false,
        "isStarred": starred,
        "folderId": folder_id,
        "folderUid": folder_uid,
        "folderTitle": folder_title,
        "folderUrl": folder_url,
        "provisioned": provisioned,
        "provisionedExternalId": dashboard
            .provisioning
            .as_ref()
            .map_or("", |p| p.external_id.as_str()),
        "annotationsPermissions": {
            "dashboard": { "canAdd": editor, "canEdit": editor, "canDelete": editor },
            "organization": { "canAdd": admin, "canEdit": admin, "canDelete": admin },
        },
        "publicDashboardEnabled": false,
    }))
}

async fn version_with_data(
    state: &AppState,
    current: &CurrentUser,
    uid: &DashboardUid,
    version: i64,
) -> Result<Json<Value>, ApiError> {
    let found = state
        .dashboards
        .version(org(current), uid, Version(version))
        .await?;
    let mut entry = version_entry(state, &mut Logins::default(), &found.info).await?;
    if let Some(fields) = entry.as_object_mut() {
        fields.insert("data".to_owned(), found.data);
    }
    Ok(Json(entry))
}

async fn version_entries(state: &AppState, infos: &[VersionInfo]) -> Result<Vec<Value>, ApiError> {
    let mut logins = Logins::default();
    let mut entries = Vec::with_capacity(infos.len());
    for info in infos {
        entries.push(version_entry(state, &mut logins, info).await?);
    }
    Ok(entries)
}

async fn version_entry(
    state: &AppState,
    logins: &mut Logins,
    info: &VersionInfo,
) -> Result<Value, ApiError> {
    Ok(json!({
        "id": info.id,
        "dashboardId": info.dashboard_id.0,
        "uid": info.dashboard_uid.as_str(),
        "parentVersion": info.parent_version.0,
        "restoredFrom": info.restored_from.map_or(0, |version| version.0),
        "version": info.version.0,
        "created": rfc3339(info.created),
        "createdBy": logins.of(state, info.created_by).await?,
        "message": info.message,
    }))
}
