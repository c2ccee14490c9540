//! `/api/alertmanager/grafana/api/v2/…`: Alertmanager 0.25's v2 API over Grafana-managed
//! alerts, so that `amtool --alertmanager.url=http://<host>/api/alertmanager/grafana` and
//! other Alertmanager clients work against any instance.
//!
//! Silences live in the shared database (a silence made through one instance is read by
//! the next request and the next notification flush on every other); alerts are the
//! firing alert instances of the rule state and the alerts posted through `POST alerts`
//! (a Prometheus server pointed at Tandem), routed through the org's policy tree for
//! their receivers and groups. Viewers read, Editors write silences, as in Grafana.
//!
//! `POST silences` answers 200 `{"silenceID"}` as Alertmanager does, where Grafana answers
//! 202, which `amtool` 0.25 rejects.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_alerting::notify::policy::CompiledRoute;
use tandem_alerting::notify::posted::parse_postable_alerts;
use tandem_alerting::notify::silence::{
    PostableSilence, Silence, SilenceMatcher, Silencer, format_time, parse_filter, parse_time,
    silence_matches_filter, sort_silences, validate_silence_id,
};
use tandem_alerting::notify::store::DocumentKind;
use tandem_alerting::notify::timing::{muted_by, timings_by_name};
use tandem_alerting::{AlertInstance, Labels, Matcher, OrgId};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::alerting::org;
use crate::{ApiError, AppState, CurrentUser};

/// A path under the v2 API's prefix.
macro_rules! v2 {
    ($path:literal) => {
        concat!("/api/alertmanager/grafana/api/v2/", $path)
    };
}

const SILENCE_EXAMPLE: &str = r#"{"matchers":[{"name":"team","value":"db","isRegex":false,"isEqual":true}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"admin","comment":"maintenance"}"#;
const ALERTS_EXAMPLE: &str = r#"[{"labels":{"alertname":"DiskFull","team":"db"},"annotations":{"summary":"disk full"},"startsAt":"2026-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph"}]"#;
const ALERTS_QUERY: &str =
    "filter=team%3D%22db%22&active=true&silenced=true&inhibited=true&unprocessed=true&receiver=.*";

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get(v2!("silences"), list_silences)
        .query("filter=team%3D%22db%22")
        .post(v2!("silences"), post_silence)
        .body(SILENCE_EXAMPLE)
        .get(v2!("silence/{id}"), get_silence)
        .delete(v2!("silence/{id}"), delete_silence)
        .get(v2!("alerts"), list_alerts)
        .query(ALERTS_QUERY)
        .post(v2!("alerts"), post_alerts)
        .body(ALERTS_EXAMPLE)
        .get(v2!("alerts/groups"), alert_groups)
        .query(ALERTS_QUERY)
        .get(v2!("status"), status)
}

fn silence_json(s: &Silence) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state.as_str()},
        "updatedAt": format_time(s.updated_at),
        "matchers": s.matchers,
        "startsAt": format_time(s.starts_at),
        "endsAt": format_time(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

fn filters(params: &[(String, String)]) -> Result<Vec<Matcher>, ApiError> {
    Ok(parse_filter(
        params
            .iter()
            .filter(|(k, _)| k == "filter")
            .map(|(_, v)| v.as_str()),
    )?)
}

/// `GET silences[?filter=…]`.
async fn list_silences(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(params): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let filter = filters(&params)?;
    let mut silences: Vec<Silence> = state
        .notifications
        .silences(org(&current))
        .await?
        .into_iter()
        .filter(|s| silence_matches_filter(s, &filter))
        .collect();
    sort_silences(&mut silences);
    Ok(Json(Value::Array(
        silences.iter().map(silence_json).collect(),
    )))
}

#[derive(Deserialize)]
struct PostSilenceBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    matchers: Option<Vec<SilenceMatcher>>,
    #[serde(rename = "startsAt", default)]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<String>,
    #[serde(rename = "createdBy", default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::bad_request(format!("{field} in body is required")))
}

/// `POST silences`: creates a silence, or updates the one `id` names; 200
/// `{"silenceID"}`.
async fn post_silence(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<PostSilenceBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    let starts_at = required(body.starts_at, "startsAt")?;
    let ends_at = required(body.ends_at, "endsAt")?;
    let silence = PostableSilence {
        id: body.id.filter(|id| !id.is_empty()),
        matchers: required(body.matchers, "matchers")?,
        starts_at: parse_time("startsAt", &starts_at)?,
        ends_at: parse_time("endsAt", &ends_at)?,
        created_by: required(body.created_by, "createdBy")?,
        comment: required(body.comment, "comment")?,
    };
    let id = state
        .notifications
        .set_silence(org(&current), &silence)
        .await?;
    Ok(Json(json!({ "silenceID": id })))
}

/// `GET silence/:id`.
async fn get_silence(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    validate_silence_id(&id)?;
    match state.notifications.silence(org(&current), &id).await? {
        Some(s) => Ok(Json(silence_json(&s))),
        None => Err(tandem_alerting::Error::SilenceNotFound.into()),
    }
}

