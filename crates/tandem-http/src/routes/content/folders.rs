//! `/api/folders…`: the folders of the org the request acts in.
//!
//! Viewers read; Editors and Admins create, rename and delete (deleting a folder deletes
//! the dashboards and folders in it). A rename is a compare-and-swap on the folder's
//! version: a stale version without `overwrite` is 412 `version-mismatch`. Shapes follow
//! Grafana 12.1.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{
    CreateFolder, Folder, FolderId, FolderUid, Level, MoveFolder, Resource, Subject, UpdateFolder,
    Version,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::access::{Abilities, require_create, require_folder, subject};
use crate::shared::content::{Logins, folder_url, org, user};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/folders", list)
        .query("parentUid=&limit=10&page=1")
        .post("/api/folders", create)
        .body(r#"{"title":"Folder","uid":"","parentUid":""}"#)
        .get("/api/folders/", list)
        .query("parentUid=&limit=10&page=1")
        .post("/api/folders/", create)
        .body(r#"{"title":"Folder","uid":"","parentUid":""}"#)
        .get("/api/folders/{uid}", get_one)
        .put("/api/folders/{uid}", update)
        .body(r#"{"title":"Renamed","version":1,"overwrite":false}"#)
        .delete("/api/folders/{uid}", remove)
        .post("/api/folders/{uid}/move", move_folder)
        .body(r#"{"parentUid":""}"#)
        .get("/api/folders/id/{id}", get_by_id)
}

/// `?parentUid=&limit=&page=` of `GET /api/folders`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    #[serde(default)]
    parent_uid: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    page: Option<u64>,
}

/// `GET /api/folders`: the folders directly in `parentUid` (the root by default), by
/// title, `limit` (default 1000) per `page` (from 1).
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let parent = query
        .parent_uid
        .filter(|uid| !uid.is_empty())
        .map(FolderUid::from);
    let subject = subject(&state, &current).await?;
    let folders = state
        .dashboards
        .folders(org(&current), parent.as_ref())
        .await?;
    let folders: Vec<Folder> = match state
        .permissions
        .viewable_folders(&subject, org(&current))
        .await?
    {
        None => folders,
        Some(viewable) => {
            let viewable: std::collections::HashSet<FolderUid> = viewable.into_iter().collect();
            folders
                .into_iter()
                .filter(|folder| viewable.contains(&folder.uid))
                .collect()
        }
    };
    let limit = match query.limit {
        None | Some(0) => 1000,
        Some(limit) => limit,
    };
    let skip = tandem_storage::input::offset(query.page.unwrap_or(1), limit);
    let page = folders
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Json(Value::Array(
        page.map(|folder| {
            let mut hit = json!({
                "id": folder.id.0,
                "uid": folder.uid.as_str(),
                "title": folder.title,
            });
            if let (Some(parent), Some(fields)) = (&folder.parent_uid, hit.as_object_mut()) {
                fields.insert(
                    "parentUid".to_owned(),
                    Value::String(parent.as_str().to_owned()),
                );
            }
            hit
        })
        .collect(),
    )))
}

/// The body of `POST /api/folders`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    #[serde(default)]
    uid: Option<String>,
    /// Missing is empty: 400 `folder title cannot be empty`, as Grafana.
    #[serde(default)]
    title: String,
    #[serde(default)]
    parent_uid: Option<String>,
}

/// `POST /api/folders {title, uid?, parentUid?}`.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let uid = match body.uid.filter(|uid| !uid.is_empty()) {
        Some(uid) => Some(FolderUid::parse(uid)?),
        None => None,
    };
    let parent = body
        .parent_uid
        .filter(|uid| !uid.is_empty())
        .map(FolderUid::from);
    let subject = subject(&state, &current).await?;
    may_nest_in(&state, &subject, &current, parent.as_ref()).await?;
    let folder = state
        .dashboards
        .create_folder(CreateFolder {
            org_id: org(&current),
            uid,
            title: body.title,
            parent_uid: parent,
            user_id: user(&current),
        })
        .await
        .map_err(|err| match err {
            tandem_dashboards::Error::FolderNotFound => {
                ApiError::bad_request("Parent folder not found")
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(
        folder_json(&state, &folder, Some(Level::Admin)).await?,
    ))
}

/// `GET /api/folders/:uid`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let folder = state
        .dashboards
        .folder(org(&current), &FolderUid::from(uid))
        .await?;
    let subject = subject(&state, &current).await?;
    let level = require_folder(&state, &subject, org(&current), &folder.uid, Level::View).await?;
    Ok(Json(folder_json(&state, &folder, Some(level)).await?))
}

/// `GET /api/folders/id/:id`.
async fn get_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let folder = state
        .dashboards
        .folder_by_id(org(&current), FolderId(id))
        .await?;
    let subject = subject(&state, &current).await?;
    let level = require_folder(&state, &subject, org(&current), &folder.uid, Level::View).await?;
    Ok(Json(folder_json(&state, &folder, Some(level)).await?))
}

/// The body of `PUT /api/folders/:uid`.
#[derive(Deserialize)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    overwrite: bool,
}

