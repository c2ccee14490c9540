//! `/api/v1/provisioning/alert-rules…` and `/api/v1/provisioning/folder/:uid/rule-groups/:group…`:
//! Grafana's alerting provisioning API for rules (Grafana 12.1's shapes and codes).
//!
//! Viewers read, Editors write. Writes take provenance `api`, or `""` with
//! `X-Disable-Provenance`; a rule provisioned from a file refuses both (409).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_alerting::{
    AlertQuery, AlertRule, ExecErrState, FolderUid, GroupRule, GroupWriter, NoDataState, RuleSpec,
    RuleUid, format_duration, parse_duration,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::alerting::{export_document, export_response, org, provenance, queries_json};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

const RULE_EXAMPLE: &str = r#"{"uid":"","orgID":1,"folderUID":"fixture-folder","ruleGroup":"group","title":"Rule","condition":"B","data":[{"refId":"A","relativeTimeRange":{"from":600,"to":0},"datasourceUid":"__expr__","model":{"type":"math","expression":"1"}},{"refId":"B","relativeTimeRange":{"from":0,"to":0},"datasourceUid":"__expr__","model":{"type":"math","expression":"$A > 0"}}],"noDataState":"NoData","execErrState":"Error","for":"1m","keep_firing_for":"0s","labels":{"team":"a"},"annotations":{"summary":"s"},"isPaused":false}"#;
const GROUP_EXAMPLE: &str =
    r#"{"title":"group","folderUid":"fixture-folder","interval":60,"rules":[]}"#;

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/provisioning/alert-rules", list)
        .post("/api/v1/provisioning/alert-rules", create)
        .body(RULE_EXAMPLE)
        .get("/api/v1/provisioning/alert-rules/export", export_all)
        .query("format=json&download=false&folderUid=fixture-folder&group=group&ruleUid=")
        .get("/api/v1/provisioning/alert-rules/{uid}", get_one)
        .put("/api/v1/provisioning/alert-rules/{uid}", update)
        .body(RULE_EXAMPLE)
        .delete("/api/v1/provisioning/alert-rules/{uid}", remove)
        .get("/api/v1/provisioning/alert-rules/{uid}/export", export_one)
        .query("format=yaml&download=true")
        .get(
            "/api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}",
            get_group,
        )
        .put(
            "/api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}",
            put_group,
        )
        .body(GROUP_EXAMPLE)
        .delete(
            "/api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}",
            delete_group,
        )
        .get(
            "/api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}/export",
            export_group,
        )
        .query("format=json")
}

/// `ProvisionedAlertRule` as clients post it; unknown fields are ignored.
#[derive(Deserialize)]
pub(crate) struct RuleBody {
    #[serde(default)]
    uid: String,
    #[serde(rename = "folderUID", default)]
    folder_uid: String,
    #[serde(rename = "ruleGroup", default)]
    rule_group: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    data: Vec<AlertQuery>,
    #[serde(rename = "noDataState", default)]
    no_data_state: String,
    #[serde(rename = "execErrState", default)]
    exec_err_state: String,
    #[serde(rename = "for", default)]
    for_duration: Option<Value>,
    #[serde(default)]
    keep_firing_for: Option<Value>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "isPaused", default)]
    is_paused: bool,
    #[serde(rename = "missingSeriesEvalsToResolve", default)]
    missing_series_evals_to_resolve: Option<i64>,
}

/// A Prometheus duration of a body (`"5m"`); absent or null is 0.
fn duration_field(value: &Option<Value>) -> Result<i64, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => parse_duration(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "bad request data: not a valid duration string: {s:?}"
            ))
        }),
        Some(other) => Err(ApiError::bad_request(format!(
            "bad request data: invalid duration {other}"
        ))),
    }
}

impl RuleBody {
    fn spec(&self) -> Result<RuleSpec, ApiError> {
        Ok(RuleSpec {
            title: self.title.clone(),
            condition: self.condition.clone(),
            data: self.data.clone(),
            no_data_state: NoDataState::parse(&self.no_data_state)?,
            exec_err_state: ExecErrState::parse(&self.exec_err_state)?,
            for_ms: duration_field(&self.for_duration)?,
            keep_firing_for_ms: duration_field(&self.keep_firing_for)?,
            missing_series_evals: self.missing_series_evals_to_resolve,
            labels: self.labels.clone().unwrap_or_default(),
            annotations: self.annotations.clone().unwrap_or_default(),
            is_paused: self.is_paused,
        })
    }
}

