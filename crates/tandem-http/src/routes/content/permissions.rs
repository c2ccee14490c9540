//! `/api/folders/:uid/permissions` and `/api/dashboards/{uid/:uid,id/:id}/permissions`:
//! the access lists of folders and dashboards, in Grafana's legacy shapes (which Grafana
//! 12 still serves and tools such as grafana-backup use).
//!
//! Reading or replacing a list takes Admin on the resource (an org Admin has it
//! everywhere). `GET` lists the resource's own items and, marked `inherited`, those of the
//! folders above it. `POST {items}` replaces the own items in one transaction; each item
//! names exactly one user of the org, team of the org, or basic role, with a level of 1
//! (View), 2 (Edit) or 4 (Admin). Bad input is a 400 that changes nothing.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{
    BasicRole, DashboardId, DashboardUid, FolderUid, Level, MAX_PERMISSION_ITEMS, PermissionItem,
    Principal, Resource, TeamId, UserId,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::access::{require_dashboard, require_folder, subject};
use crate::shared::content::{dashboard_url, folder_url, org};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// The example body of the route table.
const ITEMS_EXAMPLE: &str = r#"{"items":[{"role":"Viewer","permission":1},{"userId":1,"permission":4},{"teamId":1,"permission":2}]}"#;

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/folders/{uid}/permissions", get_folder)
        .post("/api/folders/{uid}/permissions", set_folder)
        .body(ITEMS_EXAMPLE)
        .get("/api/dashboards/uid/{uid}/permissions", get_dashboard)
        .post("/api/dashboards/uid/{uid}/permissions", set_dashboard)
        .body(ITEMS_EXAMPLE)
        .get("/api/dashboards/id/{id}/permissions", get_dashboard_by_id)
        .post("/api/dashboards/id/{id}/permissions", set_dashboard_by_id)
        .body(ITEMS_EXAMPLE)
}

/// What a list belongs to, as its items describe it.
struct Target {
    resource: Resource,
    id: i64,
    uid: String,
    title: String,
    slug: String,
    url: String,
    /// The folder a dashboard is in (id, uid); the folder itself for a folder.
    folder: (i64, String),
}

async fn folder_target(
    state: &AppState,
    current: &CurrentUser,
    uid: String,
) -> Result<Target, ApiError> {
    current.require(Role::Viewer)?;
    let folder = state
        .dashboards
        .folder(org(current), &FolderUid::from(uid))
        .await?;
    let subject = subject(state, current).await?;
    require_folder(state, &subject, org(current), &folder.uid, Level::Admin).await?;
    Ok(Target {
        resource: Resource::Folder(folder.uid.clone()),
        id: folder.id.0,
        uid: folder.uid.as_str().to_owned(),
        slug: tandem_dashboards::slugify(&folder.title),
        url: folder_url(state, folder.uid.as_str(), &folder.title),
        title: folder.title,
        folder: (folder.id.0, folder.uid.into_string()),
    })
}

async fn dashboard_target(
    state: &AppState,
    current: &CurrentUser,
    dashboard: tandem_dashboards::Dashboard,
) -> Result<Target, ApiError> {
    let subject = subject(state, current).await?;
    require_dashboard(state, &subject, &dashboard, Level::Admin).await?;
    Ok(Target {
        resource: Resource::Dashboard(dashboard.uid.clone()),
        id: dashboard.id.0,
        uid: dashboard.uid.as_str().to_owned(),
        url: dashboard_url(state, dashboard.uid.as_str(), &dashboard.slug),
        title: dashboard.title,
        slug: dashboard.slug,
        folder: dashboard
            .folder
            .map_or((0, String::new()), |f| (f.id.0, f.uid.into_string())),
    })
}

async fn by_uid(state: &AppState, current: &CurrentUser, uid: String) -> Result<Target, ApiError> {
    current.require(Role::Viewer)?;
    let dashboard = state
        .dashboards
        .get(org(current), &DashboardUid::from(uid))
        .await?;
    dashboard_target(state, current, dashboard).await
}

