//! `/api/ruler/grafana/api/v1/rules…`: the Ruler API that Grafana's UI and tools use,
//! keyed by folder (Grafana 12.1's shapes: answers 202 where Grafana does).
//!
//! The Ruler API never touches a group holding provisioned rules (400, Grafana's message).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_alerting::{
    AlertQuery, AlertRule, Error, ExecErrState, FolderUid, GroupRule, GroupWriter, NoDataState,
    RuleSpec, RuleUid, format_duration, parse_duration,
};
use tandem_dashboards::Level;
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::access::{require_rules_folder, viewable_folders};
use crate::shared::alerting::{org, queries_json};
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

const GROUP_EXAMPLE: &str = r#"{"name":"group","interval":"1m","rules":[{"grafana_alert":{"title":"Ruler rule","condition":"A","data":[{"refId":"A","datasourceUid":"__expr__","model":{"type":"math","expression":"1"}}],"uid":"","no_data_state":"NoData","exec_err_state":"Error","is_paused":false},"for":"1m","labels":{"team":"a"},"annotations":{"summary":"s"}}]}"#;

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/ruler/grafana/api/v1/rules", all)
        .get("/api/ruler/grafana/api/v1/rules/{folder_uid}", in_folder)
        .post("/api/ruler/grafana/api/v1/rules/{folder_uid}", post_group)
        .body(GROUP_EXAMPLE)
        .get(
            "/api/ruler/grafana/api/v1/rules/{folder_uid}/{group}",
            get_group,
        )
        .delete(
            "/api/ruler/grafana/api/v1/rules/{folder_uid}/{group}",
            delete_group,
        )
}

/// A rule as the Ruler API answers it (`GettableExtendedRuleNode`).
fn rule_node(rule: &AlertRule) -> Value {
    let spec = &rule.spec;
    let mut alert = json!({
        "id": rule.id,
        "orgId": rule.org_id.0,
        "title": spec.title,
        "condition": spec.condition,
        "data": queries_json(rule),
        "updated": rfc3339(tandem_storage::from_ms(rule.updated)),
        "intervalSeconds": rule.interval_seconds,
        "version": rule.version,
        "uid": rule.uid.as_str(),
        "namespace_uid": rule.folder_uid.as_str(),
        "rule_group": rule.rule_group,
        "no_data_state": spec.no_data_state.as_str(),
        "exec_err_state": spec.exec_err_state.as_str(),
        "is_paused": spec.is_paused,
    });
    if let Some(fields) = alert.as_object_mut() {
        if !rule.provenance.as_str().is_empty() {
            fields.insert("provenance".to_owned(), json!(rule.provenance.as_str()));
        }
        if let Some(n) = spec.missing_series_evals {
            fields.insert("missing_series_evals_to_resolve".to_owned(), json!(n));
        }
    }
    json!({
        "expr": "",
        "for": format_duration(spec.for_ms),
        "keep_firing_for": format_duration(spec.keep_firing_for_ms),
        "labels": spec.labels,
        "annotations": spec.annotations,
        "grafana_alert": alert,
    })
}

/// `GettableRuleGroupConfig`.
fn group_config(name: &str, rules: &[AlertRule]) -> Value {
    json!({
        "name": name,
        "interval": format_duration(rules.first().map_or(0, |r| r.interval_seconds.saturating_mul(1000))),
        "rules": rules.iter().map(rule_node).collect::<Vec<_>>(),
    })
}

/// `{folder title: [group config]}` of `rules`, which come sorted by folder and group.
fn namespaces(rules: &[AlertRule], titles: &std::collections::HashMap<FolderUid, String>) -> Value {
    let mut by_folder: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut start = 0;
    while start < rules.len() {
        let Some(first) = rules.get(start) else { break };
        let end = rules
            .iter()
            .skip(start)
            .position(|r| r.folder_uid != first.folder_uid || r.rule_group != first.rule_group)
            .map_or(rules.len(), |n| start + n);
        let title = titles
            .get(&first.folder_uid)
            .cloned()
            .unwrap_or_else(|| first.folder_uid.as_str().to_owned());
        by_folder.entry(title).or_default().push(group_config(
            &first.rule_group,
            rules.get(start..end).unwrap_or(&[]),
        ));
        start = end;
    }
    json!(by_folder)
}

