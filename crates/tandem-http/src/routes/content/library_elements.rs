//! `/api/library-elements…`: library panels (and variables) in Grafana 12's shapes, kept in
//! the shared database so one made through any instance is used through every other.
//!
//! An element lives in a folder (General when none) and takes its permissions from it, as
//! Grafana 12 does with folder permissions: reading needs View on the folder, creating,
//! changing and deleting need Edit (on both folders for a move). Which dashboards use an
//! element is recorded by every dashboard save, in the save's transaction
//! (`tandem-dashboards`), so these routes only read connections.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{
    Error, FolderId, FolderUid, Level, LibraryConnection, LibraryElement, LibraryElementPatch,
    LibraryKind, LibrarySearch, LibrarySort, MAX_LIBRARY_FILTERS, MAX_LIBRARY_PER_PAGE,
    NewLibraryElement, Permissions, Subject,
};
use tandem_sessions::Role;
use tandem_storage::from_ms;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::access::{denied, require_create, subject};
use crate::shared::content::{Logins, org, user};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// The uid Grafana gives the General folder in requests.
const GENERAL: &str = "general";

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/library-elements", search)
        .query(
            "searchString=a&perPage=10&page=1&folderFilterUIDs=f,general&kind=1\
             &sortDirection=alpha-desc&excludeUid=x&typeFilter=text,graph",
        )
        .post("/api/library-elements", create)
        .body(
            r#"{"folderUid":"","name":"Example","model":{"type":"text","title":"Example"},"kind":1,"uid":"example-lib"}"#,
        )
        .get("/api/library-elements/name/{name}", by_name)
        .get("/api/library-elements/{uid}", get_one)
        .patch("/api/library-elements/{uid}", patch)
        .body(r#"{"name":"Renamed","model":{"type":"text"},"kind":1,"version":1,"folderUid":""}"#)
        .delete("/api/library-elements/{uid}", remove)
        .get("/api/library-elements/{uid}/connections", connections)
}

/// The query of `GET /api/library-elements`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchQuery {
    #[serde(default)]
    search_string: Option<String>,
    #[serde(default)]
    per_page: Option<i64>,
    #[serde(default)]
    page: Option<i64>,
    #[serde(default, rename = "folderFilterUIDs")]
    folder_filter_uids: Option<String>,
    /// Grafana's deprecated filter by folder ids (0 is General).
    #[serde(default)]
    folder_filter: Option<String>,
    #[serde(default)]
    kind: Option<i64>,
    #[serde(default)]
    sort_direction: Option<String>,
    #[serde(default)]
    exclude_uid: Option<String>,
    #[serde(default)]
    type_filter: Option<String>,
}

/// `GET /api/library-elements`: one page of the elements the caller may view,
/// `{"result":{totalCount, elements, page, perPage}}`.
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let per_page = match query.per_page {
        Some(n) if n > 0 => u64::try_from(n).unwrap_or(0).min(MAX_LIBRARY_PER_PAGE),
        _ => tandem_dashboards::DEFAULT_LIBRARY_PER_PAGE,
    };
    let page = match query.page {
        Some(n) if n > 0 => u64::try_from(n).unwrap_or(1),
        _ => 1,
    };
    let answer = |total: u64, elements: Vec<Value>| {
        Json(json!({"result": {
            "totalCount": total, "elements": elements, "page": page, "perPage": per_page,
        }}))
    };
    let kind = match query.kind.unwrap_or(0) {
        0 => None,
        code => match LibraryKind::from_code(code) {
            Ok(kind) => Some(kind),
            // No element has another kind.
            Err(_) => return Ok(answer(0, Vec::new())),
        },
    };
    let folders = folder_filter(&state, &current, &query).await?;
    let subject = subject(&state, &current).await?;
    let viewable = state
        .permissions
        .viewable_folders(&subject, org(&current))
        .await?;
    let found = state
        .library
        .search_library_elements(LibrarySearch {
            org_id: org(&current),
            search: query.search_string.unwrap_or_default(),
            kind,
            types: split(query.type_filter.as_deref()),
            exclude_uid: query.exclude_uid.filter(|uid| !uid.is_empty()),
            folders,
            viewable,
            general_viewable: Permissions::root_level(&subject).is_some(),
            sort: match query.sort_direction.as_deref() {
                Some("alpha-desc") => LibrarySort::AlphaDesc,
                _ => LibrarySort::AlphaAsc,
            },
            page,
            per_page,
        })
        .await?;
    let mut logins = Logins::default();
    let mut elements = Vec::with_capacity(found.elements.len());
    for element in &found.elements {
        elements.push(element_json(&state, &mut logins, element).await?);
    }
    Ok(answer(found.total_count, elements))
}

