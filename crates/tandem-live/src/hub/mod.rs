//! The connection hub: every WebSocket connection of one instance, the channels they
//! subscribe to, and the engine that links this instance to the others.

mod conn;
mod registry;
mod session;
mod stale;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::value::RawValue;
use tandem_storage::{Database, Leases};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::hub::conn::{Outbox, Outgoing};
pub use crate::hub::session::Connection;

use crate::authorizer::{Action, ChannelAuthorizer, ClientInfo, Role};
use crate::channel::{Channel, ChannelError, ChannelKind, OrgId, TestStream};
use crate::engine::local::{LocalBroker, LocalEngine};
use crate::engine::postgres::PostgresEngine;
use crate::engine::redis::RedisEngine;
use crate::engine::{
    Engine, EngineEvent, EngineHealth, EventSink, HistoryPolicy, PresenceEntry, Publication,
};
use crate::frame::Frame;
use crate::hub::conn::{ConnShared, PingAction};
use crate::hub::registry::{Attached, Job, Registry};
use crate::hub::stale::{STALE_CHANNEL, StaleChannels};
use crate::influx::{self, InfluxLimits};
use crate::protocol::CloseFrame;
use crate::settings::{HaEngine, LiveSettings};
use crate::{Error, Result, producer};

/// What a hub needs from the composition layer.
pub struct HubOptions {
    /// Live's settings.
    pub settings: LiveSettings,
    /// This instance's id (the cluster membership id): it holds producer leases.
    pub node_id: String,
    /// Who may subscribe and publish.
    pub authorizer: Arc<dyn ChannelAuthorizer>,
    /// Leases for cluster-singleton producers; `None` runs them unconditionally (one
    /// instance).
    pub leases: Option<Arc<dyn Leases>>,
    /// Tandem's database, required by the `postgres` engine.
    pub database: Option<Database>,
    /// The bus of the `local` engine; hubs of one process given the same broker form a
    /// cluster (tests). `None` creates a private one.
    pub local_broker: Option<LocalBroker>,
}

/// The Live hub of one instance.
///
/// [`Hub::connect`] admits a WebSocket connection; [`Hub::publish`] and friends are what
/// the HTTP layer and the dashboards' event sink call. Dropping the hub stops its tasks
/// without ceremony (as a crash would: producer leases lapse); [`Hub::shutdown`] closes
/// connections with 3001 and releases leases first.
pub struct Hub {
    inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) settings: LiveSettings,
    pub(crate) node_id: String,
    pub(crate) authorizer: Arc<dyn ChannelAuthorizer>,
    pub(crate) leases: Option<Arc<dyn Leases>>,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) health: Arc<EngineHealth>,
    pub(crate) registry: Registry,
    conns: Mutex<HashMap<u64, Arc<ConnShared>>>,
    next_conn: AtomicU64,
    pub(crate) counters: Arc<Counters>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) graceful: AtomicBool,
    pub(crate) history: HistoryPolicy,
    /// Channels published on locally while the engine was down.
    pub(crate) stale: StaleChannels,
}

/// Counters behind [`LiveMetrics`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) no_pong: AtomicU64,
    pub(crate) publications: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) producers_running: AtomicU64,
}

/// Live's health, for `/api/health`'s `"live"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveHealth {
    /// The engine is connected (always, for the local engine).
    Ok,
    /// The engine is unreachable: each instance serves its own subscribers and resumes
    /// by itself when the engine returns.
    Degraded,
}

impl LiveHealth {
    /// `"ok"` or `"degraded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveHealth::Ok => "ok",
            LiveHealth::Degraded => "degraded",
        }
    }
}