/// `GET /api/ruler/grafana/api/v1/rules`: every group, by folder title.
async fn all(State(state): State<AppState>, current: CurrentUser) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let org = org(&current);
    let mut rules = state.alerting.list(org).await?;
    if let Some(viewable) = viewable_folders(&state, &current).await? {
        rules.retain(|rule| viewable.contains(rule.folder_uid.as_str()));
    }
    let titles = state.alerting.folder_titles(org).await?;
    Ok(Json(namespaces(&rules, &titles)))
}

/// The Ruler API's folder lookup: 404 when it does not exist, 403 when the caller lacks
/// `need` on it (View to read its rules, Edit to write them).
async fn folder_of(
    state: &AppState,
    current: &CurrentUser,
    uid: &str,
    need: Level,
) -> Result<tandem_alerting::Folder, ApiError> {
    let found = state
        .alerting
        .folder(org(current), &FolderUid::from(uid))
        .await
        .map_err(|err| match err {
            Error::FolderNotFound => ApiError::new(StatusCode::NOT_FOUND, "folder not found"),
            other => ApiError::from(other),
        })?;
    require_rules_folder(state, current, found.uid.as_str(), need).await?;
    Ok(found)
}

/// `GET /api/ruler/grafana/api/v1/rules/:folderUid`: 202 with the folder's groups.
async fn in_folder(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(folder): PathParams<String>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let found = folder_of(&state, &current, &folder, Level::View).await?;
    let rules = state
        .alerting
        .list_in(org(&current), &found.uid, None)
        .await?;
    let titles = [(found.uid.clone(), found.title.clone())].into();
    let mut body = namespaces(&rules, &titles);
    if rules.is_empty() {
        body = json!({});
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /api/ruler/grafana/api/v1/rules/:folderUid/:group`: 202 with the group.
async fn get_group(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((folder, group)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let found = folder_of(&state, &current, &folder, Level::View).await?;
    let rules = state
        .alerting
        .group(org(&current), &found.uid, &group)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(group_config(&group, &rules))).into_response())
}

/// `DELETE /api/ruler/grafana/api/v1/rules/:folderUid/:group`: 202.
async fn delete_group(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((folder, group)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let found = folder_of(&state, &current, &folder, Level::Edit).await?;
    match state
        .alerting
        .delete_group(org(&current), &found.uid, &group, GroupWriter::Ruler)
        .await
    {
        Ok(_) | Err(Error::GroupNotFound) => {}
        Err(Error::ProvisionedGroup(_)) => {
            return Err(ApiError::bad_request(
                "failed to delete rule group: request affects resources created via provisioning API",
            ));
        }
        Err(other) => return Err(other.into()),
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "rules deleted"})),
    )
        .into_response())
}

/// `PostableRuleGroupConfig`.
#[derive(Deserialize)]
pub(crate) struct PostableGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    rules: Vec<PostableRule>,
}

/// `PostableExtendedRuleNode`.
#[derive(Deserialize)]
pub(crate) struct PostableRule {
    #[serde(default)]
    grafana_alert: Option<PostableGrafanaRule>,
    #[serde(rename = "for", default)]
    for_duration: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// `PostableGrafanaRule`.
#[derive(Deserialize)]
pub(crate) struct PostableGrafanaRule {
    #[serde(default)]
    title: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    data: Vec<AlertQuery>,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    no_data_state: String,
    #[serde(default)]
    exec_err_state: String,
    #[serde(default)]
    is_paused: Option<bool>,
    #[serde(default)]
    missing_series_evals_to_resolve: Option<i64>,
}

fn ruler_duration(text: &Option<String>) -> Result<i64, String> {
    match text.as_deref() {
        None | Some("") => Ok(0),
        Some(text) => {
            parse_duration(text).ok_or_else(|| format!("not a valid duration string: {text:?}"))
        }
    }
}

fn to_group_rule(rule: &PostableRule) -> Result<GroupRule, String> {
    let alert = rule
        .grafana_alert
        .as_ref()
        .ok_or_else(|| "not Grafana managed alert rule".to_owned())?;
    if alert.title.is_empty() {
        return Err("alert rule title cannot be empty".to_owned());
    }
    let no_data = if alert.no_data_state.is_empty() {
        NoDataState::NoData
    } else {
        NoDataState::parse(&alert.no_data_state).map_err(|e| e.to_string())?
    };
    let exec_err = if alert.exec_err_state.is_empty() {
        ExecErrState::Alerting
    } else {
        ExecErrState::parse(&alert.exec_err_state).map_err(|e| e.to_string())?
    };
    Ok(GroupRule {
        uid: Some(alert.uid.clone())
            .filter(|u| !u.is_empty())
            .map(RuleUid::from),
        spec: RuleSpec {
            title: alert.title.clone(),
            condition: alert.condition.clone(),
            data: alert.data.clone(),
            no_data_state: no_data,
            exec_err_state: exec_err,
            for_ms: ruler_duration(&rule.for_duration)?,
            keep_firing_for_ms: ruler_duration(&rule.keep_firing_for)?,
            missing_series_evals: alert.missing_series_evals_to_resolve,
            labels: rule.labels.clone().unwrap_or_default(),
            annotations: rule.annotations.clone().unwrap_or_default(),
            is_paused: alert.is_paused.unwrap_or(false),
        },
    })
}

/// `POST /api/ruler/grafana/api/v1/rules/:folderUid`: creates or replaces a group; 202
/// with what changed.
async fn post_group(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(folder): PathParams<String>,
    JsonBody(body): JsonBody<PostableGroup>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let found = folder_of(&state, &current, &folder, Level::Edit).await?;
    if body.name.is_empty() {
        return Err(ApiError::bad_request("rule group name cannot be empty"));
    }
    let settings = state.alerting.settings();
    let interval = match ruler_duration(&body.interval) {
        Ok(0) => settings.default_interval_seconds(),
        Ok(ms) => ms / 1000,
        Err(message) => {
            return Err(ApiError::bad_request(format!(
                "bad request data: {message}"
            )));
        }
    };
    let base = settings.base_interval_seconds();
    if interval <= 0 || interval % base != 0 {
        return Err(ApiError::bad_request(format!(
            "rule evaluation interval ({interval} second) should be positive number that is multiple of the base interval of {base} seconds"
        )));
    }
    tandem_storage::input::check_count(
        "rules",
        body.rules.len(),
        tandem_alerting::MAX_GROUP_RULES,
    )?;
    let mut rules = Vec::with_capacity(body.rules.len());
    for (index, rule) in body.rules.iter().enumerate() {
        let rule = to_group_rule(rule).map_err(|message| {
            ApiError::bad_request(format!(
                "invalid rule specification at index [{index}]: {message}"
            ))
        })?;
        if let Err(err) = state
            .alerting
            .check(org(&current), &found.uid, &body.name, &rule.spec)
            .await
        {
            return Err(match err {
                Error::Invalid(_) | Error::BadRequest(_) | Error::Input(_) => {
                    ApiError::bad_request(format!(
                        "invalid rule specification at index [{index}]: {err}"
                    ))
                }
                other => other.into(),
            });
        }
        rules.push(rule);
    }
    let changes = state
        .alerting
        .replace_group(
            org(&current),
            found.uid.clone(),
            body.name.clone(),
            interval,
            Some(rules),
            GroupWriter::Ruler,
        )
        .await?;
    let uids = |list: &[RuleUid]| {
        list.iter()
            .map(|u| u.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    let message = if changes.is_empty() {
        "no changes detected in the rule group"
    } else {
        "rule group updated successfully"
    };
    let mut body = json!({"message": message});
    if let Some(fields) = body.as_object_mut() {
        for (key, list) in [
            ("created", &changes.created),
            ("updated", &changes.updated),
            ("deleted", &changes.deleted),
        ] {
            if !list.is_empty() {
                fields.insert(key.to_owned(), json!(uids(list)));
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