/// The folders a search is limited to, from `folderFilterUIDs` (or Grafana's older
/// `folderFilter` of ids); `None` for every folder.
async fn folder_filter(
    state: &AppState,
    current: &CurrentUser,
    query: &SearchQuery,
) -> Result<Option<Vec<Option<FolderUid>>>, ApiError> {
    let uids = split(query.folder_filter_uids.as_deref());
    let ids = split(query.folder_filter.as_deref());
    if !uids.is_empty() && !ids.is_empty() {
        return Err(ApiError::bad_request(
            "cannot pass both folderFilter and folderFilterUIDs",
        ));
    }
    if uids.len().max(ids.len()) > MAX_LIBRARY_FILTERS {
        return Err(ApiError::bad_request(format!(
            "a folder filter has at most {MAX_LIBRARY_FILTERS} folders"
        )));
    }
    if !uids.is_empty() {
        return Ok(Some(
            uids.into_iter()
                .map(|uid| (uid != GENERAL).then(|| FolderUid::from(uid.as_str())))
                .collect(),
        ));
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let mut folders = Vec::with_capacity(ids.len());
    for id in ids {
        let id: i64 = id
            .parse()
            .map_err(|_| ApiError::bad_request("folderFilter must list folder ids"))?;
        if id == 0 {
            folders.push(None);
            continue;
        }
        match state
            .dashboards
            .folder_by_id(org(current), FolderId(id))
            .await
        {
            Ok(folder) => folders.push(Some(folder.uid)),
            // An unknown folder holds nothing.
            Err(Error::FolderNotFound) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(Some(folders))
}

/// The body of `POST /api/library-elements`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateBody {
    #[serde(default)]
    folder_uid: Option<String>,
    #[serde(default)]
    folder_id: Option<i64>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: Option<Value>,
    #[serde(default)]
    kind: i64,
    #[serde(default)]
    uid: Option<String>,
}

/// `POST /api/library-elements`: `{"result": element}`.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let kind = LibraryKind::from_code(body.kind)?;
    let folder = match body.folder_uid.as_deref().map(str::trim) {
        Some(uid) => general_or(uid),
        None => match body.folder_id {
            Some(id) if id > 0 => Some(
                state
                    .dashboards
                    .folder_by_id(org(&current), FolderId(id))
                    .await?
                    .uid,
            ),
            _ => None,
        },
    };
    let subject = subject(&state, &current).await?;
    require_create(
        &state,
        &subject,
        &current,
        folder.as_ref(),
        "library.panels:create",
    )
    .await?;
    let model = body.model.unwrap_or(Value::Null);
    let made = state
        .library
        .create_library_element(NewLibraryElement {
            org_id: org(&current),
            folder_uid: folder,
            uid: body.uid,
            name: body.name,
            kind,
            model,
            user_id: user(&current),
        })
        .await?;
    answer(&state, &made).await
}

/// `GET /api/library-elements/:uid`: `{"result": element}`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let (element, _) = permitted(&state, &current, &uid, Level::View, || {
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "insufficient permissions for getting library panel",
        )
    })
    .await?;
    answer(&state, &element).await
}

/// `GET /api/library-elements/name/:name`: the elements of that name the caller may view,
/// `{"result": [element]}`; 404 when the org has none.
async fn by_name(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let found = state
        .library
        .library_elements_named(org(&current), &name)
        .await?;
    if found.is_empty() {
        return Err(Error::LibraryElementNotFound.into());
    }
    let subject = subject(&state, &current).await?;
    let mut logins = Logins::default();
    let mut result = Vec::new();
    for element in &found {
        if may(&state, &subject, &current, element, Level::View).await? {
            result.push(element_json(&state, &mut logins, element).await?);
        }
    }
    Ok(Json(json!({ "result": result })))
}