/// Live's numbers, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveMetrics {
    /// The engine in use.
    pub engine: &'static str,
    /// 1 while the engine is connected, 0 while degraded.
    pub engine_up: u64,
    /// How many times the engine was lost since start.
    pub engine_losses: u64,
    /// Engine events dropped because fan-out fell behind (subscribers were told to
    /// recover).
    pub engine_events_dropped: u64,
    /// Open connections.
    pub connections: u64,
    /// Channels with local subscribers.
    pub channels: u64,
    /// Subscriptions of local connections.
    pub subscriptions: u64,
    /// Publications fanned out to local subscribers.
    pub publications: u64,
    /// Connections closed as slow consumers (3008).
    pub slow_consumers: u64,
    /// Connections closed for not answering pings (3012).
    pub no_pong: u64,
    /// Connections refused over `max_connections` (3504).
    pub refused: u64,
    /// Offset gaps that made subscribers recover.
    pub gaps: u64,
    /// Cluster-singleton producers running on this instance.
    pub producers: u64,
}

/// A channel of `GET /api/live/list`: Grafana's `ManagedChannel`.
#[derive(Debug, Serialize)]
pub struct ManagedChannel {
    /// The channel, without the org.
    pub channel: String,
    /// Its last frame (for testdata streams, the schema).
    pub data: Box<RawValue>,
}

/// A dashboard change Grafana pushes to `grafana/dashboard/uid/<uid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DashboardAction {
    /// `saved`.
    Saved,
    /// `deleted`.
    Deleted,
}

/// What one line-protocol push published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    /// The channels published to (without the org), one per measurement.
    pub channels: Vec<String>,
}

impl Hub {
    /// Starts a hub: connects its engine (an unreachable Redis or PostgreSQL is logged
    /// and reported as degraded, never fatal) and its background tasks.
    pub async fn start(options: HubOptions) -> Result<Hub> {
        let HubOptions {
            settings,
            node_id,
            authorizer,
            leases,
            database,
            local_broker,
        } = options;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let health = Arc::new(EngineHealth::default());
        let (sink, events) = EventSink::new(settings.engine_event_queue, health.clone());
        let engine: Arc<dyn Engine> = match settings.ha_engine {
            HaEngine::Local => Arc::new(
                LocalEngine::new(local_broker.unwrap_or_default(), sink)
                    .with_last_ttl(settings.last_frame_ttl()),
            ),
            HaEngine::Redis => {
                Arc::new(RedisEngine::start(&settings, sink, &tasks, &cancel).await?)
            }
            HaEngine::Postgres => {
                let database = database.ok_or_else(|| {
                    Error::InvalidSettings("ha_engine = postgres needs the database".into())
                })?;
                Arc::new(PostgresEngine::start(database, &settings, sink, &tasks, &cancel).await?)
            }
        };
        let counters = Arc::new(Counters::default());
        let history = HistoryPolicy {
            size: settings.history_size.max(1),
            ttl: settings.history_ttl,
            meta_ttl: settings.history_meta_ttl.max(settings.history_ttl),
        };
        let inner = Arc::new(HubInner {
            registry: Registry::new(settings.client_queue_size, counters.clone()),
            settings,
            node_id,
            authorizer,
            leases,
            engine,
            health,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            counters,
            cancel,
            tasks,
            graceful: AtomicBool::new(false),
            history,
            stale: StaleChannels::default(),
        });
        // Other instances' announcements of channels they published on while their engine
        // was down; an engine that is down now subscribes when it connects.
        if let Err(err) = inner.engine.subscribe(STALE_CHANNEL).await {
            tracing::debug!(error = %err, "subscribing to stale-channel announcements waits for the engine");
        }
        inner.tasks.spawn(dispatch(inner.clone(), events));
        inner.tasks.spawn(janitor(inner.clone()));
        inner.tasks.spawn(pinger(inner.clone()));
        inner.tasks.spawn(presence_refresher(inner.clone()));
        Ok(Hub { inner })
    }

