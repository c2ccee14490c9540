//! `/api/v1/provisioning/contact-points`, `/policies`, `/mute-timings`, `/templates` and
//! `POST /api/alertmanager/grafana/config/api/v1/receivers/test`: Grafana 12.1's
//! notification provisioning API over the shared database.
//!
//! Viewers read, Editors write. Secrets are answered as `[REDACTED]`; a write that sends
//! `[REDACTED]` back keeps the stored secret.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tandem_alerting::notify::contact::ContactPoint;
use tandem_alerting::notify::policy::Route;
use tandem_alerting::notify::provision;
use tandem_alerting::notify::store::{DocumentKind, NamedDocument};
use tandem_alerting::{Error as AlertingError, OrgId, Provenance, generate_uid, validate_uid};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::alerting::{org, provenance};
use crate::{ApiError, AppState, CurrentUser};

const CONTACT_POINT_EXAMPLE: &str = r#"{"uid":"","name":"hook","type":"webhook","settings":{"url":"http://127.0.0.1:9/hook","httpMethod":"POST","username":"u","password":"p","maxAlerts":"0"},"disableResolveMessage":false}"#;
const POLICY_EXAMPLE: &str = r#"{"receiver":"grafana-default-email","group_by":["grafana_folder","alertname"],"routes":[{"receiver":"grafana-default-email","object_matchers":[["team","=","db"]],"continue":false,"group_wait":"30s","group_interval":"5m","repeat_interval":"4h"}]}"#;
const MUTE_TIMING_EXAMPLE: &str =
    r#"{"name":"weekends","time_intervals":[{"weekdays":["saturday","sunday"]}]}"#;
const TEMPLATE_EXAMPLE: &str = r#"{"template":"{{ define \"my.title\" }}{{ .Status }}{{ end }}"}"#;
const TEST_EXAMPLE: &str = r#"{"receivers":[{"name":"hook","grafana_managed_receiver_configs":[{"uid":"","name":"hook","type":"webhook","settings":{"url":"http://127.0.0.1:9/hook"}}]}],"alert":{"labels":{"a":"b"},"annotations":{}}}"#;

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/provisioning/contact-points", list_points)
        .query("name=hook")
        .post("/api/v1/provisioning/contact-points", create_point)
        .body(CONTACT_POINT_EXAMPLE)
        .put("/api/v1/provisioning/contact-points/{uid}", update_point)
        .body(CONTACT_POINT_EXAMPLE)
        .delete("/api/v1/provisioning/contact-points/{uid}", delete_point)
        .get("/api/v1/provisioning/policies", get_policy)
        .put("/api/v1/provisioning/policies", put_policy)
        .body(POLICY_EXAMPLE)
        .delete("/api/v1/provisioning/policies", reset_policy)
        .get("/api/v1/provisioning/mute-timings", list_timings)
        .post("/api/v1/provisioning/mute-timings", create_timing)
        .body(MUTE_TIMING_EXAMPLE)
        .get("/api/v1/provisioning/mute-timings/{name}", get_timing)
        .put("/api/v1/provisioning/mute-timings/{name}", put_timing)
        .body(MUTE_TIMING_EXAMPLE)
        .delete("/api/v1/provisioning/mute-timings/{name}", delete_timing)
        .get("/api/v1/provisioning/templates", list_templates)
        .get("/api/v1/provisioning/templates/{name}", get_template)
        .put("/api/v1/provisioning/templates/{name}", put_template)
        .body(TEMPLATE_EXAMPLE)
        .delete("/api/v1/provisioning/templates/{name}", delete_template)
        .post(
            "/api/alertmanager/grafana/config/api/v1/receivers/test",
            test_receivers,
        )
        .body(TEST_EXAMPLE)
}

fn point_json(point: &ContactPoint) -> Value {
    let mut out = json!({
        "uid": point.uid,
        "name": point.name,
        "type": point.kind,
        "settings": point.redacted_settings(),
        "disableResolveMessage": point.disable_resolve_message,
    });
    if let Some(map) = out.as_object_mut() {
        map.insert("provenance".to_owned(), json!(point.provenance.as_str()));
    }
    out
}

#[derive(Deserialize)]
struct PointBody {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
    #[serde(rename = "disableResolveMessage", default)]
    disable_resolve_message: bool,
}

#[derive(Deserialize)]
struct NameQuery {
    #[serde(default)]
    name: Option<String>,
}