/// The body of `PATCH /api/library-elements/:uid`; `kind` and `version` are required, as
/// in Grafana, and what is left out stays.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PatchBody {
    /// A string, or left out (or `null`) to keep the folder.
    #[serde(default)]
    folder_uid: Option<Value>,
    #[serde(default)]
    folder_id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<Value>,
    kind: i64,
    version: i64,
    #[serde(default)]
    uid: Option<String>,
}

/// `PATCH /api/library-elements/:uid`: a compare-and-swap on `version`; `{"result": element}`.
async fn patch(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let kind = LibraryKind::from_code(body.kind)?;
    let folder = match (&body.folder_uid, body.folder_id) {
        (Some(Value::String(uid)), _) => Some(general_or(uid.trim())),
        (Some(Value::Null) | None, Some(0)) => Some(None),
        (Some(Value::Null) | None, Some(id)) if id > 0 => Some(Some(
            state
                .dashboards
                .folder_by_id(org(&current), FolderId(id))
                .await?
                .uid,
        )),
        (Some(Value::Null) | None, _) => None,
        (Some(_), _) => return Err(ApiError::bad_request("folderUid must be text")),
    };
    let (element, subject) = permitted(&state, &current, &uid, Level::Edit, || {
        denied("library.panels:write")
    })
    .await?;
    if let Some(to) = &folder
        && to.as_ref() != element.folder.as_ref().map(|f| &f.uid)
    {
        require_create(
            &state,
            &subject,
            &current,
            to.as_ref(),
            "library.panels:write",
        )
        .await?;
    }
    let changed = state
        .library
        .patch_library_element(LibraryElementPatch {
            org_id: org(&current),
            uid: element.uid.clone(),
            version: body.version,
            kind,
            new_uid: body.uid,
            name: body.name,
            model: body.model,
            folder_uid: folder,
            user_id: user(&current),
        })
        .await?;
    answer(&state, &changed).await
}

/// `DELETE /api/library-elements/:uid`: `{"message":"Library element deleted","id"}`;
/// refused (403) while a dashboard uses it.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let (element, _) = permitted(&state, &current, &uid, Level::Edit, || {
        denied("library.panels:delete")
    })
    .await?;
    let id = state
        .library
        .delete_library_element(org(&current), &element.uid)
        .await?;
    Ok(Json(
        json!({"message": "Library element deleted", "id": id}),
    ))
}

/// `GET /api/library-elements/:uid/connections`: the dashboards the caller may view that
/// use the element, `{"result": [connection]}`.
async fn connections(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let (element, subject) = permitted(&state, &current, &uid, Level::View, || {
        denied("library.panels:read")
    })
    .await?;
    let found = state
        .library
        .library_connections(org(&current), &element.uid)
        .await?;
    let mut logins = Logins::default();
    let mut result = Vec::with_capacity(found.len());
    for connection in &found {
        if viewable_dashboard(&state, &subject, &current, connection).await? {
            result.push(connection_json(&state, &mut logins, connection).await?);
        }
    }
    Ok(Json(json!({ "result": result })))
}

/// The org's element with this uid and the caller as the permissions see them: 404
/// `library element could not be found`, or `refusal` unless the caller holds `need` on
/// the element's folder.
async fn permitted(
    state: &AppState,
    current: &CurrentUser,
    uid: &str,
    need: Level,
    refusal: impl FnOnce() -> ApiError,
) -> Result<(LibraryElement, Subject), ApiError> {
    let element = find(state, current, uid).await?;
    let subject = subject(state, current).await?;
    if may(state, &subject, current, &element, need).await? {
        Ok((element, subject))
    } else {
        Err(refusal())
    }
}

/// `{"result": element}`.
async fn answer(state: &AppState, element: &LibraryElement) -> Result<Json<Value>, ApiError> {
    let mut logins = Logins::default();
    Ok(Json(
        json!({"result": element_json(state, &mut logins, element).await?}),
    ))
}