/// A rule as the provisioning API answers it (`ProvisionedAlertRule`).
pub(crate) fn rule_json(rule: &AlertRule) -> Value {
    let spec = &rule.spec;
    let mut out = json!({
        "id": rule.id,
        "uid": rule.uid.as_str(),
        "orgID": rule.org_id.0,
        "folderUID": rule.folder_uid.as_str(),
        "ruleGroup": rule.rule_group,
        "title": spec.title,
        "condition": spec.condition,
        "data": queries_json(rule),
        "updated": rfc3339(tandem_storage::from_ms(rule.updated)),
        "noDataState": spec.no_data_state.as_str(),
        "execErrState": spec.exec_err_state.as_str(),
        "for": format_duration(spec.for_ms),
        "keep_firing_for": format_duration(spec.keep_firing_for_ms),
        "isPaused": spec.is_paused,
        "notification_settings": null,
        "record": null,
    });
    if let Some(fields) = out.as_object_mut() {
        if !spec.annotations.is_empty() {
            fields.insert("annotations".to_owned(), json!(spec.annotations));
        }
        if !spec.labels.is_empty() {
            fields.insert("labels".to_owned(), json!(spec.labels));
        }
        if !rule.provenance.as_str().is_empty() {
            fields.insert("provenance".to_owned(), json!(rule.provenance.as_str()));
        }
        if let Some(n) = spec.missing_series_evals {
            fields.insert("missingSeriesEvalsToResolve".to_owned(), json!(n));
        }
    }
    out
}

/// `GET /api/v1/provisioning/alert-rules`.
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let rules = state.alerting.list(org(&current)).await?;
    Ok(Json(Value::Array(rules.iter().map(rule_json).collect())))
}

/// `POST /api/v1/provisioning/alert-rules`: 201 with the rule.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let spec = body.spec()?;
    let rule = state
        .alerting
        .create(
            org(&current),
            Some(body.uid.as_str()),
            FolderUid::from(body.folder_uid.as_str()),
            body.rule_group.clone(),
            spec,
            provenance(&headers),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(rule_json(&rule))).into_response())
}

/// `GET /api/v1/provisioning/alert-rules/:uid`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let rule = state
        .alerting
        .get(org(&current), &RuleUid::from(uid))
        .await?;
    Ok(Json(rule_json(&rule)))
}

/// `PUT /api/v1/provisioning/alert-rules/:uid`: 200 with the rule.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    let spec = body.spec()?;
    let rule = state
        .alerting
        .update(
            org(&current),
            &RuleUid::from(uid),
            FolderUid::from(body.folder_uid.as_str()),
            body.rule_group.clone(),
            spec,
            provenance(&headers),
        )
        .await?;
    Ok(Json(rule_json(&rule)))
}

