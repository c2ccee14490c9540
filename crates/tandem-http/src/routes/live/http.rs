//! `POST /api/live/publish`, `POST /api/live/push/:streamId` and `GET /api/live/list`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tandem_live::influx::InfluxLimits;

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::live::{client_info, live_error};
use crate::{ApiError, AppState, CurrentUser};

pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/live/publish", publish)
        .body(r#"{"channel":"grafana/broadcast/example","data":{"message":"hello"}}"#)
        .post("/api/live/push/{stream_id}", push)
        .body("cpu,host=a usage=0.5,idle=99i 1700000000000000000\nmem,host=a used=42i")
        .get("/api/live/list", list)
}

/// The body of `POST /api/live/publish`: a channel without the org, and any JSON.
#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    data: Box<RawValue>,
}

/// `POST /api/live/publish {channel, data}` → `{}`, with the permissions of a WebSocket
/// publication.
async fn publish(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    let client = client_info(&current)?;
    state
        .live
        .publish_as(&client, &body.channel, &body.data)
        .await
        .map_err(live_error)?;
    Ok(Json(json!({})))
}

/// `POST /api/live/push/:streamId`: InfluxDB line protocol (as Telegraf's `http` output
/// sends it) from an org Admin; each measurement becomes a frame on
/// `stream/<streamId>/<measurement>`.
async fn push(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(stream_id): PathParams<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let client = client_info(&current)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body is not UTF-8 line protocol"))?;
    tandem_storage::input::check_text("the body", text)?;
    state
        .live
        .push_influx(&client, &stream_id, text, &InfluxLimits::default())
        .await
        .map_err(live_error)?;
    Ok(Json(json!({})))
}

/// `GET /api/live/list`: the org's active channels across the cluster, Grafana's
/// `{"channels":[{channel, data}]}`.
async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let client = client_info(&current)?;
    let channels = state.live.list(client.org_id).await.map_err(live_error)?;
    Ok(Json(json!({"channels": channels})))
}
