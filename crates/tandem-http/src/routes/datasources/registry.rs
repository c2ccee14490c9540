//! `/api/datasources…`: create, read, update and delete the org's data sources.
//!
//! An update is a compare-and-swap on the data source's `version` (a stale one is 409), so
//! two instances editing one data source never overwrite each other silently. Secrets
//! (`secureJsonData`) are accepted on create and update and never answered;
//! `secureJsonFields` says which are set.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_datasources::{
    DataSource, DataSourceId, DataSourceKey, DataSourceSpec, DataSourceUid, NewDataSource,
    UpdateDataSource, Version,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::datasources::{org, read_only_delete};
use crate::{ApiError, AppState, CurrentUser};

/// The example body of a create or an update in the route table.
const SPEC_EXAMPLE: &str = r#"{"name":"Prometheus","type":"prometheus","access":"proxy","url":"http://127.0.0.1:9090","basicAuth":true,"basicAuthUser":"u","isDefault":false,"jsonData":{"httpMethod":"POST","timeInterval":"15s"},"secureJsonData":{"basicAuthPassword":"p"},"version":1}"#;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/datasources", list)
        .post("/api/datasources", create)
        .body(SPEC_EXAMPLE)
        .get("/api/datasources/{id}", get_by_id)
        .put("/api/datasources/{id}", update_by_id)
        .body(SPEC_EXAMPLE)
        .delete("/api/datasources/{id}", delete_by_id)
        .get("/api/datasources/uid/{uid}", get_by_uid)
        .put("/api/datasources/uid/{uid}", update_by_uid)
        .body(SPEC_EXAMPLE)
        .delete("/api/datasources/uid/{uid}", delete_by_uid)
        .get("/api/datasources/name/{name}", get_by_name)
        .delete("/api/datasources/name/{name}", delete_by_name)
        .get("/api/datasources/id/{name}", id_by_name)
}

/// `GET /api/datasources`: the org's data sources by name, in Grafana's list shape (no
/// version, no secret fields).
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let all = state.datasources.store().list(org(&current)).await?;
    Ok(Json(Value::Array(all.iter().map(list_item).collect())))
}

/// `POST /api/datasources`: `{datasource, id, message: "Datasource added", name}`.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let spec = spec(&body)?;
    let uid = match body.get("uid").and_then(Value::as_str).map(str::trim) {
        Some(uid) if !uid.is_empty() => Some(DataSourceUid::parse(uid)?),
        _ => None,
    };
    let created = state
        .datasources
        .store()
        .create(NewDataSource {
            org_id: org(&current),
            uid,
            spec,
        })
        .await?;
    Ok(Json(saved(&created, "Datasource added")))
}

async fn get_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    get(&state, &current, DataSourceKey::Id(DataSourceId(id))).await
}

async fn get_by_uid(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    get(
        &state,
        &current,
        DataSourceKey::Uid(DataSourceUid::from(uid)),
    )
    .await
}

async fn get_by_name(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    get(&state, &current, DataSourceKey::Name(name)).await
}

/// `GET /api/datasources/:id`, `/uid/:uid`, `/name/:name`: one data source.
async fn get(
    state: &AppState,
    current: &CurrentUser,
    key: DataSourceKey,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let found = state
        .datasources
        .store()
        .get(org(current), &key)
        .await?
        .ok_or(tandem_datasources::Error::NotFound)?;
    Ok(Json(detail(&found)))
}

/// `GET /api/datasources/id/:name`: `{id}`, for every member of the org.
async fn id_by_name(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let found = state
        .datasources
        .store()
        .get(org(&current), &DataSourceKey::Name(name))
        .await?
        .ok_or(tandem_datasources::Error::NotFound)?;
    Ok(Json(json!({"id": found.id.0})))
}

async fn update_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    update(&state, &current, DataSourceKey::Id(DataSourceId(id)), &body).await
}