/// `DELETE /api/v1/provisioning/alert-rules/:uid`: 204.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(uid): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    current.require(Role::Editor)?;
    state
        .alerting
        .delete(org(&current), &RuleUid::from(uid), provenance(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?format=&download=` of the exports, and the filters of the full export.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    download: Option<bool>,
    #[serde(default)]
    folder_uid: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    rule_uid: Option<String>,
}

async fn export(
    state: &AppState,
    current: &CurrentUser,
    headers: &HeaderMap,
    query: &ExportQuery,
    rules: Vec<AlertRule>,
) -> Result<Response, ApiError> {
    if rules.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Not found"));
    }
    let titles = state.alerting.folder_titles(org(current)).await?;
    let mut groups: Vec<(String, Vec<AlertRule>)> = Vec::new();
    for rule in rules {
        let title = titles.get(&rule.folder_uid).cloned().unwrap_or_default();
        match groups.last_mut() {
            Some((_, last))
                if last.first().is_some_and(|r| {
                    r.folder_uid == rule.folder_uid && r.rule_group == rule.rule_group
                }) =>
            {
                last.push(rule);
            }
            _ => groups.push((title, vec![rule])),
        }
    }
    let refs: Vec<(String, &[AlertRule])> = groups
        .iter()
        .map(|(title, rules)| (title.clone(), rules.as_slice()))
        .collect();
    Ok(export_response(
        headers,
        query.format.as_deref(),
        query.download.unwrap_or(false),
        &export_document(&refs),
    ))
}

/// `GET /api/v1/provisioning/alert-rules/export`.
async fn export_all(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let org = org(&current);
    let uid = query.rule_uid.clone().filter(|u| !u.is_empty());
    let folder = query.folder_uid.clone().filter(|u| !u.is_empty());
    let group = query.group.clone().filter(|g| !g.is_empty());
    let rules = if let Some(uid) = uid {
        if folder.is_some() || group.is_some() {
            return Err(ApiError::bad_request(
                "group and folder should not be specified when a single rule is requested",
            ));
        }
        vec![state.alerting.get(org, &RuleUid::from(uid)).await?]
    } else {
        match (folder, group) {
            (Some(folder), group) => {
                state
                    .alerting
                    .list_in(org, &FolderUid::from(folder), group.as_deref())
                    .await?
            }
            (None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "group name must be specified together with a single folder_uid parameter. Got 0",
                ));
            }
            (None, None) => state.alerting.list(org).await?,
        }
    };
    export(&state, &current, &headers, &query, rules).await
}

/// `GET /api/v1/provisioning/alert-rules/:uid/export`.
async fn export_one(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(uid): PathParams<String>,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let rule = state
        .alerting
        .get(org(&current), &RuleUid::from(uid))
        .await?;
    export(&state, &current, &headers, &query, vec![rule]).await
}

/// `AlertRuleGroup` as the provisioning API answers it.
fn group_json(folder: &str, title: &str, rules: &[AlertRule]) -> Value {
    json!({
        "title": title,
        "folderUid": folder,
        "interval": rules.first().map_or(0, |r| r.interval_seconds),
        "rules": rules.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/provisioning/folder/:folderUid/rule-groups/:group`.
async fn get_group(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((folder, group)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let rules = state
        .alerting
        .group(org(&current), &FolderUid::from(folder.as_str()), &group)
        .await?;
    Ok(Json(group_json(&folder, &group, &rules)))
}

/// The body of `PUT …/rule-groups/:group`.
#[derive(Deserialize)]
pub(crate) struct GroupBody {
    #[serde(default)]
    interval: i64,
    #[serde(default)]
    rules: Option<Vec<RuleBody>>,
}

/// `PUT /api/v1/provisioning/folder/:folderUid/rule-groups/:group`: creates or replaces the
/// group; 200 with it.
async fn put_group(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams((folder, group)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    let folder_uid = FolderUid::from(folder.as_str());
    let rules = match &body.rules {
        None => None,
        Some(rules) => Some(
            rules
                .iter()
                .map(|r| {
                    Ok(GroupRule {
                        uid: Some(r.uid.clone())
                            .filter(|u| !u.is_empty())
                            .map(RuleUid::from),
                        spec: r.spec()?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
    };
    state
        .alerting
        .replace_group(
            org,
            folder_uid.clone(),
            group.clone(),
            body.interval,
            rules,
            GroupWriter::Provisioning(provenance(&headers)),
        )
        .await?;
    let stored = state
        .alerting
        .list_in(org, &folder_uid, Some(&group))
        .await?;
    Ok(Json(group_json(&folder, &group, &stored)))
}

/// `DELETE /api/v1/provisioning/folder/:folderUid/rule-groups/:group`: 204.
async fn delete_group(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams((folder, group)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    current.require(Role::Editor)?;
    state
        .alerting
        .delete_group(
            org(&current),
            &FolderUid::from(folder),
            &group,
            GroupWriter::Provisioning(provenance(&headers)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/rule-groups/:group/export`.
async fn export_group(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams((folder, group)): PathParams<(String, String)>,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let rules = state
        .alerting
        .group(org(&current), &FolderUid::from(folder), &group)
        .await?;
    export(&state, &current, &headers, &query, rules).await
}
