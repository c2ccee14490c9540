//! `/api/annotations…`: points and regions of time with text and tags, in Grafana 12.1's
//! shapes, kept in the shared database so every instance answers the same.
//!
//! An org annotation (on no dashboard): Viewers read, Editors and Admins add, change and
//! delete. One on a dashboard follows the dashboard's permissions: View reads it (the
//! others are left out of query answers), Edit writes it. An annotation on a dashboard
//! names one of the org (`dashboardUID` or `dashboardId`; an unknown one is 404). A query
//! takes `from`, `to` (milliseconds), `userId`, `dashboardUID`, `dashboardId`, `panelId`,
//! `limit` (default 100), repeated `tags` (all of them, or any with `matchAny=true`),
//! `type` (`annotation` or `alert`) and `alertId` or `alertUID` (one rule's state changes),
//! and answers newest first. Alert state changes (written by alerting's evaluations, once
//! per change) are read by those who may view the rule's folder.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_dashboards::{
    Annotation, AnnotationPatch, AnnotationQuery, DashboardId, DashboardUid, Level, NewAnnotation,
    Subject,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::access::{denied, subject};
use crate::shared::content::{org, user};
use crate::{ApiError, AppState, CurrentUser};

/// The example body of the route table.
const EXAMPLE: &str = r#"{"dashboardUID":"","panelId":0,"time":1700000000000,"timeEnd":1700000060000,"tags":["deploy"],"text":"Deployed"}"#;

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/annotations", find)
        .query("from=0&to=1700000000000&limit=10&tags=a&matchAny=true&type=alert&alertUID=r&dashboardUID=x&panelId=1&userId=1")
        .post("/api/annotations", create)
        .body(EXAMPLE)
        .get("/api/annotations/tags", tags)
        .query("tag=de&limit=10")
        .get("/api/annotations/{id}", get_one)
        .put("/api/annotations/{id}", update)
        .body(EXAMPLE)
        .patch("/api/annotations/{id}", patch)
        .body(r#"{"text":"Changed","tags":["x"]}"#)
        .delete("/api/annotations/{id}", remove)
        .post("/api/annotations/graphite", graphite)
        .body(r#"{"what":"Deployed","tags":["deploy","prod"],"when":1700000000,"data":"v1.2"}"#)
}

/// The body of `POST /api/annotations/graphite`, Graphite's event format: `tags` is a
/// list or one space-separated string, `when` seconds since the epoch (none: now).
#[derive(Deserialize)]
pub(crate) struct GraphiteBody {
    #[serde(default)]
    what: String,
    #[serde(default)]
    tags: Option<Value>,
    #[serde(default)]
    when: Option<i64>,
    #[serde(default)]
    data: String,
}

/// `POST /api/annotations/graphite`: an org annotation from a Graphite-style event, for
/// Editors; the text is `what`, then `data` on a second line when given.
async fn graphite(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<GraphiteBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    if body.what.trim().is_empty() {
        return Err(ApiError::bad_request("what field should not be empty"));
    }
    let tags = match body.tags {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(tag) => Ok(tag),
                _ => Err(ApiError::bad_request("tag should be a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "tags should be a list of strings or a string",
            ));
        }
    };
    let time = match body.when {
        None | Some(0) => 0,
        Some(seconds) if seconds > 0 => seconds
            .checked_mul(1000)
            .ok_or_else(|| ApiError::bad_request("when must be seconds since the epoch"))?,
        Some(_) => return Err(ApiError::bad_request("when must not be negative")),
    };
    let text = if body.data.is_empty() {
        body.what
    } else {
        format!("{}\n{}", body.what, body.data)
    };
    let created = state
        .annotations
        .create_annotation(NewAnnotation {
            org_id: org(&current),
            dashboard_id: 0,
            panel_id: 0,
            user_id: user(&current),
            text,
            tags,
            time,
            time_end: time,
        })
        .await?;
    Ok(Json(
        json!({"message": "Graphite annotation added", "id": created.id}),
    ))
}

/// The body of a POST, PUT or PATCH (Grafana's `PostAnnotationsCmd` and
/// `UpdateAnnotationsCmd`); unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default, rename = "dashboardUID", alias = "dashboardUid")]
    dashboard_uid: Option<String>,
    #[serde(default)]
    dashboard_id: Option<i64>,
    #[serde(default)]
    panel_id: Option<i64>,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    time_end: Option<i64>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    text: Option<String>,
}

