//! The in-process engine: one instance, or several hubs of one process sharing a
//! [`LocalBroker`] (which is how tests run a cluster without servers).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::Result;
use crate::channel::OrgId;
use crate::engine::{
    Engine, EventSink, HistoryPolicy, PresenceEntry, Publication, StoredHistory, StreamPosition,
    new_epoch,
};
use crate::settings::HaEngine;

/// The shared in-memory bus of the local engine. Cloning shares it.
#[derive(Clone, Default)]
pub struct LocalBroker {
    state: Arc<Mutex<BrokerState>>,
}

impl std::fmt::Debug for LocalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBroker").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct BrokerState {
    next_engine: u64,
    subscribers: HashMap<String, Vec<(u64, EventSink)>>,
    streams: HashMap<String, LocalStream>,
    presence: HashMap<String, HashMap<String, (PresenceEntry, Instant)>>,
    /// Per channel: org, schema, frame, and when it was pushed.
    last: HashMap<String, (OrgId, String, String, Instant)>,
    /// When expired last frames were last dropped.
    last_swept: Option<Instant>,
}

struct LocalStream {
    epoch: Arc<str>,
    top: u64,
    touched: Instant,
    items: VecDeque<StoredItem>,
}

struct StoredItem {
    offset: u64,
    data: Box<RawValue>,
    info: Option<PresenceEntry>,
    at: Instant,
}

impl LocalBroker {
    /// A new, empty broker.
    pub fn new() -> LocalBroker {
        LocalBroker::default()
    }

    fn lock(&self) -> MutexGuard<'_, BrokerState> {
        // A panic while holding the lock cannot leave the maps inconsistent in a way that
        // matters more than losing Live altogether; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One hub's handle on a [`LocalBroker`].
pub struct LocalEngine {
    broker: LocalBroker,
    id: u64,
    sink: EventSink,
    last_ttl: Duration,
}

impl LocalEngine {
    /// An engine on `broker` delivering to `sink`.
    pub fn new(broker: LocalBroker, sink: EventSink) -> LocalEngine {
        let id = {
            let mut state = broker.lock();
            state.next_engine += 1;
            state.next_engine
        };
        sink.health().set_up();
        LocalEngine {
            broker,
            id,
            sink,
            last_ttl: crate::LiveSettings::default().last_frame_ttl(),
        }
    }

    /// The same, keeping a stream's last frame for `ttl` after its last push.
    pub fn with_last_ttl(mut self, ttl: Duration) -> LocalEngine {
        self.last_ttl = ttl;
        self
    }
}

impl LocalStream {
    fn new() -> LocalStream {
        LocalStream {
            epoch: new_epoch().into(),
            top: 0,
            touched: Instant::now(),
            items: VecDeque::new(),
        }
    }

    /// Drops what the policy no longer keeps; a stream untouched past `meta_ttl` starts
    /// over with a new epoch.
    fn expire(&mut self, policy: &HistoryPolicy, now: Instant) {
        if now.duration_since(self.touched) > policy.meta_ttl {
            *self = LocalStream::new();
            return;
        }
        while self
            .items
            .front()
            .is_some_and(|item| now.duration_since(item.at) > policy.ttl)
        {
            self.items.pop_front();
        }
        while self.items.len() > policy.size {
            self.items.pop_front();
        }
    }
}

#[async_trait::async_trait]
impl Engine for LocalEngine {
    fn kind(&self) -> HaEngine {
        HaEngine::Local
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let mut state = self.broker.lock();
        let subs = state.subscribers.entry(channel.to_owned()).or_default();
        if !subs.iter().any(|(id, _)| *id == self.id) {
            subs.push((self.id, self.sink.clone()));
        }
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let mut state = self.broker.lock();
        if let Some(subs) = state.subscribers.get_mut(channel) {
            subs.retain(|(id, _)| *id != self.id);
            if subs.is_empty() {
                state.subscribers.remove(channel);
            }
        }
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        info: Option<&PresenceEntry>,
        history: Option<&HistoryPolicy>,
    ) -> Result<StreamPosition> {
        let now = Instant::now();
        let mut state = self.broker.lock();
        let (offset, epoch) = match history {
            Some(policy) => {
                let stream = state
                    .streams
                    .entry(channel.to_owned())
                    .or_insert_with(LocalStream::new);
                stream.expire(policy, now);
                stream.top += 1;
                stream.touched = now;
                stream.items.push_back(StoredItem {
                    offset: stream.top,
                    data: data.to_owned(),
                    info: info.cloned(),
                    at: now,
                });
                stream.expire(policy, now);
                (stream.top, stream.epoch.clone())
            }
            None => (0, Arc::from("")),
        };
        // Delivered under the lock, so every hub sees a channel's publications in the
        // order of their offsets.
        if let Some(subs) = state.subscribers.get(channel) {
            for (_, sink) in subs {
                sink.publication(
                    channel,
                    Publication {
                        data: data.to_owned(),
                        offset,
                        epoch: epoch.clone(),
                        info: info.cloned(),
                    },
                );
            }
        }
        Ok(StreamPosition {
            offset,
            epoch: epoch.to_string(),
        })
    }