/// The provenance rule of Grafana for a change: a file-provisioned item is changed only by
/// its file, with or without `X-Disable-Provenance` (the next provisioning run would
/// otherwise put the file's content back); an API one also by a request that disables
/// provenance.
fn guard(stored: Provenance, requested: Provenance) -> Result<(), ApiError> {
    if stored.allows(requested) {
        return Ok(());
    }
    Err(AlertingError::ProvenanceChange {
        stored: stored.as_str(),
        provided: requested.as_str(),
    }
    .into())
}

async fn ready(state: &AppState, org: OrgId) -> Result<(), ApiError> {
    state.notifications.ensure_defaults(org).await?;
    Ok(())
}

/// `GET /api/v1/provisioning/contact-points[?name=]`.
async fn list_points(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<NameQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let org = org(&current);
    let points = state.notifications.contact_points(org).await?;
    Ok(Json(Value::Array(
        points
            .iter()
            .filter(|p| query.name.as_deref().is_none_or(|n| p.name == n))
            .map(point_json)
            .collect(),
    )))
}

/// `POST /api/v1/provisioning/contact-points`: 202 with the contact point.
async fn create_point(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PointBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    let uid = if body.uid.is_empty() {
        generate_uid()
    } else {
        validate_uid(&body.uid)
            .map_err(|_| ApiError::bad_request("invalid object specification: uid is invalid"))?;
        body.uid.clone()
    };
    let point = ContactPoint::from_request(
        uid,
        body.name,
        body.kind,
        body.settings.unwrap_or_default(),
        body.disable_resolve_message,
        provenance(&headers),
        None,
    )?;
    // Defaults are written only once the request is known to be good: a refused write
    // writes nothing.
    ready(&state, org).await?;
    state
        .notifications
        .create_contact_point(org, &point)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(point_json(&point))).into_response())
}

/// `PUT /api/v1/provisioning/contact-points/:uid`: 202.
async fn update_point(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<PointBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    let Some(stored) = state.notifications.contact_point(org, &uid).await? else {
        // (The default contact point of an org not configured yet is stored by any
        // successful write first.)
        return Err(
            AlertingError::NotificationNotFound("contact point not found".to_owned()).into(),
        );
    };
    let requested = provenance(&headers);
    guard(stored.provenance, requested)?;
    let point = ContactPoint::from_request(
        uid,
        body.name,
        body.kind,
        body.settings.unwrap_or_default(),
        body.disable_resolve_message,
        requested,
        Some(&stored),
    )?;
    state
        .notifications
        .update_contact_point(org, &point, Some(&stored.name))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "contactpoint updated"})),
    )
        .into_response())
}

/// `DELETE /api/v1/provisioning/contact-points/:uid`: 202; 409 while the policy tree still
/// routes to its receiver and no other integration of that name is left.
async fn delete_point(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(uid): PathParams<String>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    let points = state.notifications.contact_points(org).await?;
    if let Some(point) = points.iter().find(|p| p.uid == uid) {
        guard(point.provenance, provenance(&headers))?;
        provision::check_point_unused(&*state.notifications, org, point, &points).await?;
        state.notifications.delete_contact_point(org, &uid).await?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "contactpoint deleted"})),
    )
        .into_response())
}

/// `GET /api/v1/provisioning/policies`.
async fn get_policy(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let org = org(&current);
    let (mut tree, provenance) = state.notifications.policy(org).await?;
    if provenance != Provenance::None {
        tree.provenance = Some(provenance.as_str().to_owned());
    }
    Ok(Json(serde_json::to_value(&tree).unwrap_or(Value::Null)))
}

/// `PUT /api/v1/provisioning/policies`: 202; every receiver and mute timing must exist.
async fn put_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    JsonBody(mut tree): JsonBody<Route>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    tree.validate()?;
    guard(
        state.notifications.policy(org).await?.1,
        provenance(&headers),
    )?;
    provision::check_references(&*state.notifications, org, &tree).await?;
    ready(&state, org).await?;
    state
        .notifications
        .set_policy(org, &tree, provenance(&headers))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "policies updated"})),
    )
        .into_response())
}

/// `DELETE /api/v1/provisioning/policies`: resets the default tree; 202.
async fn reset_policy(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    guard(
        state.notifications.policy(org(&current)).await?.1,
        provenance(&headers),
    )?;
    provision::reset_policy(&*state.notifications, org(&current)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "policies resetted"})),
    )
        .into_response())
}

#[derive(Deserialize)]
struct TimingBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_intervals: Vec<Map<String, Value>>,
}

fn timing_json(doc: &NamedDocument) -> Value {
    json!({
        "name": doc.name,
        "time_intervals": doc.body.get("time_intervals").cloned().unwrap_or(json!([])),
        "version": doc.version.to_string(),
        "provenance": doc.provenance.as_str(),
    })
}