    /// Admits a WebSocket connection of `client`: the HTTP layer feeds every incoming
    /// message to [`Connection::handle_frame`] and writes everything [`Outbox::recv`]
    /// yields. Over `max_connections` it fails with [`Error::ConnectionLimit`]; the HTTP
    /// layer then closes the socket with [`CloseFrame::CONNECTION_LIMIT`].
    pub fn connect(&self, client: ClientInfo) -> Result<(Connection, Outbox)> {
        let inner = &self.inner;
        if inner.cancel.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (shared, rx) = ConnShared::new(
            id,
            client,
            inner.settings.client_queue_size,
            inner.settings.client_queue_max_bytes,
            inner.counters.clone(),
        );
        {
            let mut conns = inner.lock_conns();
            let limit = inner.settings.max_connections;
            if limit >= 0 && conns.len() as u64 >= limit.unsigned_abs() {
                inner.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Error::ConnectionLimit);
            }
            conns.insert(id, shared.clone());
        }
        let outbox = Outbox::new(rx, shared.clone());
        Ok((Connection::new(inner.clone(), shared), outbox))
    }

    /// Publishes `data` to `channel` from the server side (no permission check): what the
    /// composition layer does for dashboard events.
    pub async fn publish(&self, channel: &Channel, data: &RawValue) -> Result<()> {
        self.inner.publish(channel, data).await
    }

    /// `POST /api/live/publish {"channel","data"}`: `channel` is the Grafana name without
    /// the org; the same rules as a WebSocket publish apply.
    pub async fn publish_as(
        &self,
        client: &ClientInfo,
        channel: &str,
        data: &RawValue,
    ) -> Result<()> {
        let channel = Channel::new(client.org_id, channel)?;
        let data = self.inner.check_publish(client, &channel, data).await?;
        self.inner.publish(&channel, &data).await
    }

    /// Pushes `{"uid","action","rv"}` to `grafana/dashboard/uid/<uid>` of `org`: wire the
    /// dashboards' event sink (save, delete) to this.
    pub async fn dashboard_changed(
        &self,
        org: OrgId,
        uid: &str,
        action: DashboardAction,
        version: Option<i64>,
    ) -> Result<()> {
        #[derive(Serialize)]
        struct Event<'a> {
            uid: &'a str,
            action: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            rv: Option<i64>,
        }
        let channel = Channel::new(org, &format!("grafana/dashboard/uid/{uid}"))?;
        let action = match action {
            DashboardAction::Saved => "saved",
            DashboardAction::Deleted => "deleted",
        };
        let data = serde_json::value::to_raw_value(&Event {
            uid,
            action,
            rv: version,
        })
        .map_err(|err| Error::BadRequest(err.to_string()))?;
        self.inner.publish(&channel, &data).await
    }

    /// `POST /api/live/push/:streamId`: InfluxDB line protocol from an org Admin, one
    /// frame per measurement published to `stream/<streamId>/<measurement>`.
    pub async fn push_influx(
        &self,
        client: &ClientInfo,
        stream_id: &str,
        body: &str,
        limits: &InfluxLimits,
    ) -> Result<PushSummary> {
        if client.role < Role::Admin {
            return Err(Error::PermissionDenied);
        }
        if !crate::channel::is_valid_segment(stream_id) {
            return Err(ChannelError::Malformed("a stream id of letters, digits and _-=.~").into());
        }
        let frames = influx::to_frames(body, limits)?;
        let mut channels = Vec::with_capacity(frames.len());
        // Check every channel before publishing any, so a bad measurement refuses the push.
        let mut targets = Vec::with_capacity(frames.len());
        for frame in frames {
            let channel =
                Channel::new(client.org_id, &format!("stream/{stream_id}/{}", frame.name))?;
            targets.push((channel, frame));
        }
        for (channel, frame) in targets {
            self.inner.publish_frame(&channel, &frame).await?;
            channels.push(channel.name().to_owned());
        }
        Ok(PushSummary { channels })
    }

    /// `GET /api/live/list`: the org's stream channels with their last frame, across the
    /// cluster, and the testdata streams.
    pub async fn list(&self, org: OrgId) -> Result<Vec<ManagedChannel>> {
        let mut list = Vec::new();
        for (wire, frame) in self.inner.engine.list_last(org).await? {
            let Ok(channel) = Channel::parse_wire(&wire) else {
                continue;
            };
            if channel.kind() != ChannelKind::Stream {
                continue;
            }
            if let Ok(data) = RawValue::from_string(frame) {
                list.push(ManagedChannel {
                    channel: channel.name().to_owned(),
                    data,
                });
            }
        }
        for stream in TestStream::ALL {
            let schema = producer::schema_frame().full_json();
            if let Ok(data) = RawValue::from_string(schema) {
                list.push(ManagedChannel {
                    channel: format!("plugin/testdata/{}", stream.path()),
                    data,
                });
            }
        }
        Ok(list)
    }

    /// `"ok"`, or `"degraded"` while the engine is unreachable.
    pub fn health(&self) -> LiveHealth {
        if self.inner.health.is_up() {
            LiveHealth::Ok
        } else {
            LiveHealth::Degraded
        }
    }

    /// The numbers for `/metrics`.
    pub fn metrics(&self) -> LiveMetrics {
        let inner = &self.inner;
        let channels = inner.registry.channels();
        let counters = &inner.counters;
        LiveMetrics {
            engine: inner.engine.kind().name(),
            engine_up: u64::from(inner.health.is_up()),
            engine_losses: inner.health.losses(),
            engine_events_dropped: inner.health.dropped_events(),
            connections: inner.lock_conns().len() as u64,
            channels: channels.len() as u64,
            subscriptions: channels.iter().map(|(_, n)| *n as u64).sum(),
            publications: counters.publications.load(Ordering::Relaxed),
            slow_consumers: counters.slow_consumers.load(Ordering::Relaxed),
            no_pong: counters.no_pong.load(Ordering::Relaxed),
            refused: counters.refused.load(Ordering::Relaxed),
            gaps: counters.gaps.load(Ordering::Relaxed),
            producers: counters.producers_running.load(Ordering::Relaxed),
        }
    }

    /// The settings the hub runs with.
    pub fn settings(&self) -> &LiveSettings {
        &self.inner.settings
    }

    /// Closes every connection with 3001 (clients reconnect to another instance), stops
    /// producers releasing their leases, stops the tasks and the engine.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.graceful.store(true, Ordering::Release);
        for conn in inner.lock_conns().values() {
            conn.close(CloseFrame::SHUTDOWN);
        }
        inner.cancel.cancel();
        inner.tasks.close();
        inner.tasks.wait().await;
        inner.engine.shutdown().await;
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("node_id", &self.inner.node_id)
            .field("engine", &self.inner.engine.kind())
            .finish_non_exhaustive()
    }
}