fn parse(body: Value) -> Result<Body, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("bad request data"));
    }
    serde_json::from_value(body)
        .map_err(|err| ApiError::bad_request(format!("bad request data: {err}")))
}

/// `POST /api/annotations`.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let body = parse(body)?;
    if body
        .text
        .as_deref()
        .is_none_or(|text| text.trim().is_empty())
    {
        return Err(ApiError::bad_request("Failed to save annotation"));
    }
    let dashboard_id = dashboard_of(
        &state,
        &current,
        body.dashboard_uid.as_deref(),
        body.dashboard_id,
    )
    .await?;
    may_write(&state, &current, dashboard_id).await?;
    let created = state
        .annotations
        .create_annotation(NewAnnotation {
            org_id: org(&current),
            dashboard_id,
            panel_id: body.panel_id.unwrap_or_default(),
            user_id: user(&current),
            text: body.text.unwrap_or_default(),
            tags: body.tags.unwrap_or_default(),
            time: body.time.unwrap_or_default(),
            time_end: body.time_end.unwrap_or_default(),
        })
        .await?;
    Ok(Json(
        json!({"message": "Annotation added", "id": created.id}),
    ))
}

/// `PUT /api/annotations/:id`: replaces the text, tags and times.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let body = parse(body)?;
    writable(&state, &current, id).await?;
    let patch = AnnotationPatch {
        text: Some(body.text.unwrap_or_default()),
        tags: Some(body.tags.unwrap_or_default()),
        time: body.time.filter(|time| *time != 0),
        time_end: body.time_end.filter(|time| *time != 0),
    };
    state
        .annotations
        .update_annotation(org(&current), id, patch)
        .await?;
    Ok(Json(json!({"message": "Annotation updated"})))
}

/// `PATCH /api/annotations/:id`: changes what the body names.
async fn patch(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let body = parse(body)?;
    writable(&state, &current, id).await?;
    let patch = AnnotationPatch {
        text: body.text,
        tags: body.tags,
        time: body.time,
        time_end: body.time_end,
    };
    state
        .annotations
        .update_annotation(org(&current), id, patch)
        .await?;
    Ok(Json(json!({"message": "Annotation patched"})))
}

/// `DELETE /api/annotations/:id`.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    writable(&state, &current, id).await?;
    state
        .annotations
        .delete_annotation(org(&current), id)
        .await?;
    Ok(Json(json!({"message": "Annotation deleted"})))
}

/// `GET /api/annotations/:id`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let found = state.annotations.get_annotation(org(&current), id).await?;
    let annotation =
        found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Annotation not found"))?;
    let mut access = Access::new(&state, &current).await?;
    if !access.can_read(&state, annotation.dashboard_id).await? {
        return Err(denied("annotations:read"));
    }
    let mut shapes = Shapes::default();
    Ok(Json(shapes.item(&state, &current, annotation).await?))
}