fn checked_name(name: &str, what: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "invalid object specification: {what} name must not be empty"
        )));
    }
    tandem_storage::input::check_bounded_text("name", name, 190)?;
    Ok(name.to_owned())
}

async fn list_timings(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let docs = state
        .notifications
        .documents(org(&current), DocumentKind::MuteTiming)
        .await?;
    Ok(Json(Value::Array(docs.iter().map(timing_json).collect())))
}

async fn get_timing(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    match state
        .notifications
        .document(org(&current), DocumentKind::MuteTiming, &name)
        .await?
    {
        Some(doc) => Ok(Json(timing_json(&doc))),
        None => Err(AlertingError::NotificationNotFound("mute timing not found".to_owned()).into()),
    }
}

/// [`guard`] of a stored mute timing or template, when there is one.
async fn stored_guard(
    state: &AppState,
    current: &CurrentUser,
    headers: &HeaderMap,
    kind: DocumentKind,
    name: &str,
) -> Result<(), ApiError> {
    match state
        .notifications
        .document(org(current), kind, name)
        .await?
    {
        Some(doc) => guard(doc.provenance, provenance(headers)),
        None => Ok(()),
    }
}

async fn write_timing(
    state: &AppState,
    current: &CurrentUser,
    headers: &HeaderMap,
    body: TimingBody,
    create: bool,
) -> Result<NamedDocument, ApiError> {
    current.require(Role::Editor)?;
    let name = checked_name(&body.name, "mute timing")?;
    tandem_storage::input::check_count("time_intervals", body.time_intervals.len(), 1_000)?;
    let intervals = json!(body.time_intervals);
    tandem_alerting::notify::timing::MuteTiming::parse(&intervals)?;
    if !create {
        stored_guard(state, current, headers, DocumentKind::MuteTiming, &name).await?;
    }
    let doc = NamedDocument {
        name,
        body: json!({"time_intervals": intervals}),
        provenance: provenance(headers),
        version: 0,
    };
    Ok(state
        .notifications
        .put_document(org(current), DocumentKind::MuteTiming, &doc, create)
        .await?)
}

/// `POST /api/v1/provisioning/mute-timings`: 201.
async fn create_timing(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TimingBody>,
) -> Result<Response, ApiError> {
    let doc = write_timing(&state, &current, &headers, body, true).await?;
    Ok((StatusCode::CREATED, Json(timing_json(&doc))).into_response())
}

/// `PUT /api/v1/provisioning/mute-timings/:name`: 202; 404 when it does not exist.
async fn put_timing(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(name): PathParams<String>,
    JsonBody(mut body): JsonBody<TimingBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    if state
        .notifications
        .document(org(&current), DocumentKind::MuteTiming, &name)
        .await?
        .is_none()
    {
        return Err(AlertingError::NotificationNotFound("mute timing not found".to_owned()).into());
    }
    body.name = name;
    let doc = write_timing(&state, &current, &headers, body, false).await?;
    Ok((StatusCode::ACCEPTED, Json(timing_json(&doc))).into_response())
}

/// `DELETE /api/v1/provisioning/mute-timings/:name`: 204; 409 while a policy uses it.
async fn delete_timing(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    stored_guard(&state, &current, &headers, DocumentKind::MuteTiming, &name).await?;
    let org = org(&current);
    provision::check_timing_unused(&*state.notifications, org, &name).await?;
    state
        .notifications
        .delete_document(org, DocumentKind::MuteTiming, &name)
        .await?;
    Ok((StatusCode::NO_CONTENT, Json(json!({}))).into_response())
}

#[derive(Deserialize)]
struct TemplateBody {
    #[serde(default)]
    template: String,
}

fn template_json(doc: &NamedDocument) -> Value {
    json!({
        "name": doc.name,
        "template": doc.body.get("template").cloned().unwrap_or(json!("")),
        "version": doc.version.to_string(),
        "provenance": doc.provenance.as_str(),
    })
}

async fn list_templates(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let docs = state
        .notifications
        .documents(org(&current), DocumentKind::Template)
        .await?;
    Ok(Json(Value::Array(docs.iter().map(template_json).collect())))
}

async fn get_template(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    match state
        .notifications
        .document(org(&current), DocumentKind::Template, &name)
        .await?
    {
        Some(doc) => Ok(Json(template_json(&doc))),
        None => Err(AlertingError::NotificationNotFound("template not found".to_owned()).into()),
    }
}