/// `DELETE silence/:id`: expires it.
async fn delete_silence(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Editor)?;
    validate_silence_id(&id)?;
    state
        .notifications
        .expire_silence(org(&current), &id)
        .await?;
    Ok(Json(json!({"message": "silence deleted"})))
}

/// The `filter`, `active`, `silenced`, `inhibited`, `unprocessed` and `receiver` parameters
/// of `GET alerts` and `GET alerts/groups`.
struct AlertQuery {
    filter: Vec<Matcher>,
    active: bool,
    silenced: bool,
    receiver: Option<Matcher>,
}

fn flag(value: &str, name: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" | "y" | "on" => Ok(true),
        "false" | "0" | "f" | "no" | "n" | "off" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name} in query must be of type boolean"
        ))),
    }
}

fn alert_query(params: &[(String, String)]) -> Result<AlertQuery, ApiError> {
    let mut out = AlertQuery {
        filter: filters(params)?,
        active: true,
        silenced: true,
        receiver: None,
    };
    for (key, value) in params {
        match key.as_str() {
            "active" => out.active = flag(value, key)?,
            "silenced" => out.silenced = flag(value, key)?,
            // Nothing is inhibited and every alert is processed.
            "inhibited" | "unprocessed" => {
                flag(value, key)?;
            }
            "receiver" => {
                tandem_storage::input::check_bounded_text(
                    "receiver",
                    value,
                    tandem_alerting::notify::silence::MAX_MATCHER_REGEX_LEN,
                )?;
                out.receiver =
                    Some(Matcher::new("receiver", value, true, true).map_err(|err| {
                        ApiError::bad_request(format!("failed to parse receiver param: {err}"))
                    })?);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn public(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(k, _)| !(k.starts_with("__") && k.ends_with("__")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Why a listed alert is suppressed: the silences and the timings that mute it.
#[derive(Default)]
struct Suppressed {
    silenced_by: Vec<String>,
    muted_by: Vec<String>,
}

/// What `GET alerts` and `GET alerts/groups` show: the org's instances, its compiled tree,
/// and the index and suppression of each firing alert that passes the query.
struct Shown {
    instances: Vec<AlertInstance>,
    tree: CompiledRoute,
    shown: Vec<(usize, Suppressed)>,
}

/// The org's firing alerts that pass `query`, with why each is suppressed.
async fn shown_alerts(
    state: &AppState,
    org: OrgId,
    query: &AlertQuery,
    instances: &[AlertInstance],
    tree: &CompiledRoute,
    now: i64,
) -> Result<Vec<(usize, Suppressed)>, ApiError> {
    let timings = timings_by_name(
        org,
        state
            .notifications
            .documents(org, DocumentKind::MuteTiming)
            .await?,
    );
    let silencer = Silencer::new(
        &state
            .notifications
            .active_silences()
            .await?
            .into_iter()
            .filter(|s| s.org_id == org)
            .collect::<Vec<_>>(),
    );
    let mut out = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        if !instance.state.is_firing() || !query.filter.iter().all(|m| m.matches(&instance.labels))
        {
            continue;
        }
        let silenced_by = silencer.silenced_by(org, &instance.labels);
        let mut routes = Vec::new();
        tree.matching(&instance.labels, &mut routes);
        let mut muted_by: Vec<String> = routes
            .iter()
            .flat_map(|r| muted_by(r, &timings, now))
            .collect();
        muted_by.sort();
        muted_by.dedup();
        let silenced = !silenced_by.is_empty();
        let suppressed = silenced || !muted_by.is_empty();
        if (silenced && !query.silenced) || (!suppressed && !query.active) {
            continue;
        }
        if let Some(re) = &query.receiver {
            let named = |r: &&CompiledRoute| {
                re.matches(&[("receiver".to_owned(), r.receiver.clone())].into())
            };
            if !routes.iter().any(named) {
                continue;
            }
        }
        out.push((
            i,
            Suppressed {
                silenced_by,
                muted_by,
            },
        ));
    }
    Ok(out)
}

fn alert_json(
    root_url: &str,
    instance: &AlertInstance,
    receivers: &[&str],
    why: &Suppressed,
) -> Value {
    let state = if why.silenced_by.is_empty() && why.muted_by.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    let ends_at = if instance.ends_at > instance.started_at {
        instance.ends_at
    } else {
        instance.last_eval_at.max(instance.started_at)
    };
    json!({
        "labels": public(&instance.labels),
        "annotations": public(&instance.annotations),
        "startsAt": format_time(instance.started_at),
        "endsAt": format_time(ends_at),
        "updatedAt": format_time(instance.written_at.max(instance.last_eval_at)),
        "fingerprint": instance.fingerprint,
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {
            "state": state,
            "silencedBy": why.silenced_by,
            "inhibitedBy": [],
            "mutedBy": why.muted_by,
        },
        "generatorURL": instance.generator_url.clone().unwrap_or_else(|| format!(
            "{}/alerting/grafana/{}/view?orgId={}",
            root_url.trim_end_matches('/'),
            instance.rule_uid,
            instance.org_id.0
        )),
    })
}

async fn alerts_of(
    state: &AppState,
    current: &CurrentUser,
    params: &[(String, String)],
) -> Result<Shown, ApiError> {
    current.require(Role::Viewer)?;
    let query = alert_query(params)?;
    let org = org(current);
    let mut instances = state.alerting.instances(org).await?;
    let (now, posted) = state.notifications.external_alerts(Some(org)).await?;
    instances.extend(posted.iter().map(|a| a.instance(now)));
    instances.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    let (tree, _) = state.notifications.policy(org).await?;
    let tree = CompiledRoute::compile(&tree)?;
    let shown = shown_alerts(state, org, &query, &instances, &tree, now).await?;
    Ok(Shown {
        instances,
        tree,
        shown,
    })
}

/// `POST alerts`: alerts from an outside generator (a Prometheus server's
/// `alerting.alertmanagers`, `amtool alert add`), stored in the shared database and routed,
/// grouped, silenced and notified once per cluster with the rules' alerts. Answers 200
/// with no body, as Alertmanager does. Editors post (Grafana's `alert.instances:create`).
/// One bad alert refuses the whole post, which then changes nothing.
async fn post_alerts(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<axum::http::StatusCode, ApiError> {
    current.require(Role::Editor)?;
    let alerts = parse_postable_alerts(&body)?;
    state
        .notifications
        .post_alerts(org(&current), &alerts)
        .await?;
    // This instance plans the new groups now, so their `group_wait` runs from the post.
    state.dispatch_wake.notify_one();
    Ok(axum::http::StatusCode::OK)
}

/// `GET alerts`.
async fn list_alerts(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(params): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let Shown {
        instances,
        tree,
        shown,
    } = alerts_of(&state, &current, &params).await?;
    let mut out = Vec::new();
    for (i, why) in &shown {
        let Some(instance) = instances.get(*i) else {
            continue;
        };
        let mut routes = Vec::new();
        tree.matching(&instance.labels, &mut routes);
        let mut receivers: Vec<&str> = routes.iter().map(|r| r.receiver.as_str()).collect();
        receivers.sort_unstable();
        receivers.dedup();
        out.push(alert_json(&state.root_url, instance, &receivers, why));
    }
    Ok(Json(Value::Array(out)))
}

/// `GET alerts/groups`: the alerts grouped as the policy tree groups them.
async fn alert_groups(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(params): QueryParams<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let Shown {
        instances,
        tree,
        shown,
    } = alerts_of(&state, &current, &params).await?;
    let mut groups: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    let mut group_labels: BTreeMap<(String, String, String), Labels> = BTreeMap::new();
    for (i, why) in &shown {
        let Some(instance) = instances.get(*i) else {
            continue;
        };
        let mut routes = Vec::new();
        tree.matching(&instance.labels, &mut routes);
        for route in routes {
            let labels = route.group_labels(&instance.labels);
            let key = (
                route.path.clone(),
                route.receiver.clone(),
                serde_json::to_string(&labels).unwrap_or_default(),
            );
            groups.entry(key.clone()).or_default().push(alert_json(
                &state.root_url,
                instance,
                &[route.receiver.as_str()],
                why,
            ));
            group_labels.entry(key).or_insert(labels);
        }
    }
    let out: Vec<Value> = groups
        .into_iter()
        .map(|(key, alerts)| {
            let labels = group_labels.remove(&key).unwrap_or_default();
            json!({"labels": public(&labels), "receiver": {"name": key.1}, "alerts": alerts})
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

/// `GET status`: enough of Alertmanager's status for its clients: the cluster as the
/// membership table shows it (Tandem does not gossip; the database is the cluster), the
/// org's configuration as JSON (which is YAML too), and this instance's start.
async fn status(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let org = org(&current);
    let (tree, _) = state.notifications.policy(org).await?;
    let mut receivers: Vec<String> = state
        .notifications
        .contact_points(org)
        .await?
        .into_iter()
        .map(|p| p.name)
        .collect();
    receivers.sort();
    receivers.dedup();
    let config = json!({
        "route": tree,
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
    });
    let peers = state.membership.live_peers(state.peer_timeout).await?;
    let started = peers
        .iter()
        .find(|p| *p.instance.id == *state.instance_id)
        .map(|p| p.instance.started_at)
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let started_ms = i64::try_from(started.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    Ok(Json(json!({
        "cluster": {
            "name": state.instance_id.to_string(),
            "status": "ready",
            "peers": peers
                .iter()
                .map(|p| json!({"name": p.instance.id, "address": p.instance.address}))
                .collect::<Vec<_>>(),
        },
        "versionInfo": {
            "branch": "",
            "buildDate": "",
            "buildUser": "",
            "goVersion": "",
            "revision": state.build.commit,
            "version": state.build.tandem_version,
        },
        "config": {"original": serde_json::to_string_pretty(&config).unwrap_or_default()},
        "uptime": format_time(started_ms),
    })))
}