async fn update_by_uid(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    update(
        &state,
        &current,
        DataSourceKey::Uid(DataSourceUid::from(uid)),
        &body,
    )
    .await
}

/// The `version` of an update body: the version the caller read.
#[derive(Deserialize, Default)]
struct VersionField {
    #[serde(default)]
    version: Option<i64>,
}

/// `PUT /api/datasources/:id` and `/uid/:uid`: `{datasource, id, message: "Datasource
/// updated", name}`; 409 when someone else saved it since `version`.
async fn update(
    state: &AppState,
    current: &CurrentUser,
    key: DataSourceKey,
    body: &Value,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let spec = spec(body)?;
    let VersionField { version } = serde_json::from_value(body.clone())
        .map_err(|err| ApiError::bad_request(format!("bad request data: {err}")))?;
    let updated = state
        .datasources
        .store()
        .update(
            org(current),
            &key,
            UpdateDataSource {
                version: version.filter(|v| *v > 0).map(Version),
                spec,
            },
        )
        .await
        .map_err(|err| match err {
            tandem_datasources::Error::NameTaken | tandem_datasources::Error::UidTaken => {
                ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    format!("Failed to update datasource: {err}"),
                )
            }
            other => other.into(),
        })?;
    Ok(Json(saved(&updated, "Datasource updated")))
}

async fn delete_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    delete(&state, &current, DataSourceKey::Id(DataSourceId(id))).await
}

async fn delete_by_uid(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    delete(
        &state,
        &current,
        DataSourceKey::Uid(DataSourceUid::from(uid)),
    )
    .await
}

async fn delete_by_name(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(name): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    delete(&state, &current, DataSourceKey::Name(name)).await
}

/// `DELETE /api/datasources/:id`, `/uid/:uid`, `/name/:name`:
/// `{"message":"Data source deleted","id"}`.
async fn delete(
    state: &AppState,
    current: &CurrentUser,
    key: DataSourceKey,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let deleted = state
        .datasources
        .store()
        .delete(org(current), &key)
        .await
        .map_err(read_only_delete)?;
    Ok(Json(
        json!({"message": "Data source deleted", "id": deleted.id.0}),
    ))
}

/// The settings of a create or update body; a body that is not an object, or a field of
/// the wrong type, is a 400.
fn spec(body: &Value) -> Result<DataSourceSpec, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "bad request data: the body must be a JSON object",
        ));
    }
    serde_json::from_value(body.clone())
        .map_err(|err| ApiError::bad_request(format!("bad request data: {err}")))
}

/// The answer to a create or an update.
fn saved(ds: &DataSource, message: &str) -> Value {
    json!({
        "datasource": detail(ds),
        "id": ds.id.0,
        "message": message,
        "name": ds.name,
    })
}

/// One data source as `GET /api/datasources/uid/:uid` answers it.
fn detail(ds: &DataSource) -> Value {
    let mut value = serde_json::to_value(ds).unwrap_or(Value::Null);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("typeLogoUrl".to_owned(), Value::String(logo(ds)));
    }
    value
}

/// One item of `GET /api/datasources`.
fn list_item(ds: &DataSource) -> Value {
    json!({
        "id": ds.id.0,
        "uid": ds.uid.as_str(),
        "orgId": ds.org_id.0,
        "name": ds.name,
        "type": ds.kind,
        "typeName": ds.type_name,
        "typeLogoUrl": logo(ds),
        "access": ds.access,
        "url": ds.url,
        "user": ds.user,
        "database": ds.database,
        "basicAuth": ds.basic_auth,
        "isDefault": ds.is_default,
        "jsonData": ds.json_data,
        "readOnly": ds.read_only,
    })
}

/// Grafana's logo path of the type's plugin.
fn logo(ds: &DataSource) -> String {
    match ds.kind.as_str() {
        "prometheus" => "public/plugins/prometheus/img/prometheus_logo.svg".to_owned(),
        _ => "public/plugins/grafana-testdata-datasource/img/testdata.svg".to_owned(),
    }
}