async fn by_id(state: &AppState, current: &CurrentUser, id: i64) -> Result<Target, ApiError> {
    current.require(Role::Viewer)?;
    let dashboard = state
        .dashboards
        .get_by_id(org(current), DashboardId(id))
        .await?;
    dashboard_target(state, current, dashboard).await
}

/// `GET /api/folders/:uid/permissions`.
async fn get_folder(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let target = folder_target(&state, &current, uid).await?;
    list(&state, &current, &target).await
}

/// `POST /api/folders/:uid/permissions {items}`.
async fn set_folder(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<ItemsBody>,
) -> Result<Json<Value>, ApiError> {
    let target = folder_target(&state, &current, uid).await?;
    replace(&state, &current, &target, body).await?;
    Ok(Json(json!({ "message": "Folder permissions updated" })))
}

/// `GET /api/dashboards/uid/:uid/permissions`.
async fn get_dashboard(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let target = by_uid(&state, &current, uid).await?;
    list(&state, &current, &target).await
}

/// `POST /api/dashboards/uid/:uid/permissions {items}`.
async fn set_dashboard(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<ItemsBody>,
) -> Result<Json<Value>, ApiError> {
    let target = by_uid(&state, &current, uid).await?;
    replace(&state, &current, &target, body).await?;
    Ok(Json(json!({ "message": "Dashboard permissions updated" })))
}

/// `GET /api/dashboards/id/:id/permissions`.
async fn get_dashboard_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    let target = by_id(&state, &current, id).await?;
    list(&state, &current, &target).await
}

/// `POST /api/dashboards/id/:id/permissions {items}`.
async fn set_dashboard_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<ItemsBody>,
) -> Result<Json<Value>, ApiError> {
    let target = by_id(&state, &current, id).await?;
    replace(&state, &current, &target, body).await?;
    Ok(Json(json!({ "message": "Dashboard permissions updated" })))
}

/// The body of a `POST …/permissions`; no `items` is an empty list, as in Grafana.
#[derive(Deserialize)]
pub(crate) struct ItemsBody {
    #[serde(default)]
    items: Vec<ItemBody>,
}

/// One item as clients post it; they post back what they read, so `0` and `""` mean
/// "not this kind of principal" and the read-only fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemBody {
    #[serde(default)]
    user_id: Option<i64>,
    #[serde(default)]
    team_id: Option<i64>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    permission: Option<i64>,
    /// Items GET marks `inherited` belong to a folder above: posting them back to this
    /// resource would copy them, so they are skipped.
    #[serde(default)]
    inherited: bool,
}

async fn replace(
    state: &AppState,
    current: &CurrentUser,
    target: &Target,
    body: ItemsBody,
) -> Result<(), ApiError> {
    if body.items.len() > MAX_PERMISSION_ITEMS {
        return Err(ApiError::bad_request(format!(
            "a permission list holds at most {MAX_PERMISSION_ITEMS} items"
        )));
    }
    let mut items = Vec::with_capacity(body.items.len());
    for (n, item) in body.items.into_iter().enumerate() {
        if item.inherited {
            continue;
        }
        items.push(parse_item(state, current, n, item).await?);
    }
    state
        .permissions
        .set(org(current), &target.resource, &items)
        .await?;
    Ok(())
}

async fn parse_item(
    state: &AppState,
    current: &CurrentUser,
    n: usize,
    item: ItemBody,
) -> Result<(Principal, Level), ApiError> {
    let bad = |what: &str| ApiError::bad_request(format!("items[{n}]: {what}"));
    let level = item
        .permission
        .and_then(Level::from_code)
        .ok_or_else(|| bad("permission must be 1 (View), 2 (Edit) or 4 (Admin)"))?;
    let user = item.user_id.unwrap_or(0);
    let team = item.team_id.unwrap_or(0);
    let role = item.role.as_deref().map(str::trim).unwrap_or("");
    if user < 0 || team < 0 {
        return Err(bad("userId and teamId must be positive"));
    }
    let named = usize::from(user > 0) + usize::from(team > 0) + usize::from(!role.is_empty());
    if named != 1 {
        return Err(bad("an item names exactly one of userId, teamId and role"));
    }
    let principal = if user > 0 {
        let member = state
            .identity
            .store()
            .org_role(current.org_id, tandem_sessions::UserId(user))
            .await?;
        if member.is_none() {
            return Err(bad(&format!("user {user} is not a member of this org")));
        }
        Principal::User(UserId(user))
    } else if team > 0 {
        let found = state
            .identity
            .store()
            .get_team(current.org_id, tandem_sessions::TeamId(team))
            .await?;
        if found.is_none() {
            return Err(bad(&format!("team {team} does not exist in this org")));
        }
        Principal::Team(TeamId(team))
    } else {
        Principal::Role(
            BasicRole::parse(role).ok_or_else(|| bad("role must be Viewer, Editor or Admin"))?,
        )
    };
    Ok((principal, level))
}

