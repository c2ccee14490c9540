//! `GET /api/search`: folders and dashboards of the org the request acts in.
//!
//! Folders come first, then dashboards, each by title without regard to case. Items at
//! the root carry no `folder*` keys (grafana-import tells root items by that). Parameters
//! follow Grafana 12.1; repeated ones (`tag`, `folderUIDs`, `dashboardUIDs`, `folderIds`)
//! may also be given comma-separated where Grafana accepts that.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tandem_dashboards::{FolderId, HitKind, SearchAccess, SearchQuery};
use tandem_sessions::Role;

use crate::extract::QueryParams;
use crate::shared::access::subject;
use crate::shared::content::folder_url;
use crate::shared::content::{dashboard_url, org, user};
use crate::{ApiError, AppState, CurrentUser};

/// `GET /api/search` (and `/api/search/`).
pub(crate) async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
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
            "dashboardIds" | "dashboardId" => {
                for id in list(&value) {
                    tandem_storage::input::check_count(
                        "dashboardIds",
                        query.uids.len() + 1,
                        tandem_dashboards::MAX_SEARCH_FILTERS,
                    )?;
                    let id: i64 = number(&key, &id)?;
                    let uid = match state
                        .dashboards
                        .get_by_id(org(&current), tandem_dashboards::DashboardId(id))
                        .await
                    {
                        Ok(dashboard) => dashboard.uid.into_string(),
                        // Matches nothing, as an unknown uid does: no uid has a space.
                        Err(tandem_dashboards::Error::DashboardNotFound) => {
                            format!("unknown dashboard {id}")
                        }
                        Err(err) => return Err(err.into()),
                    };
                    query.uids.push(uid);
                }
            }
            "folderIds" | "folderId" => {
                for id in list(&value) {
                    // Each id is a lookup: the count is bounded before, not after.
                    tandem_storage::input::check_count(
                        "folderIds",
                        query.folder_uids.len() + 1,
                        tandem_dashboards::MAX_SEARCH_FILTERS,
                    )?;
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
    let subject = subject(&state, &current).await?;
    query.access = state
        .permissions
        .viewable_folders(&subject, org(&current))
        .await?
        .map(|folders| SearchAccess { folders, subject });
    let hits = state.dashboards.search(query).await?;
    // Serialised straight from borrowed fields: a page holds up to 5000 hits, and many
    // share a folder, whose URL is built once.
    let mut folder_urls: HashMap<&str, String> = HashMap::new();
    for hit in &hits {
        if let Some(folder) = &hit.folder {
            folder_urls
                .entry(folder.uid.as_str())
                .or_insert_with(|| folder_url(&state, folder.uid.as_str(), &folder.title));
        }
    }
    let answer: Vec<Hit<'_>> = hits
        .iter()
        .map(|hit| Hit {
            id: hit.id,
            uid: &hit.uid,
            title: &hit.title,
            uri: format!("db/{}", hit.slug),
            url: match hit.kind {
                HitKind::Dashboard => dashboard_url(&state, &hit.uid, &hit.slug),
                HitKind::Folder => folder_url(&state, &hit.uid, &hit.title),
            },
            slug: &hit.slug,
            kind: hit.kind.as_str(),
            tags: &hit.tags,
            is_starred: hit.is_starred,
            sort_meta: 0,
            folder_id: hit.folder.as_ref().map(|folder| folder.id.0),
            folder_uid: hit.folder.as_ref().map(|folder| folder.uid.as_str()),
            folder_title: hit.folder.as_ref().map(|folder| folder.title.as_str()),
            folder_url: hit
                .folder
                .as_ref()
                .and_then(|folder| folder_urls.get(folder.uid.as_str()))
                .map(String::as_str),
        })
        .collect();
    Ok(Json(answer).into_response())
}

/// One hit in Grafana's shape; the `folder*` keys are absent at the root.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Hit<'a> {
    id: i64,
    uid: &'a str,
    title: &'a str,
    uri: String,
    url: String,
    slug: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    tags: &'a [String],
    is_starred: bool,
    sort_meta: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder_uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder_title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder_url: Option<&'a str>,
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
