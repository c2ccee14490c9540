//! `/api/prometheus/grafana/api/v1/rules` and `/alerts`: the Prometheus-style read API of
//! Grafana-managed rules, answered from the alert instances and rule statuses in the
//! shared database (so every instance answers the same), with Grafana's totals and its
//! `state`, `matcher`, `limit`, `limit_rules` and `limit_alerts` filters.
//!
//! Instances are written on change and refreshed every few hundred evaluations, so an
//! alert's `value` is the one of its last change or refresh. A rule's `lastEvaluation` is
//! its latest slot while its status shows it is being evaluated, else the recorded one.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tandem_alerting::{AlertInstance, AlertRule, InstanceState, Matcher, RuleStatus, latest_slot};
use tandem_sessions::Role;
use tandem_storage::input::check_count;
use tandem_storage::now_ms;

use crate::extract::QueryParams;
use crate::routing::Routes;
use crate::shared::access::viewable_folders;
use crate::shared::alerting::org;
use crate::shared::identity::rfc3339;
use crate::{ApiError, AppState, CurrentUser};

/// The most `state` and `matcher` values one request may carry.
const MAX_FILTERS: usize = 100;
/// Grafana's zero time.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/prometheus/grafana/api/v1/rules", rules)
        .query("state=firing&matcher=%7B%22name%22%3A%22team%22%2C%22value%22%3A%22a%22%7D&limit=10&limit_rules=10&limit_alerts=10&includeInternalLabels=false")
        .get("/api/prometheus/grafana/api/v1/alerts", alerts)
        .query("includeInternalLabels=false")
}

struct Filters {
    states: Vec<InstanceState>,
    rule_states: Vec<&'static str>,
    matchers: Vec<Matcher>,
    limit_groups: Option<usize>,
    limit_rules: Option<usize>,
    limit_alerts: Option<usize>,
}

fn limit(value: &str, name: &str) -> Result<Option<usize>, ApiError> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {name}: {value:?} is not a number")))?;
    Ok(usize::try_from(n).ok())
}

fn filters(params: &[(String, String)]) -> Result<Filters, ApiError> {
    let mut out = Filters {
        states: Vec::new(),
        rule_states: Vec::new(),
        matchers: Vec::new(),
        limit_groups: None,
        limit_rules: None,
        limit_alerts: None,
    };
    for (key, value) in params {
        match key.as_str() {
            "state" => {
                let (state, rule) = match value.to_ascii_lowercase().as_str() {
                    "normal" | "inactive" => (InstanceState::Normal, Some("inactive")),
                    "alerting" | "firing" => (InstanceState::Alerting, Some("firing")),
                    "pending" => (InstanceState::Pending, Some("pending")),
                    "recovering" => (InstanceState::Recovering, Some("recovering")),
                    "nodata" => (InstanceState::NoData, None),
                    "error" => (InstanceState::Error, None),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "unknown state '{}'",
                            other.chars().take(60).collect::<String>()
                        )));
                    }
                };
                out.states.push(state);
                out.rule_states.extend(rule);
            }
            "matcher" => out.matchers.push(Matcher::from_json(value)?),
            "limit" => out.limit_groups = limit(value, key)?,
            "limit_rules" => out.limit_rules = limit(value, key)?,
            "limit_alerts" => out.limit_alerts = limit(value, key)?,
            _ => {}
        }
    }
    check_count("state", out.states.len(), MAX_FILTERS)?;
    check_count("matcher", out.matchers.len(), MAX_FILTERS)?;
    Ok(out)
}

