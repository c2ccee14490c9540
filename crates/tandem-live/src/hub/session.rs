//! One connection's side of the protocol: commands in, replies out.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::channel::Channel;
use crate::engine::{PresenceEntry, StoredHistory};
use crate::hub::conn::ConnShared;
use crate::hub::registry::Job;
use crate::hub::{HubInner, created, start_producer};
use crate::protocol::command::{
    self, ChannelRequest, HistoryRequest, PublishRequest, Request, SubscribeRequest,
};
use crate::protocol::reply::{self, json};
use crate::protocol::{CloseFrame, ErrorCode};
use crate::{Error, Result};

/// One WebSocket connection, driven by the HTTP layer.
///
/// Feed every incoming text message to [`Connection::handle_frame`]; replies and pushes
/// come out of the [`crate::Outbox`] returned with it. Dropping the connection ends its
/// subscriptions (presence removed, leaves published).
pub struct Connection {
    hub: Arc<HubInner>,
    shared: Arc<ConnShared>,
}

impl Connection {
    pub(crate) fn new(hub: Arc<HubInner>, shared: Arc<ConnShared>) -> Connection {
        Connection { hub, shared }
    }

    /// The client id this connection gets in its connect reply.
    pub fn client_id(&self) -> String {
        self.shared.client_id()
    }

    /// Whether the hub closed the connection (the outbox yields or yielded the close).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Handles one incoming binary message: JSON clients may send text as binary.
    pub async fn handle_bytes(&mut self, frame: &[u8]) {
        match std::str::from_utf8(frame) {
            Ok(text) => self.handle_frame(text).await,
            Err(_) => {
                self.shared.close(CloseFrame::BAD_REQUEST);
            }
        }
    }

    /// Handles one incoming text message: one or more commands separated by `\n`.
    ///
    /// A message over `message_size_limit` closes the connection with 1009, a line that
    /// is not a command object with 3501; errors in a command's parameters are answered
    /// with Centrifuge's error codes.
    pub async fn handle_frame(&mut self, frame: &str) {
        if self.shared.is_closed() {
            return;
        }
        self.shared.alive();
        if frame.len() > self.hub.settings.message_limit() {
            self.shared.close(CloseFrame::MESSAGE_TOO_BIG);
            return;
        }
        let mut batch = String::new();
        for line in command::lines(frame) {
            let Ok(cmd) = command::decode(line) else {
                self.flush(&mut batch);
                self.shared.close(CloseFrame::BAD_REQUEST);
                return;
            };
            let (id, request) = (cmd.id, cmd.request);
            let needs_id = !matches!(request, Request::Pong | Request::Send);
            let before_connect =
                !self.shared.is_connected() && !matches!(request, Request::Connect | Request::Pong);
            if (needs_id && id == 0) || before_connect {
                self.flush(&mut batch);
                self.shared.close(CloseFrame::BAD_REQUEST);
                return;
            }
            match request {
                Request::Pong | Request::Send => {}
                Request::Connect => {
                    if self.shared.is_connected() {
                        self.flush(&mut batch);
                        self.shared.close(CloseFrame::BAD_REQUEST);
                        return;
                    }
                    self.shared.set_connected();
                    let client = self.shared.client_id();
                    let result = reply::ConnectResult {
                        client: &client,
                        version: concat!("tandem ", env!("CARGO_PKG_VERSION")),
                        ping: u32::try_from(self.hub.settings.ping_interval.as_secs())
                            .unwrap_or(u32::MAX)
                            .max(1),
                        pong: true,
                    };
                    reply::reply(&mut batch, id, "connect", &json(&result));
                }
                Request::Subscribe(req) => {
                    // The subscribe reply must precede the channel's publications, so what
                    // came before goes out first and the reply is queued on its own.
                    self.flush(&mut batch);
                    if let Err(code) = self.subscribe(id, &req).await {
                        reply::error(&mut batch, id, code);
                    }
                }
                Request::Unsubscribe(req) => {
                    self.unsubscribe(&req);
                    reply::reply(&mut batch, id, "unsubscribe", "{}");
                }
                Request::Publish(req) => match self.publish(&req).await {
                    Ok(()) => reply::reply(&mut batch, id, "publish", "{}"),
                    Err(code) => reply::error(&mut batch, id, code),
                },
                Request::Presence(req) => match self.presence(&req).await {
                    Ok(entries) => {
                        let result = reply::PresenceResult {
                            presence: entries
                                .iter()
                                .map(|entry| (entry.client.as_str(), entry))
                                .collect::<BTreeMap<_, _>>(),
                        };
                        reply::reply(&mut batch, id, "presence", &json(&result));
                    }
                    Err(code) => reply::error(&mut batch, id, code),
                },
                Request::PresenceStats(req) => match self.presence(&req).await {
                    Ok(entries) => {
                        let users: HashSet<&str> =
                            entries.iter().map(|e| e.user.as_str()).collect();
                        let result = reply::PresenceStatsResult {
                            num_clients: u32::try_from(entries.len()).unwrap_or(u32::MAX),
                            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
                        };
                        reply::reply(&mut batch, id, "presence_stats", &json(&result));
                    }
                    Err(code) => reply::error(&mut batch, id, code),
                },
                Request::History(req) => match self.history(&req).await {
                    Ok(result) => reply::reply(&mut batch, id, "history", &result),
                    Err(code) => reply::error(&mut batch, id, code),
                },
                Request::Ping => reply::reply(&mut batch, id, "ping", "{}"),
                // Tandem has no RPC methods, connection tokens or subscription tokens to
                // refresh: Centrifuge answers these with "not available" when no handler
                // is set.
                Request::Rpc | Request::Refresh | Request::SubRefresh => {
                    reply::error(&mut batch, id, ErrorCode::NOT_AVAILABLE);
                }
                Request::Unknown => reply::error(&mut batch, id, ErrorCode::METHOD_NOT_FOUND),
                Request::Malformed => reply::error(&mut batch, id, ErrorCode::BAD_REQUEST),
            }
            if self.shared.is_closed() {
                return;
            }
        }
        self.flush(&mut batch);
    }

