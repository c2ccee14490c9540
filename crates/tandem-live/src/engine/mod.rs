//! The HA engines: how publications, history, presence and last frames travel between
//! the instances of a cluster.
//!
//! [`Engine`] is the one seam; [`local`] keeps everything in one process, [`redis`] uses
//! Redis pub/sub and keys (Grafana's `ha_engine = redis`), [`postgres`] uses
//! `LISTEN/NOTIFY` and tables in Tandem's own PostgreSQL database.
//! An engine delivers what it receives to its hub through an [`EventSink`], a bounded
//! queue: when the hub falls behind, events are dropped and the hub is told to make every
//! subscriber recover, so nothing buffers without bound.

pub mod local;
pub mod postgres;
pub mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::Result;
use crate::channel::OrgId;
use crate::settings::HaEngine;

/// A publication in a channel.
#[derive(Debug)]
pub struct Publication {
    /// The payload, embedded JSON.
    pub data: Box<RawValue>,
    /// Its offset in the channel's stream; 0 in a channel without history.
    pub offset: u64,
    /// The stream's epoch; empty without history.
    pub epoch: Arc<str>,
    /// Who published it, when a client did.
    pub info: Option<PresenceEntry>,
}

/// A client as presence and join/leave show it: Centrifuge's `ClientInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// The user id, as a string.
    pub user: String,
    /// The connection's client id.
    pub client: String,
}

/// A position in a channel's stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamPosition {
    /// The offset of the newest publication (0: none yet).
    pub offset: u64,
    /// The stream's epoch: it changes when the stream is lost, so old offsets do not match.
    pub epoch: String,
}

/// How a channel keeps its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Publications kept.
    pub size: usize,
    /// How long a publication is kept.
    pub ttl: Duration,
    /// How long the offset and epoch outlive the last publication.
    pub meta_ttl: Duration,
}

/// A channel's stream as the engine keeps it: its position and the publications it still
/// holds, oldest first.
#[derive(Debug, Default)]
pub struct StoredHistory {
    /// The stream's position.
    pub position: StreamPosition,
    /// The publications kept, in offset order.
    pub publications: Vec<Publication>,
}

/// One engine of one instance. Every method is called by the hub; none blocks for long
/// when the engine is unreachable (it fails with [`crate::Error::EngineUnavailable`]).
#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Which engine this is.
    fn kind(&self) -> HaEngine;

    /// Starts delivering `channel`'s publications and joins/leaves to this instance's sink.
    /// Called once per channel when its first local subscriber arrives; the engine
    /// re-subscribes by itself after reconnecting.
    async fn subscribe(&self, channel: &str) -> Result<()>;

    /// Stops delivering `channel` (its last local subscriber left).
    async fn unsubscribe(&self, channel: &str) -> Result<()>;

    /// Publishes to every instance subscribed to `channel`, keeping it in history when a
    /// policy is given; returns the publication's position (offset 0 without history).
    async fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        info: Option<&PresenceEntry>,
        history: Option<&HistoryPolicy>,
    ) -> Result<StreamPosition>;

    /// Publishes a join (`joined`) or leave of `info` to every instance.
    async fn publish_presence_event(
        &self,
        channel: &str,
        info: &PresenceEntry,
        joined: bool,
    ) -> Result<()>;

    /// The channel's stream (created with a fresh epoch when there is none).
    async fn history(&self, channel: &str, policy: &HistoryPolicy) -> Result<StoredHistory>;

    /// Adds or refreshes presence entries, each expiring after `ttl` unless refreshed.
    async fn add_presence(
        &self,
        channel: &str,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<()>;

    /// Removes presence entries by client id.
    async fn remove_presence(&self, channel: &str, clients: &[String]) -> Result<()>;

    /// Every unexpired presence entry of the channel, across the cluster.
    async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>>;

    /// Stores `frame` as the channel's last frame with its `schema`, returning the schema
    /// stored before (so the caller knows whether subscribers have it already).
    async fn swap_last(
        &self,
        org: OrgId,
        channel: &str,
        schema: &str,
        frame: &str,
    ) -> Result<Option<String>>;

    /// The channel's last frame.
    async fn last(&self, channel: &str) -> Result<Option<String>>;

    /// Every `(channel, last frame)` of the org.
    async fn list_last(&self, org: OrgId) -> Result<Vec<(String, String)>>;

    /// Stops the engine's tasks and closes its connections.
    async fn shutdown(&self);
}

