//! One connection's shared state and its outgoing queue.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::authorizer::ClientInfo;
use crate::engine::PresenceEntry;
use crate::hub::Counters;
use crate::protocol::CloseFrame;

/// What the HTTP layer writes to the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// A text frame: one or more JSON objects separated by `\n`.
    Text(Arc<str>),
    /// Close the socket with this code and reason; nothing follows.
    Close(CloseFrame),
}

/// The receiving end of a connection's queue, for the HTTP layer's writer.
///
/// Yields text frames in order, then at most one [`Outgoing::Close`], then `None`.
/// A close (slow consumer, no pong, shutdown) jumps the queue: what was still queued is
/// dropped.
pub struct Outbox {
    rx: mpsc::Receiver<Outgoing>,
    shared: Arc<ConnShared>,
    done: bool,
}

impl Outbox {
    pub(crate) fn new(rx: mpsc::Receiver<Outgoing>, shared: Arc<ConnShared>) -> Outbox {
        Outbox {
            rx,
            shared,
            done: false,
        }
    }

    /// The next thing to write, or `None` once the connection is over.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(ready) = self.before_queue() {
                return ready;
            }
            let item = self.rx.recv().await;
            if let Some(ready) = self.take(item) {
                return ready;
            }
        }
    }

    /// What is ready now, without waiting (`None` when nothing is).
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        loop {
            if let Some(ready) = self.before_queue() {
                return ready;
            }
            let item = self.rx.try_recv().ok()?;
            if let Some(ready) = self.take(Some(item)) {
                return ready;
            }
        }
    }

    /// The end, or a close that jumps the queue.
    fn before_queue(&mut self) -> Option<Option<Outgoing>> {
        if self.done {
            return Some(None);
        }
        let frame = self.shared.close_frame()?;
        self.done = true;
        Some(Some(Outgoing::Close(frame)))
    }

    /// What to yield for an item from the queue; `None` to look again.
    fn take(&mut self, item: Option<Outgoing>) -> Option<Option<Outgoing>> {
        match item {
            Some(Outgoing::Text(text)) => {
                self.shared.dequeued(text.len());
                Some(Some(Outgoing::Text(text)))
            }
            // A wake-up: the next look finds the close frame.
            Some(Outgoing::Close(_)) => None,
            None => {
                self.done = true;
                Some(None)
            }
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("client", &self.shared.client_id())
            .finish_non_exhaustive()
    }
}

/// Ping state bits.
const CONNECTED: u8 = 1;
const AWAITING_PONG: u8 = 2;
const STALE_STRIKE: u8 = 4;

/// What the hub, the fan-out and the connection's own handler share about a connection.
/// Kept small: at 10 000 idle connections every byte here counts.
pub(crate) struct ConnShared {
    pub(crate) id: u64,
    client: u128,
    pub(crate) client_info: ClientInfo,
    tx: mpsc::Sender<Outgoing>,
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    close: Mutex<Option<CloseFrame>>,
    ping: AtomicU8,
    /// The wire names of the channels this connection is subscribed to.
    pub(crate) subs: Mutex<Vec<Arc<str>>>,
    counters: Arc<Counters>,
}

/// What became of a message handed to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: the connection is now closed as a slow consumer.
    Slow,
    /// The connection was closed already.
    Closed,
}

impl ConnShared {
    pub(crate) fn new(
        id: u64,
        client_info: ClientInfo,
        queue: usize,
        max_bytes: usize,
        counters: Arc<Counters>,
    ) -> (Arc<ConnShared>, mpsc::Receiver<Outgoing>) {
        // One slot more than the limit, so that the wake-up of a close always fits.
        let (tx, rx) = mpsc::channel(queue.max(2));
        let shared = Arc::new(ConnShared {
            id,
            client: rand::random(),
            client_info,
            tx,
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            close: Mutex::new(None),
            ping: AtomicU8::new(0),
            subs: Mutex::new(Vec::new()),
            counters,
        });
        (shared, rx)
    }

    /// The client id, a UUID v4 in its usual text form.
    pub(crate) fn client_id(&self) -> String {
        let mut bytes = self.client.to_be_bytes();
        if let Some(b) = bytes.get_mut(6) {
            *b = (*b & 0x0f) | 0x40;
        }
        if let Some(b) = bytes.get_mut(8) {
            *b = (*b & 0x3f) | 0x80;
        }
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default().to_owned();
        format!(
            "{}-{}-{}-{}-{}",
            part(0..8),
            part(8..12),
            part(12..16),
            part(16..20),
            part(20..32)
        )
    }

    /// This connection as presence shows it.
    pub(crate) fn presence_entry(&self) -> PresenceEntry {
        PresenceEntry {
            user: self.client_info.user_id.to_string(),
            client: self.client_id(),
        }
    }

    /// Queues a text frame; a full queue (by count or bytes) closes the connection with
    /// 3008 instead of buffering more.
    pub(crate) fn push(&self, text: Arc<str>) -> Pushed {
        if self.is_closed() {
            return Pushed::Closed;
        }
        let len = text.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if queued.saturating_add(len) > self.max_bytes && queued > 0 {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.close_slow();
            return Pushed::Slow;
        }
        match self.tx.try_send(Outgoing::Text(text)) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                self.close_slow();
                Pushed::Slow
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Closed,
        }
    }

    fn close_slow(&self) {
        if self.close(CloseFrame::SLOW) {
            self.counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the connection with `frame` unless it is closed already; returns whether
    /// this call closed it.
    pub(crate) fn close(&self, frame: CloseFrame) -> bool {
        {
            let mut close = self.lock_close();
            if close.is_some() {
                return false;
            }
            *close = Some(frame);
        }
        // Wake a writer waiting on an empty queue; when the queue is full the writer is
        // not waiting and finds the close before the next message.
        let _ = self.tx.try_send(Outgoing::Close(frame));
        true
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock_close().is_some()
    }

    fn close_frame(&self) -> Option<CloseFrame> {
        *self.lock_close()
    }

    fn dequeued(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
    }

    fn lock_close(&self) -> MutexGuard<'_, Option<CloseFrame>> {
        self.close
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn lock_subs(&self) -> MutexGuard<'_, Vec<Arc<str>>> {
        self.subs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_connected(&self) {
        self.ping.fetch_or(CONNECTED, Ordering::AcqRel);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.ping.load(Ordering::Acquire) & CONNECTED != 0
    }

    /// The client showed it is alive.
    pub(crate) fn alive(&self) {
        self.ping.fetch_and(!AWAITING_PONG, Ordering::AcqRel);
    }

    /// One ping tick: returns what to do with the connection.
    pub(crate) fn ping_tick(&self) -> PingAction {
        let state = self.ping.load(Ordering::Acquire);
        if state & CONNECTED == 0 {
            if state & STALE_STRIKE != 0 {
                return PingAction::Close(CloseFrame::STALE);
            }
            self.ping.fetch_or(STALE_STRIKE, Ordering::AcqRel);
            return PingAction::Wait;
        }
        if state & AWAITING_PONG != 0 {
            return PingAction::Close(CloseFrame::NO_PONG);
        }
        self.ping.fetch_or(AWAITING_PONG, Ordering::AcqRel);
        PingAction::Ping
    }
}

/// What a ping tick asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PingAction {
    /// Send a ping.
    Ping,
    /// Nothing yet.
    Wait,
    /// Close the connection.
    Close(CloseFrame),
}