    fn flush(&self, batch: &mut String) {
        if !batch.is_empty() {
            self.shared.push(Arc::from(std::mem::take(batch)));
        }
    }

    fn channel(&self, wire: &str) -> Result<Channel, ErrorCode> {
        Channel::parse_wire(wire).map_err(|err| err.code())
    }

    async fn subscribe(&self, id: u32, req: &SubscribeRequest<'_>) -> Result<(), ErrorCode> {
        let channel = self.channel(&req.channel)?;
        let client = &self.shared.client_info;
        self.hub
            .check_subscribe(client, &channel)
            .await
            .map_err(|err| err.code())?;
        {
            let mut subs = self.shared.lock_subs();
            if subs.iter().any(|name| **name == *channel.wire()) {
                return Err(ErrorCode::ALREADY_SUBSCRIBED);
            }
            if subs.len() >= self.hub.settings.max_subscriptions_per_connection {
                return Err(ErrorCode::LIMIT_EXCEEDED);
            }
            subs.push(channel.wire_arc().clone());
        }
        let result = self.attach_and_reply(id, &channel, req).await;
        if result.is_err() {
            self.shared
                .lock_subs()
                .retain(|name| **name != *channel.wire());
            if self.hub.registry.detach(channel.wire(), self.shared.id) {
                self.hub.registry.enqueue([Job {
                    channel: channel.wire_arc().clone(),
                    presence: None,
                }]);
            }
        }
        result
    }

    async fn attach_and_reply(
        &self,
        id: u32,
        channel: &Channel,
        req: &SubscribeRequest<'_>,
    ) -> Result<(), ErrorCode> {
        let hub = &self.hub;
        let options = channel.options();
        {
            let _membership = hub.registry.membership.lock().await;
            let attached = hub.registry.attach(channel, &self.shared);
            if created(&attached) {
                // The engine keeps the channel and subscribes it again after a reconnect,
                // so a failure here only means "degraded until then".
                if let Err(err) = hub.engine.subscribe(channel.wire()).await {
                    tracing::warn!(error = %err, channel = %channel, "engine subscribe failed; serving locally");
                }
                start_producer(hub, channel);
            }
        }
        let mut result = reply::SubscribeResult::default();
        let stored: Option<StoredHistory> = if options.history {
            match hub.engine.history(channel.wire(), &hub.history).await {
                Ok(stored) => Some(stored),
                Err(err) => {
                    tracing::warn!(error = %err, channel = %channel, "reading history failed");
                    None
                }
            }
        } else {
            None
        };
        let mut min_offset = 0;
        if let Some(stored) = &stored {
            result.recoverable = true;
            result.positioned = true;
            result.epoch = &stored.position.epoch;
            result.offset = stored.position.offset;
            min_offset = stored.position.offset;
            if req.recover {
                result.was_recovering = true;
                if *req.epoch == *stored.position.epoch && recoverable(stored, req.offset) {
                    result.recovered = true;
                    result.publications = stored
                        .publications
                        .iter()
                        .filter(|publication| publication.offset > req.offset)
                        .map(Into::into)
                        .collect();
                }
            }
        } else if req.recover {
            result.was_recovering = true;
        }
        let last = if options.keep_last {
            match hub.engine.last(channel.wire()).await {
                Ok(last) => last.and_then(|frame| RawValue::from_string(frame).ok()),
                Err(err) => {
                    tracing::debug!(error = %err, "reading the last frame failed");
                    None
                }
            }
        } else {
            None
        };
        result.data = last.as_deref();
        let mut text = String::new();
        reply::reply(&mut text, id, "subscribe", &json(&result));
        if !hub
            .registry
            .activate(channel.wire(), self.shared.id, text.into(), min_offset)
        {
            return Err(ErrorCode::INTERNAL);
        }
        if options.presence {
            let entry = self.shared.presence_entry();
            if let Err(err) = hub
                .engine
                .add_presence(
                    channel.wire(),
                    std::slice::from_ref(&entry),
                    hub.settings.presence_ttl,
                )
                .await
            {
                tracing::debug!(error = %err, "adding presence failed");
            }
            if let Err(err) = hub
                .engine
                .publish_presence_event(channel.wire(), &entry, true)
                .await
            {
                tracing::debug!(error = %err, "publishing a join failed; serving locally");
                hub.registry.presence(channel.wire(), &entry, true);
            }
        }
        Ok(())
    }

