//! Grafana's testdata streams, produced once per cluster.
//!
//! Every instance with local subscribers to a testdata channel competes for the channel's
//! lease; the holder produces (publishing through the engine, so every instance's
//! subscribers get the points), renews the lease, and releases it when its own
//! subscribers are gone or it shuts down, so another instance with subscribers takes
//! over. A holder that dies stops renewing and its lease lapses after
//! `producer_lease_ttl`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::RngExt;
use tandem_storage::Lease;
use tokio_util::sync::CancellationToken;

use crate::channel::{Channel, TestStream};
use crate::frame::{Field, Frame, Values};
use crate::hub::HubInner;

/// The testdata frame with no rows: what `GET /api/live/list` shows.
pub(crate) fn schema_frame() -> Frame {
    walker_frame(Vec::new(), Vec::new(), Vec::new(), Vec::new())
}

/// The producer task of one testdata channel on one instance.
pub(crate) async fn run(
    inner: Arc<HubInner>,
    channel: Channel,
    stream: TestStream,
    token: CancellationToken,
) {
    let key = format!("live:producer:{}", channel.wire());
    let ttl = inner
        .settings
        .producer_lease_ttl
        .max(Duration::from_millis(300));
    let retry = ttl / 3;
    loop {
        let lease = match &inner.leases {
            None => None,
            Some(leases) => match leases.claim(&key, &inner.node_id, ttl).await {
                Ok(Some(lease)) => Some(lease),
                Ok(None) => {
                    if wait(&token, retry).await {
                        return;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %err, channel = %channel, "claiming a producer lease failed");
                    if wait(&token, retry).await {
                        return;
                    }
                    continue;
                }
            },
        };
        tracing::debug!(channel = %channel, node = %inner.node_id, "producing a testdata stream");
        inner
            .counters
            .producers_running
            .fetch_add(1, Ordering::Relaxed);
        let lease = produce(&inner, &channel, stream, &token, lease, ttl).await;
        inner
            .counters
            .producers_running
            .fetch_sub(1, Ordering::Relaxed);
        match lease {
            // Lost to another holder (or the database): compete again.
            None => continue,
            Some(lease) => {
                // A crash leaves the lease to lapse; a shutdown or the last local
                // subscriber leaving hands it over at once.
                let crashed =
                    inner.cancel.is_cancelled() && !inner.graceful.load(Ordering::Acquire);
                if let (Some(lease), Some(leases), false) = (lease, &inner.leases, crashed)
                    && let Err(err) = leases.release(&lease).await
                {
                    tracing::debug!(error = %err, "releasing a producer lease failed");
                }
                return;
            }
        }
    }
}

/// Produces until cancelled (returns `Some(lease)`) or the lease is lost (`None`).
async fn produce(
    inner: &HubInner,
    channel: &Channel,
    stream: TestStream,
    token: &CancellationToken,
    mut lease: Option<Lease>,
    ttl: Duration,
) -> Option<Option<Lease>> {
    let (interval, drop) = match stream {
        TestStream::Random2s => (Duration::from_secs(2), 0.0),
        TestStream::RandomFlakey => (Duration::from_millis(100), 0.75),
        TestStream::Random20Hz => (Duration::from_millis(50), 0.0),
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut renew = tokio::time::interval(ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.tick().await;
    let mut walker = rand::rng().random_range(0.0..100.0);
    loop {
        tokio::select! {
            () = token.cancelled() => return Some(lease),
            _ = renew.tick() => {
                if let (Some(current), Some(leases)) = (&lease, &inner.leases) {
                    match leases.renew(current, ttl).await {
                        Ok(Some(renewed)) => lease = Some(renewed),
                        Ok(None) => return None,
                        Err(err) => {
                            // Fencing: without a confirmed renewal, stop before the lease
                            // could have lapsed and been taken.
                            tracing::warn!(error = %err, "renewing a producer lease failed");
                            return None;
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                let (value, min, max) = {
                    let mut rng = rand::rng();
                    if drop > 0.0 && rng.random_range(0.0..1.0) < drop {
                        continue;
                    }
                    walker += rng.random_range(-0.5..0.5);
                    let spread = 50.0;
                    (
                        walker,
                        walker - (rng.random_range(0.0..1.0) * spread + 0.01),
                        walker + (rng.random_range(0.0..1.0) * spread + 0.01),
                    )
                };
                let frame = walker_frame(
                    vec![tandem_storage::now_ms()],
                    vec![Some(value)],
                    vec![Some(min)],
                    vec![Some(max)],
                );
                if let Err(err) = inner.publish_frame(channel, &frame).await {
                    tracing::debug!(error = %err, "publishing a testdata point failed");
                }
            }
        }
    }
}

fn walker_frame(
    time: Vec<i64>,
    value: Vec<Option<f64>>,
    min: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
) -> Frame {
    let field = |name: &str, values| Field {
        name: name.to_owned(),
        labels: BTreeMap::new(),
        values,
    };
    Frame {
        name: "testdata".to_owned(),
        fields: vec![
            field("Time", Values::Time(time)),
            field("Value", Values::Number(value)),
            field("Min", Values::Number(min)),
            field("Max", Values::Number(max)),
        ],
    }
}

/// Whether the token was cancelled during the wait.
async fn wait(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}