async fn list(
    state: &AppState,
    current: &CurrentUser,
    target: &Target,
) -> Result<Json<Value>, ApiError> {
    let org_id = org(current);
    let own = state.permissions.list(org_id, &target.resource).await?;
    let inherited = state
        .permissions
        .inherited(org_id, &target.resource)
        .await?;
    let mut names = Names::default();
    let mut out = Vec::new();
    for item in &own {
        out.push(item_json(state, current, &mut names, target, item, false).await?);
    }
    for above in &inherited {
        for item in &above.items {
            out.push(item_json(state, current, &mut names, target, item, true).await?);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// Users' and teams' names, each looked up once per answer.
#[derive(Default)]
struct Names {
    users: HashMap<i64, Option<(String, String)>>,
    teams: HashMap<i64, Option<(String, String)>>,
}

async fn item_json(
    state: &AppState,
    current: &CurrentUser,
    names: &mut Names,
    target: &Target,
    item: &PermissionItem,
    inherited: bool,
) -> Result<Value, ApiError> {
    let (mut user_id, mut team_id, mut role) = (0, 0, "");
    let (mut login, mut email, mut team, mut team_email) =
        (String::new(), String::new(), String::new(), String::new());
    match item.principal {
        Principal::User(user) => {
            user_id = user.0;
            if let std::collections::hash_map::Entry::Vacant(slot) = names.users.entry(user.0) {
                let found = state
                    .identity
                    .store()
                    .get_user(tandem_sessions::UserId(user.0))
                    .await?
                    .map(|user| (user.login, user.email));
                slot.insert(found);
            }
            if let Some(Some((l, e))) = names.users.get(&user.0) {
                (login, email) = (l.clone(), e.clone());
            }
        }
        Principal::Team(id) => {
            team_id = id.0;
            if let std::collections::hash_map::Entry::Vacant(slot) = names.teams.entry(id.0) {
                let found = state
                    .identity
                    .store()
                    .get_team(current.org_id, tandem_sessions::TeamId(id.0))
                    .await?
                    .map(|team| (team.name, team.email));
                slot.insert(found);
            }
            if let Some(Some((n, e))) = names.teams.get(&id.0) {
                (team, team_email) = (n.clone(), e.clone());
            }
        }
        Principal::Role(basic) => role = basic.as_str(),
    }
    let is_folder = matches!(target.resource, Resource::Folder(_));
    let (dashboard_id, folder_id) = if is_folder {
        (0, target.folder.0)
    } else {
        (target.id, target.folder.0)
    };
    let mut answer = json!({
        "id": item.id,
        "dashboardId": dashboard_id,
        "folderId": folder_id,
        "folderUid": target.folder.1,
        "created": rfc3339(tandem_storage::from_ms(item.created)),
        "updated": rfc3339(tandem_storage::from_ms(item.updated)),
        "userId": user_id,
        "userLogin": login,
        "userEmail": email,
        "userAvatarUrl": "",
        "teamId": team_id,
        "team": team,
        "teamEmail": team_email,
        "teamAvatarUrl": "",
        "permission": item.level.code(),
        "permissionName": item.level.name(),
        "uid": target.uid,
        "title": target.title,
        "slug": target.slug,
        "isFolder": is_folder,
        "url": target.url,
        "inherited": inherited,
    });
    if let (false, Some(fields)) = (role.is_empty(), answer.as_object_mut()) {
        fields.insert("role".to_owned(), Value::String(role.to_owned()));
    }
    Ok(answer)
}
