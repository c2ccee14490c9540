use std::collections::VecDeque;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{ClientInfo, CloseFrame, Connection, Hub, Outbox, Outgoing};

/// How long a test waits for anything before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until `condition` holds, polling every 10 ms, failing the test after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client speaking Centrifuge's JSON protocol to a hub, without a socket.
///
/// It answers the server's pings (unless told not to) and keeps pushes that arrive while
/// it waits for a reply, in order.
pub struct TestClient {
    /// The connection (drop the client to disconnect).
    pub conn: Connection,
    outbox: Outbox,
    next_id: u32,
    pushes: VecDeque<Value>,
    replies: VecDeque<Value>,
    closed: Option<CloseFrame>,
    /// Whether pings are answered.
    pub auto_pong: bool,
    /// The client id from the connect reply.
    pub client_id: String,
}

impl TestClient {
    /// Connects to `hub` as `client` and sends `connect`.
    pub async fn connect(hub: &Hub, client: ClientInfo) -> TestClient {
        let mut this = TestClient::open(hub, client);
        let reply = this.command("connect", json!({"name": "test"})).await;
        this.client_id = reply["connect"]["client"]
            .as_str()
            .unwrap_or_else(|| panic!("connect reply without a client id: {reply}"))
            .to_owned();
        this
    }

    /// Opens a connection without sending `connect`.
    pub fn open(hub: &Hub, client: ClientInfo) -> TestClient {
        let (conn, outbox) = hub
            .connect(client)
            .unwrap_or_else(|err| panic!("connect: {err}"));
        TestClient {
            conn,
            outbox,
            next_id: 0,
            pushes: VecDeque::new(),
            replies: VecDeque::new(),
            closed: None,
            auto_pong: true,
            client_id: String::new(),
        }
    }

    /// Sends one raw frame.
    pub async fn send(&mut self, frame: &str) {
        self.conn.handle_frame(frame).await;
    }

    /// Sends `{"id":N,"<method>":params}` and returns the reply with that id.
    pub async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = serde_json::Map::new();
        command.insert("id".into(), json!(id));
        command.insert(method.into(), params);
        self.send(&Value::Object(command).to_string()).await;
        self.reply(id).await
    }

    /// Waits for the reply with `id`.
    pub async fn reply(&mut self, id: u32) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.replies.iter().position(|r| r["id"] == json!(id)) {
                return self.replies.remove(at).unwrap_or_default();
            }
            assert!(
                self.read_until(deadline).await,
                "no reply to command {id} (closed: {:?})",
                self.closed
            );
        }
    }

    /// Subscribes and returns the subscribe result; panics on an error reply.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.subscribe_with(json!({"channel": channel})).await
    }

    /// Subscribes with these parameters and returns the subscribe result.
    pub async fn subscribe_with(&mut self, params: Value) -> Value {
        let reply = self.command("subscribe", params).await;
        assert!(reply.get("error").is_none(), "subscribe failed: {reply}");
        reply["subscribe"].clone()
    }

    /// The next push, waiting up to the deadline.
    pub async fn push(&mut self) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(push) = self.pushes.pop_front() {
                return push;
            }
            assert!(
                self.read_until(deadline).await,
                "no push arrived (closed: {:?})",
                self.closed
            );
        }
    }

    /// The data of the next publication push on `channel`, skipping other pushes.
    pub async fn publication(&mut self, channel: &str) -> Value {
        loop {
            let push = self.push().await;
            if push["channel"] == json!(channel) && push.get("pub").is_some() {
                return push["pub"].clone();
            }
        }
    }

    /// The pushes received so far, without waiting.
    pub async fn drain(&mut self) -> Vec<Value> {
        while let Some(outgoing) = self.outbox.try_recv() {
            self.take(outgoing).await;
        }
        self.pushes.drain(..).collect()
    }

    /// Waits for the hub to close the connection and returns the close.
    pub async fn closed(&mut self) -> CloseFrame {
        let deadline = Instant::now() + DEADLINE;
        while self.closed.is_none() {
            assert!(
                self.read_until(deadline).await,
                "the connection was not closed"
            );
        }
        self.closed.unwrap_or(CloseFrame::SHUTDOWN)
    }

    /// The close received, if any (without waiting).
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.closed
    }

    /// Reads one outgoing item before `deadline`; `false` on timeout or end.
    async fn read_until(&mut self, deadline: Instant) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.outbox.recv()).await {
            Ok(Some(outgoing)) => {
                self.take(outgoing).await;
                true
            }
            Ok(None) | Err(_) => false,
        }
    }

    async fn take(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Close(frame) => self.closed = Some(frame),
            Outgoing::Text(text) => {
                for line in text.split('\n') {
                    let value: Value = serde_json::from_str(line)
                        .unwrap_or_else(|err| panic!("the hub sent invalid JSON {line:?}: {err}"));
                    if value.as_object().is_some_and(|o| o.is_empty()) {
                        if self.auto_pong {
                            self.conn.handle_frame("{}").await;
                        }
                    } else if value.get("push").is_some() {
                        self.pushes.push_back(value["push"].clone());
                    } else {
                        self.replies.push_back(value);
                    }
                }
            }
        }
    }
}