/// `GET /api/annotations`.
async fn find(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let mut query = AnnotationQuery {
        org_id: org(&current),
        from: None,
        to: None,
        user_id: None,
        dashboard_id: None,
        panel_id: None,
        alerts: None,
        alert_id: None,
        tags: Vec::new(),
        match_any: false,
        limit: 100,
    };
    let mut dashboard_uid = None;
    let mut alert_uid = None;
    for (key, value) in pairs {
        let value = value.trim().to_owned();
        match key.as_str() {
            "from" => query.from = Some(number(&key, &value)?),
            "to" => query.to = Some(number(&key, &value)?),
            "userId" => query.user_id = Some(number(&key, &value)?),
            "dashboardId" => query.dashboard_id = Some(number(&key, &value)?),
            "panelId" => query.panel_id = Some(number(&key, &value)?),
            "limit" => query.limit = number(&key, &value)?,
            "dashboardUID" | "dashboardUid" if !value.is_empty() => dashboard_uid = Some(value),
            "tags" | "tag" if !value.is_empty() => {
                tandem_storage::input::check_count("tags", query.tags.len() + 1, 1000)?;
                query.tags.push(value);
            }
            "alertId" => query.alert_id = Some(number(&key, &value)?),
            "alertUID" | "alertUid" if !value.is_empty() => alert_uid = Some(value),
            "matchAny" => query.match_any = matches!(value.as_str(), "true" | "1"),
            "type" => {
                query.alerts = match value.as_str() {
                    "alert" => Some(true),
                    "annotation" => Some(false),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    if let Some(uid) = dashboard_uid {
        match state
            .dashboards
            .get(org(&current), &DashboardUid::from(uid.as_str()))
            .await
        {
            Ok(dashboard) => query.dashboard_id = Some(dashboard.id.0),
            // No such dashboard has no annotations.
            Err(tandem_dashboards::Error::DashboardNotFound) => return Ok(Json(json!([]))),
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(uid) = alert_uid {
        let uid = tandem_alerting::RuleUid::from(uid.as_str());
        match state
            .alerting
            .get(tandem_alerting::OrgId(org(&current).0), &uid)
            .await
        {
            Ok(rule) => query.alert_id = Some(rule.id),
            // No such rule has no state history.
            Err(tandem_alerting::Error::RuleNotFound) => return Ok(Json(json!([]))),
            Err(err) => return Err(err.into()),
        }
    }
    let found = state.annotations.find_annotations(&query).await?;
    let mut access = Access::new(&state, &current).await?;
    let mut shapes = Shapes::default();
    let mut items = Vec::with_capacity(found.len());
    for annotation in found {
        // Those on a dashboard the caller may not view are left out, and so are the state
        // changes of rules in a folder they may not view.
        if !access.can_read(&state, annotation.dashboard_id).await?
            || !access.can_read_rule(&state, annotation.alert_id).await?
        {
            continue;
        }
        items.push(shapes.item(&state, &current, annotation).await?);
    }
    Ok(Json(Value::Array(items)))
}

/// `GET /api/annotations/tags?tag&limit`: `{"result":{"tags":[{"tag","count"}]}}`.
async fn tags(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let mut search = String::new();
    let mut limit = 100;
    for (key, value) in pairs {
        match key.as_str() {
            "tag" => search = value,
            "limit" => limit = number(&key, value.trim())?,
            _ => {}
        }
    }
    let tags = state
        .annotations
        .annotation_tags(org(&current), &search, limit)
        .await?;
    let tags: Vec<Value> = tags
        .into_iter()
        .map(|tag| json!({"tag": tag.tag, "count": tag.count}))
        .collect();
    Ok(Json(json!({"result": {"tags": tags}})))
}

/// What the caller may do with annotations: org annotations follow the role (Viewers
/// read, Editors write), those on a dashboard follow the dashboard's permissions (View
/// reads, Edit writes), each dashboard looked up once per request.
struct Access {
    org_id: tandem_dashboards::OrgId,
    subject: Subject,
    levels: HashMap<i64, Option<Level>>,
    /// The alert rules whose folder the caller may view, by id; read on the first alert
    /// annotation a non-Admin meets.
    rules: Option<std::collections::HashSet<i64>>,
}

impl Access {
    async fn new(state: &AppState, current: &CurrentUser) -> Result<Access, ApiError> {
        Ok(Access {
            org_id: org(current),
            subject: subject(state, current).await?,
            levels: HashMap::new(),
            rules: None,
        })
    }

    /// Whether the caller may read the state changes of alert rule `id` (0: not an alert
    /// annotation): an org Admin always, others when they may view the rule's folder.
    async fn can_read_rule(&mut self, state: &AppState, id: i64) -> Result<bool, ApiError> {
        if id == 0 || self.subject.is_org_admin() {
            return Ok(true);
        }
        if self.rules.is_none() {
            // The caller's subject is already at hand: no second read of their teams.
            let folders: Option<std::collections::HashSet<String>> = state
                .permissions
                .viewable_folders(&self.subject, self.org_id)
                .await?
                .map(|folders| folders.into_iter().map(|f| f.into_string()).collect());
            let rules = state
                .alerting
                .list(tandem_alerting::OrgId(self.org_id.0))
                .await?;
            self.rules = Some(
                rules
                    .into_iter()
                    .filter(|rule| {
                        folders
                            .as_ref()
                            .is_none_or(|f| f.contains(rule.folder_uid.as_str()))
                    })
                    .map(|rule| rule.id)
                    .collect(),
            );
        }
        Ok(self.rules.as_ref().is_some_and(|rules| rules.contains(&id)))
    }

    /// The caller's level on dashboard `id` (`None` when it is gone or they have none).
    async fn level(&mut self, state: &AppState, id: i64) -> Result<Option<Level>, ApiError> {
        if let Some(level) = self.levels.get(&id) {
            return Ok(*level);
        }
        let level = match state
            .dashboards
            .get_by_id(self.org_id, DashboardId(id))
            .await
        {
            Ok(dashboard) => {
                state
                    .permissions
                    .dashboard_level(&self.subject, &dashboard)
                    .await?
            }
            Err(tandem_dashboards::Error::DashboardNotFound) => None,
            Err(err) => return Err(err.into()),
        };
        self.levels.insert(id, level);
        Ok(level)
    }

    async fn can_read(&mut self, state: &AppState, dashboard_id: i64) -> Result<bool, ApiError> {
        if dashboard_id == 0 || self.subject.is_org_admin() {
            return Ok(true);
        }
        Ok(self.level(state, dashboard_id).await?.is_some())
    }
}

/// Refused with 403 unless the caller may write an annotation on `dashboard_id` (0: an
/// org annotation, which takes an Editor).
async fn may_write(
    state: &AppState,
    current: &CurrentUser,
    dashboard_id: i64,
) -> Result<(), ApiError> {
    if dashboard_id == 0 {
        return current.require(Role::Editor);
    }
    let mut access = Access::new(state, current).await?;
    if access.subject.is_org_admin()
        || access
            .level(state, dashboard_id)
            .await?
            .is_some_and(|level| level >= Level::Edit)
    {
        Ok(())
    } else {
        Err(denied("annotations:write"))
    }
}

/// [`may_write`] for the stored annotation `id`; 404 when the org has none.
async fn writable(state: &AppState, current: &CurrentUser, id: i64) -> Result<(), ApiError> {
    let found = state
        .annotations
        .get_annotation(org(current), id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Annotation not found"))?;
    may_write(state, current, found.dashboard_id).await
}

/// The dashboard an annotation is put on: by uid, else by id (0: none); 404 when the
/// org has no such dashboard.
async fn dashboard_of(
    state: &AppState,
    current: &CurrentUser,
    uid: Option<&str>,
    id: Option<i64>,
) -> Result<i64, ApiError> {
    match (
        uid.map(str::trim).filter(|uid| !uid.is_empty()),
        id.unwrap_or_default(),
    ) {
        (Some(uid), _) => Ok(state
            .dashboards
            .get(org(current), &DashboardUid::from(uid))
            .await?
            .id
            .0),
        (None, 0) => Ok(0),
        (None, id) => Ok(state
            .dashboards
            .get_by_id(org(current), DashboardId(id))
            .await?
            .id
            .0),
    }
}

/// Grafana's `ItemDTO`, with the dashboards' uids and the authors' logins each looked up
/// once per answer.
#[derive(Default)]
struct Shapes {
    dashboards: HashMap<i64, String>,
    users: HashMap<i64, (String, String)>,
}

impl Shapes {
    async fn item(
        &mut self,
        state: &AppState,
        current: &CurrentUser,
        a: Annotation,
    ) -> Result<Value, ApiError> {
        let dashboard_uid = if a.dashboard_id == 0 {
            String::new()
        } else if let Some(uid) = self.dashboards.get(&a.dashboard_id) {
            uid.clone()
        } else {
            let uid = match state
                .dashboards
                .get_by_id(org(current), DashboardId(a.dashboard_id))
                .await
            {
                Ok(dashboard) => dashboard.uid.as_str().to_owned(),
                Err(tandem_dashboards::Error::DashboardNotFound) => String::new(),
                Err(err) => return Err(err.into()),
            };
            self.dashboards.insert(a.dashboard_id, uid.clone());
            uid
        };
        let (login, email) = match self.users.get(&a.user_id.0) {
            Some(found) => found.clone(),
            None => {
                let found = if a.user_id.0 > 0 {
                    state
                        .identity
                        .store()
                        .get_user(tandem_sessions::UserId(a.user_id.0))
                        .await?
                } else {
                    None
                };
                let found = found.map(|u| (u.login, u.email)).unwrap_or_default();
                self.users.insert(a.user_id.0, found.clone());
                found
            }
        };
        Ok(json!({
            "id": a.id,
            "alertId": a.alert_id,
            "alertName": "",
            "dashboardId": a.dashboard_id,
            "dashboardUID": dashboard_uid,
            "panelId": a.panel_id,
            "userId": a.user_id.0,
            "newState": a.new_state,
            "prevState": a.prev_state,
            "created": ms(a.created),
            "updated": ms(a.updated),
            "time": a.time,
            "timeEnd": a.time_end,
            "text": a.text,
            "tags": a.tags,
            "login": login,
            "email": email,
            "avatarUrl": "",
            "data": a.data,
        }))
    }
}

fn ms(time: time::OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{key} must be a number")))
}