impl HubInner {
    fn lock_conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnShared>>> {
        self.conns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn forget_connection(&self, id: u64) {
        self.lock_conns().remove(&id);
    }

    /// The hub's own rules for subscribing, then the authorizer's.
    pub(crate) async fn check_subscribe(
        &self,
        client: &ClientInfo,
        channel: &Channel,
    ) -> Result<()> {
        if channel.org() != client.org_id {
            return Err(ChannelError::OtherOrg.into());
        }
        self.authorize(client, channel, Action::Subscribe).await
    }

    /// The hub's own rules for publishing, then the authorizer's; returns what to publish.
    pub(crate) async fn check_publish(
        &self,
        client: &ClientInfo,
        channel: &Channel,
        data: &RawValue,
    ) -> Result<Box<RawValue>> {
        if channel.org() != client.org_id {
            return Err(ChannelError::OtherOrg.into());
        }
        let data = match channel.kind() {
            ChannelKind::Dashboard => editing_event(channel.leaf(), data)?,
            ChannelKind::Broadcast => data.to_owned(),
            ChannelKind::Stream if client.role >= Role::Admin => data.to_owned(),
            ChannelKind::Stream | ChannelKind::Testdata(_) => return Err(Error::PermissionDenied),
        };
        self.authorize(client, channel, Action::Publish).await?;
        Ok(data)
    }

    async fn authorize(
        &self,
        client: &ClientInfo,
        channel: &Channel,
        action: Action,
    ) -> Result<()> {
        match self.authorizer.authorize(client, channel, action).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::PermissionDenied),
            Err(err) => {
                tracing::error!(error = %err, channel = %channel, "live authorization failed");
                Err(err)
            }
        }
    }

    /// Publishes through the engine; when the engine is unreachable the publication still
    /// reaches this instance's subscribers.
    pub(crate) async fn publish(&self, channel: &Channel, data: &RawValue) -> Result<()> {
        if channel.options().keep_last
            && let Err(err) = self
                .engine
                .swap_last(channel.org(), channel.wire(), "", data.get())
                .await
        {
            tracing::debug!(error = %err, "keeping the last frame failed");
        }
        self.publish_data(channel, data).await
    }

    async fn publish_data(&self, channel: &Channel, data: &RawValue) -> Result<()> {
        // While the engine is known to be down, every attempt would wait for its timeout
        // (seconds) before falling back: publish locally at once instead, so publishers'
        // replies stay prompt during an outage.
        if !self.health.is_up() {
            self.publish_locally(channel, data);
            return Ok(());
        }
        let history = channel.options().history.then_some(&self.history);
        match self
            .engine
            .publish(channel.wire(), data, None, history)
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_engine_unavailable() => {
                tracing::debug!(error = %err, channel = %channel, "engine down, publishing locally");
                self.publish_locally(channel, data);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Fans a publication out to this instance's subscribers only, without history.
    fn publish_locally(&self, channel: &Channel, data: &RawValue) {
        self.stale.mark(channel.wire_arc());
        self.registry.publish(
            channel.wire(),
            Arc::new(Publication {
                data: data.to_owned(),
                offset: 0,
                epoch: Arc::from(""),
                info: None,
            }),
        );
    }

    /// Publishes a frame: with its schema when the channel's last schema differs (or is
    /// unknown), data only otherwise; the full frame is kept as the channel's last.
    pub(crate) async fn publish_frame(&self, channel: &Channel, frame: &Frame) -> Result<()> {
        let schema = frame.schema_json();
        let full = frame.full_json();
        let previous = match self
            .engine
            .swap_last(channel.org(), channel.wire(), &schema, &full)
            .await
        {
            Ok(previous) => previous,
            Err(err) if err.is_engine_unavailable() => None,
            Err(err) => return Err(err),
        };
        let json = if previous.as_deref() == Some(schema.as_str()) {
            frame.data_only_json()
        } else {
            full
        };
        let data = RawValue::from_string(json).map_err(|err| Error::BadRequest(err.to_string()))?;
        self.publish_data(channel, &data).await
    }
}

/// A client's publication to a dashboard channel: only `editing-started` for that
/// dashboard, as Grafana allows.
fn editing_event(uid: &str, data: &RawValue) -> Result<Box<RawValue>> {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        uid: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        action: std::borrow::Cow<'a, str>,
    }
    let event: Event<'_> = serde_json::from_str(data.get())
        .map_err(|_| Error::BadRequest("a dashboard event {\"uid\",\"action\"}".into()))?;
    if event.uid != uid || event.action != "editing-started" {
        return Err(Error::BadRequest(
            "only editing-started events for this dashboard may be published".into(),
        ));
    }
    Ok(data.to_owned())
}

