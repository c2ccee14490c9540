//! A WebSocket client speaking Centrifuge's JSON protocol to `/api/live/ws`, for tests and
//! the Live load generator.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a reply or a push.
pub const WS_DEADLINE: Duration = Duration::from_secs(15);

/// An open Live connection.
pub struct LiveClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Objects read but not yet asked for (a frame may carry several).
    pending: std::collections::VecDeque<Value>,
    /// The close frame, once the server closed.
    close: Option<(u16, String)>,
}

/// What [`LiveClient::read`] saw.
#[derive(Debug)]
pub enum Read {
    /// A reply or a push.
    Message(Value),
    /// Nothing within the wait.
    Idle,
    /// The connection closed: the close code (1006 when it dropped without one) and reason.
    Closed(u16, String),
}

/// Why an upgrade failed.
#[derive(Debug)]
pub enum UpgradeError {
    /// The server answered the upgrade request with this status and body.
    Refused(u16, String),
    /// Anything else.
    Other(String),
}

impl LiveClient {
    /// Opens `ws://…/api/live/ws` of `base` (`http://host:port`) with `headers` (a cookie, an
    /// `Origin`), without sending `connect`.
    pub async fn open(base: &str, headers: &[(&str, &str)]) -> Result<LiveClient, UpgradeError> {
        LiveClient::open_path(base, "/api/live/ws", headers).await
    }

    /// Opens the WebSocket at `path` of `base`.
    pub async fn open_path(
        base: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<LiveClient, UpgradeError> {
        let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
        let mut request = url
            .into_client_request()
            .map_err(|err| UpgradeError::Other(err.to_string()))?;
        for (name, value) in headers {
            let value =
                HeaderValue::from_str(value).map_err(|err| UpgradeError::Other(err.to_string()))?;
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|err| UpgradeError::Other(err.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(LiveClient {
                socket,
                next_id: 0,
                pending: Default::default(),
                close: None,
            }),
            Err(WsError::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                    .unwrap_or_default();
                Err(UpgradeError::Refused(status, body))
            }
            Err(err) => Err(UpgradeError::Other(err.to_string())),
        }
    }

    /// Opens and sends `connect`; panics unless the reply has a `client` id.
    pub async fn connect(base: &str, headers: &[(&str, &str)]) -> LiveClient {
        let mut client = LiveClient::open(base, headers)
            .await
            .unwrap_or_else(|err| panic!("the upgrade failed: {err:?}"));
        let reply = client.command("connect", json!({})).await;
        assert!(
            reply["connect"]["client"].is_string(),
            "connect answered {reply}"
        );
        client
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send a frame");
    }

    /// Sends one command and returns its reply (a result or an `error`), keeping the
    /// pushes that arrive before it for [`LiveClient::push`].
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id});
        command[method] = params;
        self.send_text(&command.to_string()).await;
        let mut skipped = Vec::new();
        let reply = loop {
            let message = self.next().await.unwrap_or_else(|| {
                panic!(
                    "the connection closed before the reply to {method}: {:?}",
                    self.close
                )
            });
            if message["id"] == id {
                break message;
            }
            skipped.push(message);
        };
        for message in skipped.into_iter().rev() {
            self.pending.push_front(message);
        }
        reply
    }

    /// Subscribes to `channel` (with the org first) and returns the reply.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.command("subscribe", json!({"channel": channel})).await
    }

    /// The next push (an object without an `id`), answering the server's pings.
    pub async fn push(&mut self) -> Value {
        loop {
            let message = self.next().await.unwrap_or_else(|| {
                panic!(
                    "the connection closed while waiting for a push: {:?}",
                    self.close
                )
            });
            if message.get("id").is_none() && message.get("push").is_some() {
                return message["push"].clone();
            }
        }
    }

    /// The next publication pushed on `channel`: its `pub` object.
    pub async fn publication(&mut self, channel: &str) -> Value {
        loop {
            let push = self.push().await;
            if push["channel"] == channel && push.get("pub").is_some() {
                return push["pub"].clone();
            }
        }
    }

    /// Waits for the server to close the connection; its close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        while self.next().await.is_some() {}
        self.close.clone().unwrap_or((1006, String::new()))
    }

    /// Sends one command and returns its reply, or `None` when the connection closes or
    /// nothing answers within `wait` (for clients that must survive a dying server).
    pub async fn try_command(
        &mut self,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> Option<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id});
        command[method] = params;
        self.socket
            .send(Message::Text(command.to_string().into()))
            .await
            .ok()?;
        let until = tokio::time::Instant::now() + wait;
        let mut skipped = Vec::new();
        let reply = loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                Read::Message(message) if message["id"] == id => break Some(message),
                Read::Message(message) => skipped.push(message),
                Read::Idle | Read::Closed(..) => break None,
            }
        };
        for message in skipped.into_iter().rev() {
            self.pending.push_front(message);
        }
        reply
    }

    /// The next JSON object from the server (pings answered and not returned), or what
    /// happened instead within `wait`.
    pub async fn read(&mut self, wait: Duration) -> Read {
        let until = tokio::time::Instant::now() + wait;
        loop {
            if let Some(value) = self.pending.pop_front() {
                return Read::Message(value);
            }
            if let Some((code, reason)) = &self.close {
                return Read::Closed(*code, reason.clone());
            }
            let Ok(message) = tokio::time::timeout_at(until, self.socket.next()).await else {
                return Read::Idle;
            };
            match message {
                Some(Ok(Message::Text(text))) => {
                    for line in text.as_str().split('\n').filter(|l| !l.trim().is_empty()) {
                        let value: Value = serde_json::from_str(line)
                            .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
                        if value == json!({}) {
                            // A ping: Centrifuge's clients answer with an empty object.
                            let _ = self.socket.send(Message::Text("{}".into())).await;
                        } else {
                            self.pending.push_back(value);
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    self.close = Some(frame.map_or((1005, String::new()), |frame| {
                        (u16::from(frame.code), frame.reason.to_string())
                    }));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    self.close.get_or_insert((1006, String::new()));
                }
            }
        }
    }

    /// The next JSON object from the server, `None` once it closed; panics when nothing
    /// comes within [`WS_DEADLINE`].
    async fn next(&mut self) -> Option<Value> {
        match self.read(WS_DEADLINE).await {
            Read::Message(value) => Some(value),
            Read::Closed(..) => None,
            Read::Idle => panic!("nothing from the server within {WS_DEADLINE:?}"),
        }
    }
}
