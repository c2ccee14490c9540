//! Channels published on while the engine was down. Those publications reached this
//! instance's subscribers only; when the engine is back, this instance tells the others
//! which channels they were, and each resubscribes its own subscribers of them (2500), who
//! recover from history or reload, instead of silently missing what was published here.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::hub::HubInner;

/// The engine channel of the announcements: no Grafana channel is named so (theirs start
/// with the org id).
pub(crate) const STALE_CHANNEL: &str = "tandem/stale-channels";
/// Past this many channels an announcement names none and every subscriber resubscribes.
const MAX_NAMED: usize = 1_000;

/// The channels published on locally since the engine was last up.
#[derive(Debug, Default)]
pub(crate) struct StaleChannels {
    channels: Mutex<HashSet<Arc<str>>>,
}

impl StaleChannels {
    fn lock(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that `wire` was published on while the engine was down.
    pub(crate) fn mark(&self, wire: &Arc<str>) {
        let mut channels = self.lock();
        if !channels.contains(wire) {
            channels.insert(wire.clone());
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Announcement<'a> {
    #[serde(borrow)]
    node: Cow<'a, str>,
    /// `None`: too many to name, every channel is stale.
    #[serde(borrow)]
    channels: Option<Vec<Cow<'a, str>>>,
}

/// Tells every instance which channels this one published on while its engine was down
/// (called when the engine is back); kept for the next return if the engine fails again.
pub(crate) async fn announce(inner: &HubInner) {
    let channels: Vec<Arc<str>> = inner.stale.lock().drain().collect();
    if channels.is_empty() {
        return;
    }
    let named = (channels.len() <= MAX_NAMED)
        .then(|| channels.iter().map(|c| Cow::Borrowed(c.as_ref())).collect());
    let announcement = Announcement {
        node: Cow::Borrowed(&inner.node_id),
        channels: named,
    };
    let Ok(data) = serde_json::value::to_raw_value(&announcement) else {
        return;
    };
    match inner.engine.publish(STALE_CHANNEL, &data, None, None).await {
        Ok(_) => tracing::info!(
            channels = channels.len(),
            "told the other instances which live channels were published on while the engine was down"
        ),
        Err(err) => {
            tracing::warn!(error = %err, "could not announce the live channels published on while the engine was down; retried when it is back");
            let mut stale = inner.stale.lock();
            stale.extend(channels);
        }
    }
}

/// Another instance's announcement: this instance's subscribers of those channels
/// resubscribe.
pub(crate) fn received(inner: &HubInner, data: &RawValue) {
    let Ok(announcement) = serde_json::from_str::<Announcement<'_>>(data.get()) else {
        tracing::warn!("a malformed stale-channels announcement was dropped");
        return;
    };
    if announcement.node == inner.node_id {
        return;
    }
    match announcement.channels {
        Some(channels) => {
            let wires: Vec<&str> = channels.iter().map(AsRef::as_ref).collect();
            inner.registry.reset_channels(&wires);
        }
        None => inner.registry.reset(),
    }
}
