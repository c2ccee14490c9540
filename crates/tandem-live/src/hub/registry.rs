//! The channels with local subscribers, and the fan-out of engine events to them.
//!
//! One entry per channel: the hub subscribes to the engine when an entry is created and
//! unsubscribes when it is removed, so an instance subscribes once per channel however
//! many local subscribers it has. A publication is serialised once and the same text is
//! queued for every subscriber.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::channel::Channel;
use crate::engine::{PresenceEntry, Publication};
use crate::hub::Counters;
use crate::hub::conn::{ConnShared, Pushed};
use crate::protocol::UnsubscribeCode;
use crate::protocol::reply;

/// Work the janitor does after subscribers leave: presence removal, leave pushes, and
/// unsubscribing from the engine when a channel has no local subscriber left.
///
/// The queue holds at most one job per ended subscription, so it is bounded by the
/// connections times their subscription limit, and the janitor drains it continuously.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) channel: Arc<str>,
    pub(crate) presence: Option<PresenceEntry>,
}

pub(crate) struct Registry {
    channels: Mutex<HashMap<Arc<str>, Entry>>,
    /// Serialises the creation and removal of entries, which (un)subscribe the engine.
    pub(crate) membership: tokio::sync::Mutex<()>,
    jobs: Mutex<VecDeque<Job>>,
    pub(crate) jobs_ready: Notify,
    pending_limit: usize,
    counters: Arc<Counters>,
}

struct Entry {
    channel: Channel,
    subs: HashMap<u64, Sub>,
    /// The offset of the last publication fanned out (0: none yet), to see gaps.
    last_offset: u64,
    epoch: Arc<str>,
    producer: Option<CancellationToken>,
}

struct Sub {
    conn: Arc<ConnShared>,
    /// Publications that arrived while the subscribe reply was being prepared.
    pending: Option<Vec<Arc<Publication>>>,
    /// Publications up to this offset came in the subscribe reply.
    min_offset: u64,
}

/// What [`Registry::attach`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attached {
    /// Added to an entry that existed.
    Joined,
    /// Created the entry: the caller subscribes the engine.
    Created,
}