    fn unsubscribe(&self, req: &ChannelRequest<'_>) {
        let wire: &str = &req.channel;
        let removed = {
            let mut subs = self.shared.lock_subs();
            let before = subs.len();
            subs.retain(|name| **name != *wire);
            subs.len() != before
        };
        if removed && self.hub.registry.detach(wire, self.shared.id) {
            self.hub.registry.enqueue([self.leave_job(wire.into())]);
        }
    }

    fn leave_job(&self, channel: Arc<str>) -> Job {
        let presence = Channel::parse_wire(&channel)
            .is_ok_and(|c| c.options().presence)
            .then(|| self.shared.presence_entry());
        Job { channel, presence }
    }

    async fn publish(&self, req: &PublishRequest<'_>) -> Result<(), ErrorCode> {
        let channel = self.channel(&req.channel)?;
        let data = req.data.ok_or(ErrorCode::BAD_REQUEST)?;
        let client = &self.shared.client_info;
        let result: Result<()> = async {
            let data = self.hub.check_publish(client, &channel, data).await?;
            self.hub.publish(&channel, &data).await
        }
        .await;
        result.map_err(|err| log_code(&err))
    }

    /// The channel must be one the connection is subscribed to.
    fn subscribed(&self, wire: &str) -> Result<Channel, ErrorCode> {
        let channel = self.channel(wire)?;
        if self.shared.lock_subs().iter().any(|name| **name == *wire) {
            Ok(channel)
        } else {
            Err(ErrorCode::PERMISSION_DENIED)
        }
    }

    async fn presence(&self, req: &ChannelRequest<'_>) -> Result<Vec<PresenceEntry>, ErrorCode> {
        let channel = self.subscribed(&req.channel)?;
        if !channel.options().presence {
            return Err(ErrorCode::NOT_AVAILABLE);
        }
        self.hub
            .engine
            .presence(channel.wire())
            .await
            .map_err(|err| log_code(&err))
    }

    async fn history(&self, req: &HistoryRequest<'_>) -> Result<String, ErrorCode> {
        let channel = self.subscribed(&req.channel)?;
        if !channel.options().history {
            return Err(ErrorCode::NOT_AVAILABLE);
        }
        let stored = self
            .hub
            .engine
            .history(channel.wire(), &self.hub.history)
            .await
            .map_err(|err| log_code(&err))?;
        let since = match &req.since {
            Some(since) => {
                if *since.epoch != *stored.position.epoch || !recoverable(&stored, since.offset) {
                    return Err(ErrorCode::UNRECOVERABLE_POSITION);
                }
                since.offset
            }
            None => 0,
        };
        let mut publications: Vec<_> = stored
            .publications
            .iter()
            .filter(|publication| publication.offset > since)
            .collect();
        if req.reverse {
            publications.reverse();
        }
        // Centrifuge: a limit of 0 asks for the position only, a negative one for all.
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        publications.truncate(limit);
        let result = reply::HistoryResult {
            publications: publications.into_iter().map(Into::into).collect(),
            epoch: &stored.position.epoch,
            offset: stored.position.offset,
        };
        Ok(json(&result))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(CloseFrame::SHUTDOWN);
        let subs: Vec<Arc<str>> = std::mem::take(&mut *self.shared.lock_subs());
        let jobs: Vec<Job> = subs
            .into_iter()
            .filter(|wire| self.hub.registry.detach(wire, self.shared.id))
            .map(|wire| self.leave_job(wire))
            .collect();
        self.hub.registry.enqueue(jobs);
        self.hub.forget_connection(self.shared.id);
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("client", &self.shared.client_id())
            .finish_non_exhaustive()
    }
}

/// Whether every publication after `offset` is still in the stream.
fn recoverable(stored: &StoredHistory, offset: u64) -> bool {
    let top = stored.position.offset;
    if offset > top {
        return false;
    }
    let earliest = stored
        .publications
        .first()
        .map_or(top.saturating_add(1), |publication| publication.offset);
    offset.saturating_add(1) >= earliest
}

fn log_code(err: &Error) -> ErrorCode {
    let code = err.code();
    if code == ErrorCode::INTERNAL {
        tracing::warn!(error = %err, "a live command failed");
    }
    code
}