/// Grafana's `FormatStateAndReason`: `Normal (MissingSeries)`.
fn state_text(instance: &AlertInstance) -> String {
    if instance.reason.is_empty() {
        instance.state.as_str().to_owned()
    } else {
        format!("{} ({})", instance.state.as_str(), instance.reason)
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn format_e(v: f64) -> String {
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Grafana's `formatValues` of a pending or firing alert.
fn value_text(instance: &AlertInstance) -> String {
    if !matches!(
        instance.state,
        InstanceState::Alerting | InstanceState::Pending
    ) {
        return String::new();
    }
    let values: Vec<(&String, f64)> = instance
        .values
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    match values.as_slice() {
        [] => String::new(),
        [(_, v)] => format_e(*v),
        many => many
            .iter()
            .map(|(k, v)| format!("{k}: {}", format_e(*v)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn alert_json(instance: &AlertInstance) -> Value {
    json!({
        "labels": instance.labels,
        "annotations": instance.annotations,
        "state": state_text(instance),
        "activeAt": rfc3339(tandem_storage::from_ms(instance.started_at)),
        "value": value_text(instance),
    })
}

/// Grafana's order of alerts: by state importance, then start, then labels.
fn importance(state: InstanceState) -> u8 {
    match state {
        InstanceState::Alerting => 0,
        InstanceState::Pending => 1,
        InstanceState::Recovering => 2,
        InstanceState::Error => 3,
        InstanceState::NoData => 4,
        InstanceState::Normal => 5,
    }
}

/// `GET /api/prometheus/grafana/api/v1/alerts`.
async fn alerts(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let mut instances = state.alerting.instances(org(&current)).await?;
    if let Some(viewable) = viewable_folders(&state, &current).await? {
        // An alert is seen where its rule's folder is.
        let visible: std::collections::HashSet<String> = state
            .alerting
            .list(org(&current))
            .await?
            .into_iter()
            .filter(|rule| viewable.contains(rule.folder_uid.as_str()))
            .map(|rule| rule.uid.as_str().to_owned())
            .collect();
        instances.retain(|instance| visible.contains(instance.rule_uid.as_str()));
    }
    instances.sort_by_key(|i| (importance(i.state), i.started_at, i.fingerprint.clone()));
    let alerts: Vec<Value> = instances.iter().map(alert_json).collect();
    Ok(Json(
        json!({"status": "success", "data": {"alerts": alerts}}),
    ))
}

/// `GET /api/prometheus/grafana/api/v1/rules`.
async fn rules(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(params): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let filters = filters(&params)?;
    let org = org(&current);
    let mut rules = state.alerting.list(org).await?;
    if let Some(viewable) = viewable_folders(&state, &current).await? {
        rules.retain(|rule| viewable.contains(rule.folder_uid.as_str()));
    }
    let titles = state.alerting.folder_titles(org).await?;
    let mut by_rule: HashMap<String, Vec<AlertInstance>> = HashMap::new();
    for instance in state.alerting.instances(org).await? {
        by_rule
            .entry(instance.rule_uid.as_str().to_owned())
            .or_default()
            .push(instance);
    }
    let statuses: HashMap<String, RuleStatus> = state
        .alerting
        .statuses(org)
        .await?
        .into_iter()
        .map(|s| (s.rule_uid.as_str().to_owned(), s))
        .collect();
    let refresh = state.alerting.settings().refresh_evaluations.max(1);
    let now = now_ms();

    let mut groups: Vec<(String, String, Vec<&AlertRule>)> = Vec::new();
    for rule in &rules {
        let title = titles.get(&rule.folder_uid).cloned().unwrap_or_default();
        match groups.last_mut() {
            Some((_, _, list))
                if list.first().is_some_and(|r| {
                    r.folder_uid == rule.folder_uid && r.rule_group == rule.rule_group
                }) =>
            {
                list.push(rule)
            }
            _ => groups.push((title, rule.rule_group.clone(), vec![rule])),
        }
    }
    let mut out_groups = Vec::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for (file, name, group_rules) in &groups {
        let mut group_totals: BTreeMap<String, i64> = BTreeMap::new();
        let mut out_rules = Vec::new();
        let mut group_last = String::from(ZERO_TIME);
        let mut group_time = 0.0;
        for rule in group_rules {
            let empty = Vec::new();
            let mut instances: Vec<&AlertInstance> = by_rule
                .get(rule.uid.as_str())
                .unwrap_or(&empty)
                .iter()
                .collect();
            instances.sort_by_key(|i| (importance(i.state), i.started_at, i.fingerprint.clone()));
            let status = statuses.get(rule.uid.as_str());
            let mut rule_totals: BTreeMap<String, i64> = BTreeMap::new();
            let mut health = status.map_or("ok", |s| s.health.as_str()).to_owned();
            let mut last_error = status.map(|s| s.last_error.clone()).unwrap_or_default();
            for instance in &instances {
                *rule_totals
                    .entry(instance.state.as_str().to_ascii_lowercase())
                    .or_default() += 1;
                if !instance.error.is_empty() && instance.state != InstanceState::Error {
                    *rule_totals.entry("error".to_owned()).or_default() += 1;
                }
                match instance.state {
                    InstanceState::Error => health = "error".to_owned(),
                    InstanceState::NoData if health == "ok" => health = "nodata".to_owned(),
                    _ => {}
                }
                if !instance.error.is_empty() {
                    last_error.clone_from(&instance.error);
                    health = "error".to_owned();
                }
            }
            let has = |s: InstanceState| instances.iter().any(|i| i.state == s);
            let rule_state = if has(InstanceState::Alerting) {
                "firing"
            } else if has(InstanceState::Recovering) {
                "recovering"
            } else if has(InstanceState::Pending) {
                "pending"
            } else {
                "inactive"
            };
            *group_totals.entry(rule_state.to_owned()).or_default() += 1;
            if health == "error" || health == "nodata" {
                *group_totals.entry(health.clone()).or_default() += 1;
            }
            let active_at = instances
                .iter()
                .filter(|i| i.state == InstanceState::Alerting)
                .map(|i| i.started_at)
                .min();
            let last_evaluation = status.map(|s| {
                // A status refreshed recently is being evaluated: its latest slot is the
                // last evaluation, though not every evaluation writes.
                let interval = rule.interval_seconds.saturating_mul(1000);
                let alive =
                    now.saturating_sub(s.written_at) <= interval.saturating_mul(refresh + 2);
                if alive && !rule.spec.is_paused {
                    latest_slot(rule.org_id, &rule.uid, rule.interval_seconds, now).max(s.last_slot)
                } else {
                    s.last_slot
                }
            });
            let last_text = last_evaluation.map_or(ZERO_TIME.to_owned(), |ms| {
                rfc3339(tandem_storage::from_ms(ms))
            });
            let evaluation_time = status.map_or(0.0, |s| s.duration_ms as f64 / 1000.0);
            group_last.clone_from(&last_text);
            group_time = evaluation_time;
            let mut alerts: Vec<Value> = instances
                .iter()
                .filter(|i| filters.states.is_empty() || filters.states.contains(&i.state))
                .filter(|i| filters.matchers.iter().all(|m| m.matches(&i.labels)))
                .map(|i| alert_json(i))
                .collect();
            if let Some(n) = filters.limit_alerts {
                alerts.truncate(n);
            }
            if !filters.states.is_empty() && !filters.rule_states.contains(&rule_state) {
                continue;
            }
            let mut entry = json!({
                "state": rule_state,
                "name": rule.spec.title,
                "query": serde_json::to_string(&rule.spec.data).unwrap_or_default(),
                "duration": rule.spec.for_ms as f64 / 1000.0,
                "annotations": rule.spec.annotations,
                "alerts": alerts,
                "totals": rule_totals,
                "labels": rule.spec.labels,
                "health": health,
                "type": "alerting",
                "lastEvaluation": last_text,
                "evaluationTime": evaluation_time,
                "uid": rule.uid.as_str(),
                "folderUid": rule.folder_uid.as_str(),
                "isPaused": rule.spec.is_paused,
            });
            if let Some(fields) = entry.as_object_mut() {
                if !last_error.is_empty() {
                    fields.insert("lastError".to_owned(), json!(last_error));
                }
                if rule.spec.keep_firing_for_ms > 0 {
                    fields.insert(
                        "keepFiringFor".to_owned(),
                        json!(rule.spec.keep_firing_for_ms as f64 / 1000.0),
                    );
                }
                if let Some(at) = active_at {
                    fields.insert(
                        "activeAt".to_owned(),
                        json!(rfc3339(tandem_storage::from_ms(at))),
                    );
                }
            }
            out_rules.push(entry);
        }
        for (k, v) in &group_totals {
            *totals.entry(k.clone()).or_default() += v;
        }
        if let Some(n) = filters.limit_rules {
            out_rules.truncate(n);
        }
        let first = group_rules.first();
        out_groups.push(json!({
            "name": name,
            "file": file,
            "folderUid": first.map_or("", |r| r.folder_uid.as_str()),
            "rules": out_rules,
            "totals": group_totals,
            "interval": first.map_or(0, |r| r.interval_seconds),
            "lastEvaluation": group_last,
            "evaluationTime": group_time,
        }));
    }
    out_groups.sort_by(|a, b| {
        (a["file"].as_str(), a["name"].as_str()).cmp(&(b["file"].as_str(), b["name"].as_str()))
    });
    if let Some(n) = filters.limit_groups {
        out_groups.truncate(n);
    }
    Ok(Json(
        json!({"status": "success", "data": {"groups": out_groups, "totals": totals}}),
    ))
}