/// The org's element with this uid; 404 `library element could not be found`.
async fn find(
    state: &AppState,
    current: &CurrentUser,
    uid: &str,
) -> Result<LibraryElement, ApiError> {
    Ok(state
        .library
        .library_element(org(current), uid)
        .await?
        .ok_or(Error::LibraryElementNotFound)?)
}

/// Whether the subject holds `need` on the element's folder (General: their basic role).
async fn may(
    state: &AppState,
    subject: &Subject,
    current: &CurrentUser,
    element: &LibraryElement,
    need: Level,
) -> Result<bool, ApiError> {
    let level = match &element.folder {
        None => Permissions::root_level(subject),
        Some(folder) => match state
            .permissions
            .folder_level(subject, org(current), &folder.uid)
            .await
        {
            Ok(level) => level,
            Err(Error::FolderNotFound) => None,
            Err(err) => return Err(err.into()),
        },
    };
    Ok(level.is_some_and(|level| level >= need))
}

/// Whether the subject may view the dashboard of a connection.
async fn viewable_dashboard(
    state: &AppState,
    subject: &Subject,
    current: &CurrentUser,
    connection: &LibraryConnection,
) -> Result<bool, ApiError> {
    if subject.is_org_admin() {
        return Ok(true);
    }
    let dashboard = match state
        .dashboards
        .get(org(current), &connection.dashboard_uid)
        .await
    {
        Ok(dashboard) => dashboard,
        Err(Error::DashboardNotFound) => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    Ok(state
        .permissions
        .dashboard_level(subject, &dashboard)
        .await?
        .is_some_and(|level| level >= Level::View))
}

/// An element in Grafana's shape.
async fn element_json(
    state: &AppState,
    logins: &mut Logins,
    element: &LibraryElement,
) -> Result<Value, ApiError> {
    let (folder_id, folder_uid, folder_name) = match &element.folder {
        Some(folder) => (
            folder.id.0,
            folder.uid.as_str().to_owned(),
            folder.title.clone(),
        ),
        None => (0, String::new(), "General".to_owned()),
    };
    Ok(json!({
        "id": element.id,
        "orgId": element.org_id.0,
        "folderId": folder_id,
        "folderUid": folder_uid,
        "uid": element.uid,
        "name": element.name,
        "kind": element.kind.code(),
        "type": element.kind_type,
        "description": element.description,
        "model": element.model,
        "version": element.version,
        "meta": {
            "folderName": folder_name,
            "folderUid": folder_uid,
            "connectedDashboards": element.connected_dashboards,
            "created": rfc3339(from_ms(element.created_ms)),
            "updated": rfc3339(from_ms(element.updated_ms)),
            "createdBy": author(state, logins, element.created_by).await?,
            "updatedBy": author(state, logins, element.updated_by).await?,
        },
    }))
}

/// A connection in Grafana's shape.
async fn connection_json(
    state: &AppState,
    logins: &mut Logins,
    connection: &LibraryConnection,
) -> Result<Value, ApiError> {
    Ok(json!({
        "id": connection.id,
        "kind": connection.kind,
        "elementId": connection.element_id,
        "connectionId": connection.dashboard_id.0,
        "connectionUid": connection.dashboard_uid.as_str(),
        "created": rfc3339(from_ms(connection.created_ms)),
        "createdBy": author(state, logins, connection.created_by).await?,
    }))
}

/// Grafana's `{id, name, avatarUrl}` of an author (Tandem serves no avatars).
async fn author(
    state: &AppState,
    logins: &mut Logins,
    id: tandem_dashboards::UserId,
) -> Result<Value, ApiError> {
    Ok(json!({"id": id.0, "name": logins.of(state, id).await?, "avatarUrl": ""}))
}

/// A folder uid from a request: `""` and `general` are General.
fn general_or(uid: &str) -> Option<FolderUid> {
    (!uid.is_empty() && uid != GENERAL).then(|| FolderUid::from(uid))
}

/// A comma-separated list, trimmed, without empty items.
fn split(list: Option<&str>) -> Vec<String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}
