//! `GET /api/live/ws` and `GET /api/live/push/:streamId`: WebSocket upgrades.
//!
//! The upgrade is authenticated like any `/api` request (cookie, bearer key, basic) and its
//! `Origin` must be `root_url`'s, the request's own host, or one of `[live]
//! allowed_origins` (`*` allows any); a request without `Origin` (not a browser) passes.
//! No sub-protocol is echoed: JSON clients that send an empty `Sec-WebSocket-Protocol`
//! would otherwise fail.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{CloseFrame as WsCloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tandem_live::influx::InfluxLimits;
use tandem_live::{ClientInfo, CloseFrame, Hub, Outgoing};

use crate::extract::PathParams;
use crate::routing::Routes;
use crate::shared::live::{check_origin, client_info};
use crate::{ApiError, AppState, CurrentUser};

/// The read buffer of one Live connection, in bytes.
const READ_BUFFER: usize = 4 * 1024;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/live/ws", websocket)
        .get("/api/live/push/{stream_id}", push_socket)
}

/// Upgrades to a Live connection.
async fn websocket(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_origin(&state, &headers)?;
    let client = client_info(&current)?;
    let upgrade = upgrade.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let hub = state.live.clone();
    let limit = hub.settings().message_limit();
    Ok(upgrade
        // tungstenite reserves 128 KiB per connection for reading by default: most of an
        // idle connection's memory. Commands are small; a larger message grows the buffer
        // while it is read. Each message is written at once (the writer flushes anyway).
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(hub, client, socket)))
}

/// One connection: the hub's outbox is written to the socket, and every message read is
/// handed to the hub, until either side closes.
async fn serve(hub: Arc<Hub>, client: ClientInfo, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (mut connection, mut outbox) = match hub.connect(client) {
        Ok(pair) => pair,
        Err(err) => {
            let frame = match err {
                tandem_live::Error::ConnectionLimit => CloseFrame::CONNECTION_LIMIT,
                _ => CloseFrame::SHUTDOWN,
            };
            let _ = sink.send(close(frame)).await;
            return;
        }
    };
    loop {
        tokio::select! {
            outgoing = outbox.recv() => match outgoing {
                Some(Outgoing::Text(text)) => {
                    if sink.send(Message::Text(text.as_ref().into())).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(frame)) => {
                    let _ = sink.send(close(frame)).await;
                    break;
                }
                None => break,
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => connection.handle_frame(text.as_str()).await,
                Some(Ok(Message::Binary(bytes))) => connection.handle_bytes(&bytes).await,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => {
                    // A message over the limit: closed as Centrifuge's read limit does.
                    if is_capacity(&err) {
                        let _ = sink.send(close(CloseFrame::MESSAGE_TOO_BIG)).await;
                    }
                    break;
                }
            },
        }
    }
}

/// Upgrades to a line-protocol push stream (Telegraf's `websocket` output): every text
/// message is InfluxDB line protocol published to `stream/<streamId>/<measurement>`.
async fn push_socket(
    State(state): State<AppState>,
    current: CurrentUser,
    headers: HeaderMap,
    PathParams(stream_id): PathParams<String>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    check_origin(&state, &headers)?;
    let client = client_info(&current)?;
    if client.role < tandem_live::Role::Admin {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "Permission denied",
        ));
    }
    let upgrade = upgrade.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let hub = state.live.clone();
    let limits = InfluxLimits::default();
    Ok(upgrade
        .max_message_size(limits.max_bytes)
        .on_upgrade(move |mut socket| async move {
            while let Some(Ok(message)) = socket.next().await {
                let text = match &message {
                    Message::Text(text) => text.as_str(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                if let Err(err) = hub.push_influx(&client, &stream_id, text, &limits).await {
                    tracing::debug!(error = %err, stream = %stream_id, "a line-protocol push was refused");
                }
            }
        }))
}

fn close(frame: CloseFrame) -> Message {
    Message::Close(Some(WsCloseFrame {
        code: frame.code,
        reason: frame.reason.into(),
    }))
}

/// Whether a read failed because the message was over the size limit (tungstenite's
/// capacity error, which axum wraps).
fn is_capacity(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        let text = current.to_string().to_ascii_lowercase();
        if text.contains("space limit exceeded") || text.contains("message too long") {
            return true;
        }
        cause = current.source();
    }
    false
}
