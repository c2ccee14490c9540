//! `GET /api/search`: folders and dashboards of the org the request acts in.
//!
//! Folders come first, then dashboards, each by title without regard to case. Items at
//! the root carry no `folder*` keys (grafana-import tells root items by that). Parameters
//! follow Grafana 12.1; repeated ones (`tag`, `folderUIDs`, `dashboardUIDs`, `folderIds`)
//! may also be given comma-separated where Grafana accepts that.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tandem_dashboards::{FolderId, HitKind, SearchHit, SearchQuery};
use tandem_sessions::Role;

use crate::extract::QueryParams;
use crate::routes::dashboards::{dashboard_url, org, user};
use crate::routes::folders::folder_url;
use crate::{ApiError, AppState, CurrentUser};

/// `GET /api/search` (and `/api/search/`).
pub(crate) async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let mut query = SearchQuery::new(org(&current));
    query.user_id = Some(user(&current));
    for (key, value) in pairs {
        match key.as_str() {
            "query" => query.query = Some(value).filter(|text| !text.trim().is_empty()),
            "tag" => query.tags.push(value),
            "type" => {
                query.kind = match value.as_str() {
                    "" => None,
                    kind => Some(HitKind::from_grafana(kind).ok_or_else(|| {
                        ApiError::bad_request("type must be dash-db or dash-folder")
                    })?),
                }
            }
            "folderUIDs" | "folderUids" | "folderUid" => query.folder_uids.extend(list(&value)),
            "dashboardUIDs" | "dashboardUids" | "dashboardUid" => query.uids.extend(list(&value)),
            "folderIds" | "folderId" => {
                for id in list(&value) {
                    let id: i64 = number(&key, &id)?;
                    let uid = if id == 0 {
                        "general".to_owned()
                    } else {
                        match state
                            .dashboards
                            .folder_by_id(org(&current), FolderId(id))
                            .await
                        {
                            Ok(folder) => folder.uid.into_string(),
                            // An unknown folder id matches nothing, as an unknown uid
                            // does; the space makes sure no folder has this uid.
                            Err(tandem_dashboards::Error::FolderNotFound) => {
                                format!("unknown folder {id}")
                            }
                            Err(err) => return Err(err.into()),
                        }
                    };
                    query.folder_uids.push(uid);
                }
            }
            "starred" => query.starred = flag(&key, &value)?,
            "limit" => query.limit = Some(number(&key, &value)?),
            "page" => query.page = Some(number(&key, &value)?),
            // sort, permission, deleted, orgId… are accepted and ignored, as unknown
            // parameters are.
            _ => {}
        }
    }
    let hits = state.dashboards.search(query).await?;
    Ok(Json(Value::Array(
        hits.iter().map(|hit| hit_json(&state, hit)).collect(),
    )))
}

fn hit_json(state: &AppState, hit: &SearchHit) -> Value {
    let url = match hit.kind {
        HitKind::Dashboard => dashboard_url(state, &hit.uid, &hit.slug),
        HitKind::Folder => folder_url(state, &hit.uid, &hit.title),
    };
    let mut answer = json!({
        "id": hit.id,
        "uid": hit.uid,
        "title": hit.title,
        "uri": format!("db/{}", hit.slug),
        "url": url,
        "slug": hit.slug,
        "type": hit.kind.as_str(),
        "tags": hit.tags,
        "isStarred": hit.is_starred,
        "sortMeta": 0,
    });
    if let Some(folder) = &hit.folder {
        answer["folderId"] = json!(folder.id.0);
        answer["folderUid"] = json!(folder.uid.as_str());
        answer["folderTitle"] = json!(folder.title);
        answer["folderUrl"] = json!(folder_url(state, folder.uid.as_str(), &folder.title));
    }
    answer
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{key} must be a non-negative number"),
        )
    })
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{key} must be true or false"),
        )),
    }
}