impl Registry {
    pub(crate) fn new(pending_limit: usize, counters: Arc<Counters>) -> Registry {
        Registry {
            channels: Mutex::new(HashMap::new()),
            membership: tokio::sync::Mutex::new(()),
            jobs: Mutex::new(VecDeque::new()),
            jobs_ready: Notify::new(),
            pending_limit: pending_limit.max(1),
            counters,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_jobs(&self) -> MutexGuard<'_, VecDeque<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `conn` as a pending subscriber of `channel` (publications are buffered until
    /// [`Registry::activate`]). The caller holds `membership`.
    pub(crate) fn attach(&self, channel: &Channel, conn: &Arc<ConnShared>) -> Attached {
        let mut channels = self.lock();
        let sub = Sub {
            conn: conn.clone(),
            pending: Some(Vec::new()),
            min_offset: 0,
        };
        if let Some(entry) = channels.get_mut(channel.wire()) {
            entry.subs.insert(conn.id, sub);
            return Attached::Joined;
        }
        let mut subs = HashMap::new();
        subs.insert(conn.id, sub);
        channels.insert(
            channel.wire_arc().clone(),
            Entry {
                channel: channel.clone(),
                subs,
                last_offset: 0,
                epoch: Arc::from(""),
                producer: None,
            },
        );
        Attached::Created
    }

    /// Queues the subscribe reply, then what arrived meanwhile past `min_offset`, and
    /// makes the subscriber live. `false` when the subscription ended meanwhile.
    pub(crate) fn activate(
        &self,
        wire: &str,
        conn_id: u64,
        reply: Arc<str>,
        min_offset: u64,
    ) -> bool {
        let mut channels = self.lock();
        let Some(sub) = channels
            .get_mut(wire)
            .and_then(|entry| entry.subs.get_mut(&conn_id))
        else {
            return false;
        };
        if sub.conn.push(reply) != Pushed::Queued {
            return false;
        }
        sub.min_offset = min_offset;
        for publication in sub.pending.take().unwrap_or_default() {
            if publication.offset == 0 || publication.offset > min_offset {
                let text = reply::publication_push(wire, &publication);
                if sub.conn.push(text.into()) != Pushed::Queued {
                    break;
                }
            }
        }
        true
    }

    /// Removes `conn_id` from `wire`'s subscribers; whether it was one.
    pub(crate) fn detach(&self, wire: &str, conn_id: u64) -> bool {
        let mut channels = self.lock();
        channels
            .get_mut(wire)
            .is_some_and(|entry| entry.subs.remove(&conn_id).is_some())
    }

    /// Removes `wire`'s entry when it has no subscriber left (the caller holds
    /// `membership` and then unsubscribes the engine); returns its producer to stop.
    pub(crate) fn remove_if_empty(&self, wire: &str) -> Option<Option<CancellationToken>> {
        let mut channels = self.lock();
        if channels
            .get(wire)
            .is_some_and(|entry| entry.subs.is_empty())
        {
            return channels.remove(wire).map(|entry| entry.producer);
        }
        None
    }

    /// Records the producer started for `wire`.
    pub(crate) fn set_producer(&self, wire: &str, token: CancellationToken) {
        if let Some(entry) = self.lock().get_mut(wire) {
            entry.producer = Some(token);
        }
    }

    /// Fans a publication out to `wire`'s subscribers. A gap in a history channel's
    /// offsets (or a new epoch) means publications were lost on the way: every subscriber
    /// is told to resubscribe and recover instead.
    pub(crate) fn publish(&self, wire: &str, publication: Arc<Publication>) {
        let mut channels = self.lock();
        let Some(entry) = channels.get_mut(wire) else {
            return;
        };
        if publication.offset > 0 {
            let gap = entry.last_offset > 0
                && (publication.epoch != entry.epoch
                    || publication.offset > entry.last_offset.saturating_add(1));
            let stale = entry.last_offset > 0
                && publication.epoch == entry.epoch
                && publication.offset <= entry.last_offset;
            if stale {
                return;
            }
            entry.last_offset = publication.offset;
            entry.epoch = publication.epoch.clone();
            if gap {
                self.counters.gaps.fetch_add(1, Ordering::Relaxed);
                let jobs = insufficient(entry);
                drop(channels);
                self.enqueue(jobs);
                return;
            }
        }
        self.counters.publications.fetch_add(1, Ordering::Relaxed);
        let text: Arc<str> = reply::publication_push(wire, &publication).into();
        for sub in entry.subs.values_mut() {
            match &mut sub.pending {
                Some(pending) if pending.len() < self.pending_limit => {
                    pending.push(publication.clone());
                }
                Some(_) => {
                    sub.conn.close(crate::protocol::CloseFrame::SLOW);
                }
                None if publication.offset == 0 || publication.offset > sub.min_offset => {
                    sub.conn.push(text.clone());
                }
                None => {}
            }
        }
    }

    /// Fans a join or leave out to `wire`'s live subscribers.
    pub(crate) fn presence(&self, wire: &str, info: &PresenceEntry, joined: bool) {
        let channels = self.lock();
        let Some(entry) = channels.get(wire) else {
            return;
        };
        let text: Arc<str> = if joined {
            reply::join_push(wire, info)
        } else {
            reply::leave_push(wire, info)
        }
        .into();
        for sub in entry.subs.values().filter(|sub| sub.pending.is_none()) {
            sub.conn.push(text.clone());
        }
    }

    /// Events may have been lost on `wires`: their subscribers are told to resubscribe
    /// (2500), as [`Registry::reset`] tells every subscriber.
    pub(crate) fn reset_channels(&self, wires: &[&str]) {
        let mut channels = self.lock();
        let mut jobs = Vec::new();
        for wire in wires {
            if let Some(entry) = channels.get_mut(*wire) {
                jobs.extend(insufficient(entry));
            }
        }
        drop(channels);
        self.enqueue(jobs);
    }

    /// Events may have been lost on every channel: every subscriber is told to
    /// resubscribe (2500), which recovers what history holds.
    pub(crate) fn reset(&self) {
        let mut channels = self.lock();
        let mut jobs = Vec::new();
        for entry in channels.values_mut() {
            jobs.extend(insufficient(entry));
        }
        drop(channels);
        self.enqueue(jobs);
    }

    /// The presence entries of this instance's subscribers, per presence channel.
    pub(crate) fn presence_snapshot(&self) -> Vec<(Arc<str>, Vec<PresenceEntry>)> {
        let channels = self.lock();
        channels
            .iter()
            .filter(|(_, entry)| entry.channel.options().presence && !entry.subs.is_empty())
            .map(|(wire, entry)| {
                let entries = entry
                    .subs
                    .values()
                    .map(|sub| sub.conn.presence_entry())
                    .collect();
                (wire.clone(), entries)
            })
            .collect()
    }

    /// Channels with local subscribers and their subscriber counts.
    pub(crate) fn channels(&self) -> Vec<(Arc<str>, usize)> {
        self.lock()
            .iter()
            .map(|(wire, entry)| (wire.clone(), entry.subs.len()))
            .collect()
    }

    /// Queues janitor work.
    pub(crate) fn enqueue(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut queue = self.lock_jobs();
        let before = queue.len();
        queue.extend(jobs);
        if queue.len() > before {
            drop(queue);
            self.jobs_ready.notify_one();
        }
    }

    /// Takes the queued janitor work.
    pub(crate) fn take_jobs(&self) -> Vec<Job> {
        self.lock_jobs().drain(..).collect()
    }
}

/// Unsubscribes every subscriber of `entry` with 2500, returning the janitor's work.
fn insufficient(entry: &mut Entry) -> Vec<Job> {
    let wire = entry.channel.wire_arc().clone();
    let text: Arc<str> = reply::unsubscribe_push(&wire, UnsubscribeCode::INSUFFICIENT_STATE).into();
    let presence = entry.channel.options().presence;
    let mut jobs = Vec::with_capacity(entry.subs.len() + 1);
    for (_, sub) in entry.subs.drain() {
        sub.conn.lock_subs().retain(|name| *name != wire);
        // A subscriber still waiting for its reply gets an error reply instead (its
        // activation fails) and subscribes again.
        if sub.pending.is_none() {
            sub.conn.push(text.clone());
        }
        if presence {
            jobs.push(Job {
                channel: wire.clone(),
                presence: Some(sub.conn.presence_entry()),
            });
        }
    }
    entry.last_offset = 0;
    jobs.push(Job {
        channel: wire.clone(),
        presence: None,
    });
    jobs
}