/// What an engine hands to its hub.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// A publication.
    Publication {
        channel: Box<str>,
        publication: Arc<Publication>,
    },
    /// A client joined or left a presence channel.
    Presence {
        channel: Box<str>,
        info: PresenceEntry,
        joined: bool,
    },
    /// Events may have been lost (the engine reconnected, or the queue overflowed): every
    /// subscriber must recover.
    Reset,
}

/// The queue from an engine to its hub.
///
/// Bounded: when it is full the event is dropped, and a [`EngineEvent::Reset`] is sent as
/// soon as there is room again, so subscribers resubscribe and recover from history
/// instead of silently missing publications.
#[derive(Clone, Debug)]
pub struct EventSink {
    inner: Arc<SinkInner>,
}

#[derive(Debug)]
struct SinkInner {
    tx: mpsc::Sender<EngineEvent>,
    overflowed: AtomicBool,
    health: Arc<EngineHealth>,
}

impl EventSink {
    pub(crate) fn new(
        capacity: usize,
        health: Arc<EngineHealth>,
    ) -> (EventSink, mpsc::Receiver<EngineEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(16));
        (
            EventSink {
                inner: Arc::new(SinkInner {
                    tx,
                    overflowed: AtomicBool::new(false),
                    health,
                }),
            },
            rx,
        )
    }

    /// The engine's health, shared with the hub.
    pub fn health(&self) -> &Arc<EngineHealth> {
        &self.inner.health
    }

    /// Delivers a publication received from the engine.
    pub fn publication(&self, channel: &str, publication: Publication) {
        self.send(EngineEvent::Publication {
            channel: channel.into(),
            publication: Arc::new(publication),
        });
    }

    /// Delivers a join or leave received from the engine.
    pub fn presence(&self, channel: &str, info: PresenceEntry, joined: bool) {
        self.send(EngineEvent::Presence {
            channel: channel.into(),
            info,
            joined,
        });
    }

    /// Tells the hub that events may have been lost (after a reconnect).
    pub fn reset(&self) {
        self.send(EngineEvent::Reset);
    }

    fn send(&self, event: EngineEvent) {
        let inner = &self.inner;
        if inner.overflowed.load(Ordering::Acquire) {
            if inner.tx.try_send(EngineEvent::Reset).is_err() {
                inner.health.dropped_events.fetch_add(1, Ordering::Relaxed);
                return;
            }
            inner.overflowed.store(false, Ordering::Release);
        }
        match inner.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                inner.health.dropped_events.fetch_add(1, Ordering::Relaxed);
                inner.overflowed.store(true, Ordering::Release);
            }
            // The hub is gone: nobody to deliver to.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The engine's health, as the hub reports it.
#[derive(Debug, Default)]
pub struct EngineHealth {
    down: AtomicBool,
    losses: AtomicU64,
    dropped_events: AtomicU64,
}

impl EngineHealth {
    /// Whether the engine's subscription connection is up.
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    /// How many times the engine was lost since start.
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Relaxed)
    }

    /// Engine events dropped because the hub fell behind.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Marks the engine up.
    pub fn set_up(&self) {
        self.down.store(false, Ordering::Release);
    }

    /// Marks the engine down while it connects for the first time (not a loss).
    pub fn set_connecting(&self) {
        self.down.store(true, Ordering::Release);
    }

    /// Marks the engine down, counting a loss when it was up.
    pub fn set_down(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            self.losses.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Exponential backoff for reconnects: 100 ms doubling to 5 s, with jitter.
pub(crate) fn reconnect_delay(attempt: u32) -> Duration {
    use rand::RngExt;
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let jitter = rand::rng().random_range(0..=base / 4);
    Duration::from_millis(base + jitter)
}

/// A new random epoch: 8 letters and digits.
pub(crate) fn new_epoch() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| {
            let i = rng.random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    tandem_storage::now_ms()
}

/// `duration` in milliseconds, saturating.
pub(crate) fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Parses stored JSON back into a payload.
pub(crate) fn raw(json: String) -> Result<Box<RawValue>> {
    RawValue::from_string(json).map_err(|err| crate::Error::EngineData(err.to_string()))
}