/// `PUT /api/v1/provisioning/templates/:name`: 202 with the template.
async fn put_template(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<TemplateBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let name = checked_name(&name, "template")?;
    tandem_storage::input::check_bounded_text("template", &body.template, 1 << 20)?;
    stored_guard(&state, &current, &headers, DocumentKind::Template, &name).await?;
    let doc = NamedDocument {
        name,
        body: json!({"template": body.template}),
        provenance: provenance(&headers),
        version: 0,
    };
    let doc = state
        .notifications
        .put_document(org(&current), DocumentKind::Template, &doc, false)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(template_json(&doc))).into_response())
}

/// `DELETE /api/v1/provisioning/templates/:name`: 204.
async fn delete_template(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(name): PathParams<String>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    stored_guard(&state, &current, &headers, DocumentKind::Template, &name).await?;
    state
        .notifications
        .delete_document(org(&current), DocumentKind::Template, &name)
        .await?;
    Ok((StatusCode::NO_CONTENT, Json(json!({}))).into_response())
}

#[derive(Deserialize)]
struct TestBody {
    #[serde(default)]
    receivers: Vec<TestReceiver>,
    #[serde(default)]
    alert: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct TestReceiver {
    #[serde(default)]
    name: String,
    #[serde(default)]
    grafana_managed_receiver_configs: Vec<TestIntegration>,
}

#[derive(Deserialize)]
struct TestIntegration {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    settings: Map<String, Value>,
    #[serde(rename = "secureSettings", default)]
    secure_settings: Map<String, Value>,
}

/// `POST …/receivers/test`: sends a test notification to each integration now; 200 when
/// every one succeeded, 207 otherwise, as Grafana answers.
async fn test_receivers(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<TestBody>,
) -> Result<Response, ApiError> {
    current.require(Role::Editor)?;
    let org = org(&current);
    tandem_storage::input::check_count("receivers", body.receivers.len(), 10)?;
    let alert = body.alert.unwrap_or_default();
    let labels = alert
        .get("labels")
        .cloned()
        .unwrap_or(json!({"alertname": "TestAlert", "instance": "Grafana"}));
    let annotations = alert
        .get("annotations")
        .cloned()
        .unwrap_or(json!({"summary": "Notification test"}));
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut all_ok = true;
    let mut out = Vec::new();
    for receiver in body.receivers {
        tandem_storage::input::check_count(
            "grafana_managed_receiver_configs",
            receiver.grafana_managed_receiver_configs.len(),
            10,
        )?;
        let mut configs = Vec::new();
        for integration in receiver.grafana_managed_receiver_configs {
            let stored = if integration.uid.is_empty() {
                None
            } else {
                state
                    .notifications
                    .contact_point(org, &integration.uid)
                    .await?
            };
            let mut settings = integration.settings;
            settings.extend(integration.secure_settings);
            let point = ContactPoint::from_request(
                if integration.uid.is_empty() {
                    "test".to_owned()
                } else {
                    integration.uid.clone()
                },
                if integration.name.is_empty() {
                    receiver.name.clone()
                } else {
                    integration.name.clone()
                },
                integration.kind,
                settings,
                false,
                Provenance::None,
                stored.as_ref(),
            )?;
            let payload = json!({
                "receiver": receiver.name, "status": "firing", "orgId": org.0,
                "alerts": [{"status": "firing", "labels": labels, "annotations": annotations,
                            "startsAt": now, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                            "fingerprint": "", "silenceURL": "", "dashboardURL": "", "panelURL": "",
                            "values": null, "valueString": ""}],
                "groupLabels": {}, "commonLabels": labels, "commonAnnotations": annotations,
                "externalURL": state.root_url.as_ref(), "version": "1",
                "groupKey": "{alertname=\"TestAlert\", instance=\"Grafana\"}", "truncatedAlerts": 0,
                "title": "[FIRING:1]  (TestAlert Grafana)", "state": "alerting",
                "message": "**Firing**\n\nNotification test\n",
            });
            let result = tandem_alerting::notify::send_test(
                &point,
                &payload,
                &state.smtp,
                std::time::Duration::from_secs(15),
            )
            .await;
            let entry = match result {
                Ok(()) => json!({"name": point.name, "uid": integration.uid, "status": "ok"}),
                Err(error) => {
                    all_ok = false;
                    json!({"name": point.name, "uid": integration.uid, "status": "failed", "error": error})
                }
            };
            configs.push(entry);
        }
        out.push(json!({"name": receiver.name, "grafana_managed_receiver_configs": configs}));
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((
        status,
        Json(json!({"alert": {"labels": labels, "annotations": annotations}, "receivers": out, "notified_at": now})),
    )
        .into_response())
}