/// Fans engine events out to local subscribers; one task per hub.
async fn dispatch(inner: Arc<HubInner>, mut events: mpsc::Receiver<EngineEvent>) {
    loop {
        let event = tokio::select! {
            () = inner.cancel.cancelled() => break,
            event = events.recv() => event,
        };
        match event {
            Some(EngineEvent::Publication {
                channel,
                publication,
            }) if &*channel == STALE_CHANNEL => stale::received(&inner, &publication.data),
            Some(EngineEvent::Publication {
                channel,
                publication,
            }) => inner.registry.publish(&channel, publication),
            Some(EngineEvent::Presence {
                channel,
                info,
                joined,
            }) => inner.registry.presence(&channel, &info, joined),
            Some(EngineEvent::Reset) => {
                inner.registry.reset();
                // The engine is back (or events overflowed): tell the others what was
                // published here meanwhile.
                let announcer = inner.clone();
                inner
                    .tasks
                    .spawn(async move { stale::announce(&announcer).await });
            }
            None => break,
        }
    }
}

/// Removes presence, publishes leaves and unsubscribes the engine from channels left
/// without local subscribers.
async fn janitor(inner: Arc<HubInner>) {
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => break,
            () = inner.registry.jobs_ready.notified() => {}
        }
        loop {
            let jobs = inner.registry.take_jobs();
            if jobs.is_empty() {
                break;
            }
            run_jobs(&inner, jobs).await;
        }
    }
}

