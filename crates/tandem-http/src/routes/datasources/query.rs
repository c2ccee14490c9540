//! `POST /api/ds/query` and the health checks: what every member of the org may do with a
//! data source.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tandem_datasources::{
    DataSourceId, DataSourceKey, DataSourceUid, HealthStatus, QueryRequest, QueryService,
};
use tandem_sessions::Role;

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::datasources::org;
use crate::{ApiError, AppState, CurrentUser};

/// The example query of the route table: testdata, and an expression over it.
const QUERY_EXAMPLE: &str = r#"{"from":"now-1h","to":"now","queries":[{"refId":"A","datasource":{"type":"grafana-testdata-datasource","uid":"td"},"scenarioId":"predictable_pulse","pulseWave":{"timeStep":60,"onCount":3,"offCount":2,"onValue":10,"offValue":1},"intervalMs":15000,"maxDataPoints":100},{"refId":"B","datasource":{"type":"__expr__","uid":"__expr__"},"type":"reduce","expression":"A","reducer":"last","settings":{"mode":"dropNN"}}]}"#;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/ds/query", query)
        .body(QUERY_EXAMPLE)
        .get("/api/datasources/uid/{uid}/health", health_by_uid)
        .get("/api/datasources/{id}/health", health_by_id)
}

/// `POST /api/ds/query`: `{"results":{"<refId>":{"status":200,"frames":[…]}}}`. As in
/// Grafana, a request with a failed query answers 400 with every result (the failed ones
/// carry their `error` and `status`); Tandem adds the first error as `message`, which
/// Grafana's body lacks, so that every error body of the API has one.
async fn query(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(request): JsonBody<QueryRequest>,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let response = state.datasources.query(org(&current), request).await?;
    if !response.has_errors() {
        // Written into one buffer sized for a typical answer, not grown from 128 bytes.
        let mut body = Vec::with_capacity(64 * 1024);
        serde_json::to_writer(&mut body, &response)
            .map_err(|err| ApiError::bad_request(format!("cannot encode the answer: {err}")))?;
        return Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response());
    }
    let mut body = serde_json::to_value(&response).unwrap_or(Value::Null);
    let first = response
        .results
        .iter()
        .find_map(|(ref_id, result)| Some(format!("{ref_id}: {}", result.error.as_ref()?.message)));
    if let (Some(fields), Some(first)) = (body.as_object_mut(), first) {
        fields.insert("message".to_owned(), Value::String(first));
    }
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

async fn health_by_uid(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(uid): PathParams<String>,
) -> Result<Response, ApiError> {
    health(
        &state,
        &current,
        DataSourceKey::Uid(DataSourceUid::from(uid)),
    )
    .await
}

async fn health_by_id(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(id): PathParams<i64>,
) -> Result<Response, ApiError> {
    health(&state, &current, DataSourceKey::Id(DataSourceId(id))).await
}

/// `GET /api/datasources/uid/:uid/health`: `{status: "OK", message}` after a real round
/// trip to the backend, or 400 `{status: "ERROR", message}` as Grafana answers.
async fn health(
    state: &AppState,
    current: &CurrentUser,
    key: DataSourceKey,
) -> Result<Response, ApiError> {
    current.require(Role::Viewer)?;
    let check = state.datasources.health(org(current), &key).await?;
    let code = match check.status {
        HealthStatus::Ok => StatusCode::OK,
        HealthStatus::Error => StatusCode::BAD_REQUEST,
    };
    Ok((code, Json(json!(check))).into_response())
}
