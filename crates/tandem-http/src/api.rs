use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{ApiError, AppState, BuildInfo};

/// How long `/api/health` waits for the database before calling it failing.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Serialize)]
struct Health<'a> {
    commit: &'a str,
    database: &'a str,
    live: &'a str,
    version: &'a str,
}

/// `GET /api/health`: 200 with `"database":"ok"`, or 503 with `"database":"failing"` when
/// the database does not answer in time; `"live"` is `"degraded"` (still 200: every
/// instance keeps serving its own Live subscribers) while the Live HA engine is lost.
/// Needs no authentication.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let ok = matches!(
        tokio::time::timeout(HEALTH_TIMEOUT, state.db.ping()).await,
        Ok(Ok(()))
    );
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        commit: state.build.commit,
        database: if ok { "ok" } else { "failing" },
        live: state.live.health().as_str(),
        version: state.build.version,
    };
    // Load balancers poll this; a cached answer would hide an outage.
    (code, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FrontendSettings<'a> {
    build_info: FrontendBuildInfo<'a>,
    app_url: &'a str,
    app_sub_url: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FrontendBuildInfo<'a> {
    version: &'a str,
    commit: &'a str,
    edition: &'a str,
    env: &'a str,
    hide_version: bool,
    latest_version: &'a str,
    has_update: bool,
    tandem_version: &'a str,
}

/// `GET /api/frontend/settings`: the part of Grafana's frontend settings that clients read,
/// above all `buildInfo.version` (grafana-client picks its API flavour from it).
pub(crate) async fn frontend_settings(State(state): State<AppState>) -> Response {
    let BuildInfo {
        version,
        commit,
        edition,
        env,
        tandem_version,
    } = state.build;
    Json(FrontendSettings {
        build_info: FrontendBuildInfo {
            version,
            commit,
            edition,
            env,
            hide_version: false,
            latest_version: "",
            has_update: false,
            tandem_version,
        },
        app_url: &state.root_url,
        app_sub_url: state.sub_path(),
    })
    .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterView {
    instance_id: String,
    peers: Vec<PeerView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerView {
    instance_id: String,
    address: String,
    version: String,
    started_at: String,
    last_heartbeat: String,
}

/// `GET /api/cluster` (Tandem's own): this instance's id and every live peer, this instance
/// included, as the membership table shows them.
pub(crate) async fn cluster(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let peers = state.membership.live_peers(state.peer_timeout).await?;
    let peers = peers
        .into_iter()
        .map(|peer| PeerView {
            instance_id: peer.instance.id,
            address: peer.instance.address,
            version: peer.instance.version,
            started_at: rfc3339(peer.instance.started_at),
            last_heartbeat: rfc3339(peer.last_heartbeat),
        })
        .collect();
    Ok(Json(ClusterView {
        instance_id: state.instance_id.to_string(),
        peers,
    }))
}

/// `GET /metrics`: Prometheus' text exposition format.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /api/auth/keys`: Grafana's legacy API keys are gone (service accounts replace them);
/// tools such as grafana-backup still call this at start-up and expect an empty list.
pub(crate) async fn legacy_api_keys() -> Json<Vec<()>> {
    Json(Vec::new())
}

/// `GET /api/annotations`, `/api/dashboard/snapshots`, `/api/plugins`,
/// `/api/alert-notifications`: Tandem has no annotations, snapshots, plugins or legacy
/// alert channels yet, so each list is truly empty. Backup and inventory tools
/// (grafana-backup, grafana-wtf) walk these at start and need a 200 list, not a 404.
pub(crate) async fn empty_list() -> Json<Vec<()>> {
    Json(Vec::new())
}

/// Every route nothing else matched: 404 with a JSON body, for `/api/*` and the rest alike.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