    async fn publish_presence_event(
        &self,
        channel: &str,
        info: &PresenceEntry,
        joined: bool,
    ) -> Result<()> {
        let state = self.broker.lock();
        if let Some(subs) = state.subscribers.get(channel) {
            for (_, sink) in subs {
                sink.presence(channel, info.clone(), joined);
            }
        }
        Ok(())
    }

    async fn history(&self, channel: &str, policy: &HistoryPolicy) -> Result<StoredHistory> {
        let now = Instant::now();
        let mut state = self.broker.lock();
        let stream = state
            .streams
            .entry(channel.to_owned())
            .or_insert_with(LocalStream::new);
        stream.expire(policy, now);
        Ok(StoredHistory {
            position: StreamPosition {
                offset: stream.top,
                epoch: stream.epoch.to_string(),
            },
            publications: stream
                .items
                .iter()
                .map(|item| Publication {
                    data: item.data.clone(),
                    offset: item.offset,
                    epoch: stream.epoch.clone(),
                    info: item.info.clone(),
                })
                .collect(),
        })
    }

    async fn add_presence(
        &self,
        channel: &str,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<()> {
        let expires = Instant::now() + ttl;
        let mut state = self.broker.lock();
        let presence = state.presence.entry(channel.to_owned()).or_default();
        for entry in entries {
            presence.insert(entry.client.clone(), (entry.clone(), expires));
        }
        Ok(())
    }

    async fn remove_presence(&self, channel: &str, clients: &[String]) -> Result<()> {
        let mut state = self.broker.lock();
        if let Some(presence) = state.presence.get_mut(channel) {
            for client in clients {
                presence.remove(client);
            }
            if presence.is_empty() {
                state.presence.remove(channel);
            }
        }
        Ok(())
    }

    async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        let now = Instant::now();
        let mut state = self.broker.lock();
        let Some(presence) = state.presence.get_mut(channel) else {
            return Ok(Vec::new());
        };
        presence.retain(|_, (_, expires)| *expires > now);
        Ok(presence.values().map(|(entry, _)| entry.clone()).collect())
    }

    async fn swap_last(
        &self,
        org: OrgId,
        channel: &str,
        schema: &str,
        frame: &str,
    ) -> Result<Option<String>> {
        let now = Instant::now();
        let ttl = self.last_ttl;
        let mut state = self.broker.lock();
        if state
            .last_swept
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            state.last_swept = Some(now);
            state
                .last
                .retain(|_, (_, _, _, at)| now.duration_since(*at) < ttl);
        }
        let old = state.last.insert(
            channel.to_owned(),
            (org, schema.to_owned(), frame.to_owned(), now),
        );
        Ok(old
            .filter(|(_, _, _, at)| now.duration_since(*at) < ttl)
            .map(|(_, schema, _, _)| schema))
    }

    async fn last(&self, channel: &str) -> Result<Option<String>> {
        let state = self.broker.lock();
        Ok(state
            .last
            .get(channel)
            .filter(|(_, _, _, at)| at.elapsed() < self.last_ttl)
            .map(|(_, _, frame, _)| frame.clone()))
    }

    async fn list_last(&self, org: OrgId) -> Result<Vec<(String, String)>> {
        let state = self.broker.lock();
        let mut list: Vec<(String, String)> = state
            .last
            .iter()
            .filter(|(_, (owner, _, _, at))| *owner == org && at.elapsed() < self.last_ttl)
            .map(|(channel, (_, _, frame, _))| (channel.clone(), frame.clone()))
            .collect();
        list.sort();
        Ok(list)
    }

    async fn shutdown(&self) {
        let mut state = self.broker.lock();
        for subs in state.subscribers.values_mut() {
            subs.retain(|(id, _)| *id != self.id);
        }
        state.subscribers.retain(|_, subs| !subs.is_empty());
    }
}