async fn run_jobs(inner: &HubInner, jobs: Vec<Job>) {
    let mut left: HashMap<Arc<str>, Vec<PresenceEntry>> = HashMap::new();
    let mut channels: Vec<Arc<str>> = Vec::new();
    for job in jobs {
        if !channels.contains(&job.channel) {
            channels.push(job.channel.clone());
        }
        if let Some(entry) = job.presence {
            left.entry(job.channel).or_default().push(entry);
        }
    }
    for (channel, entries) in left {
        let clients: Vec<String> = entries.iter().map(|entry| entry.client.clone()).collect();
        if let Err(err) = inner.engine.remove_presence(&channel, &clients).await {
            tracing::debug!(error = %err, "removing presence failed; it expires");
        }
        for entry in &entries {
            if let Err(err) = inner
                .engine
                .publish_presence_event(&channel, entry, false)
                .await
            {
                tracing::debug!(error = %err, "publishing a leave failed");
            }
        }
    }
    let _membership = inner.registry.membership.lock().await;
    for channel in channels {
        if let Some(producer) = inner.registry.remove_if_empty(&channel) {
            if let Some(producer) = producer {
                producer.cancel();
            }
            if let Err(err) = inner.engine.unsubscribe(&channel).await {
                tracing::debug!(error = %err, channel = %channel, "engine unsubscribe failed");
            }
        }
    }
}

/// Pings every connection each `ping_interval`; closes those that did not answer the
/// previous ping (3012) or never sent `connect` (3502).
async fn pinger(inner: Arc<HubInner>) {
    let ping: Arc<str> = Arc::from(crate::protocol::reply::PING);
    let mut ticker = tokio::time::interval(
        inner
            .settings
            .ping_interval
            .max(std::time::Duration::from_millis(10)),
    );
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let conns: Vec<Arc<ConnShared>> = inner.lock_conns().values().cloned().collect();
        for conn in conns {
            match conn.ping_tick() {
                PingAction::Ping => {
                    conn.push(ping.clone());
                }
                PingAction::Wait => {}
                PingAction::Close(frame) => {
                    if conn.close(frame) && frame == CloseFrame::NO_PONG {
                        inner.counters.no_pong.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// Refreshes this instance's presence entries well before they expire.
async fn presence_refresher(inner: Arc<HubInner>) {
    let period = (inner.settings.presence_ttl / 3).max(std::time::Duration::from_millis(100));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = inner.cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        for (channel, entries) in inner.registry.presence_snapshot() {
            if let Err(err) = inner
                .engine
                .add_presence(&channel, &entries, inner.settings.presence_ttl)
                .await
            {
                tracing::debug!(error = %err, "refreshing presence failed");
            }
        }
    }
}

/// Starts the producer of a testdata channel whose entry was just created.
pub(crate) fn start_producer(inner: &Arc<HubInner>, channel: &Channel) {
    if let ChannelKind::Testdata(stream) = channel.kind() {
        let token = inner.cancel.child_token();
        inner.registry.set_producer(channel.wire(), token.clone());
        inner
            .tasks
            .spawn(producer::run(inner.clone(), channel.clone(), stream, token));
    }
}

/// Whether the registry created an entry, for the session.
pub(crate) fn created(attached: &Attached) -> bool {
    *attached == Attached::Created
}