/// `PUT /api/folders/:uid {title, version, overwrite?}`.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let uid = FolderUid::from(uid);
    let subject = subject(&state, &current).await?;
    let level = require_folder(&state, &subject, org(&current), &uid, Level::Edit).await?;
    let folder = state
        .dashboards
        .update_folder(UpdateFolder {
            org_id: org(&current),
            uid,
            title: body.title,
            version: body.version.map(Version),
            overwrite: body.overwrite,
            user_id: user(&current),
        })
        .await?;
    Ok(Json(folder_json(&state, &folder, Some(level)).await?))
}

/// The body of `POST /api/folders/:uid/move`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MoveBody {
    /// The new parent; missing or empty is the root.
    #[serde(default)]
    parent_uid: Option<String>,
}

/// `POST /api/folders/:uid/move {parentUid}`: moves the folder, with everything in it,
/// under another folder or to the root. Takes Edit on the folder and on the new parent
/// (an Editor's role at the root); a cycle or nesting past Grafana's limit is a 400.
async fn move_folder(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<MoveBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let uid = FolderUid::from(uid);
    let subject = subject(&state, &current).await?;
    let level = require_folder(&state, &subject, org(&current), &uid, Level::Edit).await?;
    let parent = body
        .parent_uid
        .map(|uid| uid.trim().to_owned())
        .filter(|uid| !uid.is_empty())
        .map(FolderUid::from);
    may_nest_in(&state, &subject, &current, parent.as_ref()).await?;
    let folder = state
        .dashboards
        .move_folder(MoveFolder {
            org_id: org(&current),
            uid,
            parent_uid: parent,
            user_id: user(&current),
        })
        .await
        .map_err(|err| match err {
            // The parent went between the check and the move.
            tandem_dashboards::Error::FolderNotFound => {
                ApiError::bad_request("Parent folder not found")
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(folder_json(&state, &folder, Some(level)).await?))
}

/// `DELETE /api/folders/:uid`: deletes the folder, the folders in it and their dashboards.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let uid = FolderUid::from(uid);
    let subject = subject(&state, &current).await?;
    require_folder(&state, &subject, org(&current), &uid, Level::Edit).await?;
    let deleted = state.dashboards.delete_folder(org(&current), &uid).await?;
    Ok(Json(json!({
        "id": deleted.folder.id.0,
        "uid": deleted.folder.uid.as_str(),
        "title": deleted.folder.title,
        "message": "Folder deleted",
    })))
}

/// Refused unless a folder may be put in `parent` (`None`: the root): 400 `Parent folder
/// not found` when it does not exist, 403 without Edit on it (at the root, the Editor role).
async fn may_nest_in(
    state: &AppState,
    subject: &Subject,
    current: &CurrentUser,
    parent: Option<&FolderUid>,
) -> Result<(), ApiError> {
    if let Some(parent) = parent {
        match state.dashboards.folder(org(current), parent).await {
            Ok(_) => {}
            Err(tandem_dashboards::Error::FolderNotFound) => {
                return Err(ApiError::bad_request("Parent folder not found"));
            }
            Err(err) => return Err(err.into()),
        }
    }
    require_create(state, subject, current, parent, "folders:create").await
}

/// A folder in Grafana's shape; the `can*` fields say what `level` lets the caller do.
async fn folder_json(
    state: &AppState,
    folder: &Folder,
    level: Option<Level>,
) -> Result<Value, ApiError> {
    let can = Abilities::of(level);
    let (editor, admin) = (can.can_edit, can.can_admin);
    let has_acl = !state
        .permissions
        .list(folder.org_id, &Resource::Folder(folder.uid.clone()))
        .await?
        .is_empty();
    let mut logins = Logins::default();
    let mut answer = json!({
        "id": folder.id.0,
        "uid": folder.uid.as_str(),
        "orgId": folder.org_id.0,
        "title": folder.title,
        "url": folder_url(state, folder.uid.as_str(), &folder.title),
        "hasAcl": has_acl,
        "canSave": editor,
        "canEdit": editor,
        "canAdmin": admin,
        "canDelete": editor,
        "createdBy": logins.of(state, folder.created_by).await?,
        "created": rfc3339(folder.created),
        "updatedBy": logins.of(state, folder.updated_by).await?,
        "updated": rfc3339(folder.updated),
        "version": folder.version.0,
    });
    if let (Some(parent), Some(fields)) = (&folder.parent_uid, answer.as_object_mut()) {
        fields.insert(
            "parentUid".to_owned(),
            Value::String(parent.as_str().to_owned()),
        );
        // Grafana's `parents`: the folders above, from the root down to the parent.
        let chain = state
            .permissions
            .folder_chain(folder.org_id, parent)
            .await?;
        let mut parents = Vec::with_capacity(chain.len());
        for above in chain.iter().rev() {
            let mut entry = json!({
                "id": above.id.0,
                "uid": above.uid.as_str(),
                "orgId": above.org_id.0,
                "title": above.title,
                "url": folder_url(state, above.uid.as_str(), &above.title),
            });
            if let (Some(up), Some(fields)) = (&above.parent_uid, entry.as_object_mut()) {
                fields.insert(
                    "parentUid".to_owned(),
                    Value::String(up.as_str().to_owned()),
                );
            }
            parents.push(entry);
        }
        fields.insert("parents".to_owned(), Value::Array(parents));
    }
    Ok(answer)
}
