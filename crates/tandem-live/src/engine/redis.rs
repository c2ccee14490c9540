//! The Redis engine (Grafana's `ha_engine = redis`): pub/sub for fan-out, a hash and a list
//! per channel for history, a hash and a sorted set per channel for presence, a hash per
//! org for the last frames of stream channels.
//!
//! Keys and channels start with `ha_prefix` (`tandem` when empty):
//! `<p>.pub.<channel>` (pub/sub), `<p>.meta.<channel>` (epoch `e`, top offset `s`),
//! `<p>.history.<channel>` (list of `offset:epoch:json`), `<p>.presence.data.<channel>`
//! and `<p>.presence.expire.<channel>`, `<p>.last.<org>` and `<p>.schema.<org>`.
//! A publication with history is one Lua script (offset, list, publish), so offsets and
//! pub/sub order agree on every instance.
//!
//! One dedicated pub/sub connection per instance carries every channel with local
//! subscribers; commands use a reconnecting connection manager. When the pub/sub
//! connection is lost the instance is degraded, reconnects with backoff, subscribes again
//! and tells its subscribers to recover.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink};
use redis::{AsyncCommands, IntoConnectionInfo, Script};
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::OrgId;
use crate::engine::{
    Engine, EventSink, HistoryPolicy, PresenceEntry, Publication, StoredHistory, StreamPosition,
    ms, new_epoch, now_ms, reconnect_delay,
};
use crate::settings::{HaEngine, LiveSettings};
use crate::{Error, Result};

/// How long one connection attempt or command may take before it counts as a failure.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The Redis engine of one instance.
pub struct RedisEngine {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    address: String,
    prefix: String,
    sink: EventSink,
    commands: Mutex<Option<ConnectionManager>>,
    pubsub: tokio::sync::Mutex<PubState>,
    scripts: Scripts,
    /// How long a last frame outlives its channel's last push.
    last_ttl: Duration,
}

struct PubState {
    channels: HashSet<String>,
    sink: Option<PubSubSink>,
}

struct Scripts {
    publish: Script,
    history: Script,
    presence: Script,
    swap_last: Script,
}

impl RedisEngine {
    /// Connects (waiting at most a few seconds) and starts the engine's connection task;
    /// an unreachable Redis is logged and reported as degraded, and the task keeps trying.
    pub async fn start(
        settings: &LiveSettings,
        sink: EventSink,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Result<RedisEngine> {
        let address = settings.ha_engine_address.trim();
        let url = if address.contains("://") {
            address.to_owned()
        } else {
            format!("redis://{address}")
        };
        let invalid = |err: redis::RedisError| {
            Error::InvalidSettings(format!("[live] ha_engine_address {address:?}: {err}"))
        };
        let mut info = url.as_str().into_connection_info().map_err(invalid)?;
        if !settings.ha_engine_password.is_empty() {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(&settings.ha_engine_password);
            info = info.set_redis_settings(redis);
        }
        let client = redis::Client::open(info).map_err(invalid)?;
        sink.health().set_connecting();
        let shared = Arc::new(Shared {
            client,
            address: address.to_owned(),
            prefix: settings.prefix().to_owned(),
            last_ttl: settings.last_frame_ttl(),
            sink,
            commands: Mutex::new(None),
            pubsub: tokio::sync::Mutex::new(PubState {
                channels: HashSet::new(),
                sink: None,
            }),
            scripts: Scripts {
                publish: Script::new(PUBLISH),
                history: Script::new(HISTORY),
                presence: Script::new(PRESENCE),
                swap_last: Script::new(SWAP_LAST),
            },
        });
        let first = connect(&shared).await;
        tasks.spawn(run(shared.clone(), first, cancel.child_token()));
        Ok(RedisEngine { shared })
    }
}

impl Shared {
    fn key(&self, kind: &str, channel: &str) -> String {
        format!("{}.{kind}.{channel}", self.prefix)
    }

    fn lock_commands(&self) -> MutexGuard<'_, Option<ConnectionManager>> {
        self.commands
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn commands(&self) -> Result<ConnectionManager> {
        self.lock_commands().clone().ok_or_else(|| {
            Error::EngineUnavailable(format!("redis at {} is not connected", self.address))
        })
    }

    async fn connect_commands(&self) -> Result<()> {
        if self.lock_commands().is_some() {
            return Ok(());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let manager = self
            .client
            .get_connection_manager_with_config(config)
            .await
            .map_err(Error::Redis)?;
        *self.lock_commands() = Some(manager);
        Ok(())
    }

    fn handle(&self, message: &redis::Msg) {
        let Some(channel) = message
            .get_channel_name()
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix(".pub."))
        else {
            return;
        };
        let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
            return;
        };
        match payload.split_at_checked(1) {
            Some(("p", entry)) => match parse_entry(entry) {
                Some((offset, epoch, data)) => self.sink.publication(
                    channel,
                    Publication {
                        data,
                        offset,
                        epoch: epoch.into(),
                        info: None,
                    },
                ),
                None => tracing::warn!(channel, "a malformed publication from redis was dropped"),
            },
            Some((kind @ ("j" | "l"), entry)) => {
                if let Ok(info) = serde_json::from_str::<PresenceEntry>(entry) {
                    self.sink.presence(channel, info, kind == "j");
                }
            }
            _ => {}
        }
    }
}

/// The connection task: connect, subscribe every wanted channel, read, and on loss
/// start over with backoff.
async fn run(
    shared: Arc<Shared>,
    first: Result<redis::aio::PubSubStream>,
    cancel: CancellationToken,
) {
    let mut attempt = 0u32;
    let mut connected_before = false;
    let mut failed_before = false;
    let mut next = Some(first);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let outcome = match next.take() {
            Some(outcome) => outcome,
            None => connect(&shared).await,
        };
        match outcome {
            Ok(mut stream) => {
                shared.sink.health().set_up();
                attempt = 0;
                if connected_before || failed_before {
                    tracing::info!(address = %shared.address, "the live redis engine is back; subscribers recover");
                    shared.sink.reset();
                }
                connected_before = true;
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        message = stream.next() => match message {
                            Some(message) => shared.handle(&message),
                            None => break,
                        },
                    }
                }
                shared.pubsub.lock().await.sink = None;
                // The command connection most likely went with the subscription one; a
                // fresh one is made on reconnecting, so the first command after an outage
                // does not fail on the dead socket.
                *shared.lock_commands() = None;
                shared.sink.health().set_down();
                tracing::error!(address = %shared.address, "lost the live redis engine; serving this instance's subscribers until it returns");
            }
            Err(err) => {
                if !failed_before || connected_before {
                    tracing::error!(address = %shared.address, error = %err, "cannot reach the live redis engine; live is degraded until it answers");
                }
                failed_before = true;
                connected_before = false;
                shared.sink.health().set_down();
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(reconnect_delay(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

async fn connect(shared: &Shared) -> Result<redis::aio::PubSubStream> {
    let pubsub = tokio::time::timeout(TIMEOUT, shared.client.get_async_pubsub())
        .await
        .map_err(|_| Error::EngineUnavailable("connecting timed out".into()))?
        .map_err(Error::Redis)?;
    shared.connect_commands().await?;
    let (mut sink, stream) = pubsub.split();
    let mut state = shared.pubsub.lock().await;
    let keys: Vec<String> = state
        .channels
        .iter()
        .map(|channel| shared.key("pub", channel))
        .collect();
    if !keys.is_empty() {
        timed(sink.subscribe(&keys)).await?;
    }
    state.sink = Some(sink);
    Ok(stream)
}

async fn timed<T>(future: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .map_err(|_| Error::EngineUnavailable("redis did not answer in time".into()))?
        .map_err(Error::Redis)
}

/// `offset:epoch:json`.
fn parse_entry(entry: &str) -> Option<(u64, &str, Box<RawValue>)> {
    let (offset, rest) = entry.split_once(':')?;
    let (epoch, data) = rest.split_once(':')?;
    let offset = offset.parse().ok()?;
    let data = RawValue::from_string(data.to_owned()).ok()?;
    Some((offset, epoch, data))
}

/// The org a wire channel name starts with.
fn org_of(channel: &str) -> &str {
    channel.split_once('/').map_or("0", |(org, _)| org)
}

#[async_trait::async_trait]
impl Engine for RedisEngine {
    fn kind(&self) -> HaEngine {
        HaEngine::Redis
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let shared = &self.shared;
        let mut state = shared.pubsub.lock().await;
        state.channels.insert(channel.to_owned());
        match state.sink.as_mut() {
            Some(sink) => timed(sink.subscribe(shared.key("pub", channel))).await,
            None => Err(Error::EngineUnavailable("redis is not connected".into())),
        }
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let shared = &self.shared;
        let mut state = shared.pubsub.lock().await;
        state.channels.remove(channel);
        match state.sink.as_mut() {
            Some(sink) => timed(sink.unsubscribe(shared.key("pub", channel))).await,
            None => Ok(()),
        }
    }

    async fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        _info: Option<&PresenceEntry>,
        history: Option<&HistoryPolicy>,
    ) -> Result<StreamPosition> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let topic = shared.key("pub", channel);
        let Some(policy) = history else {
            let payload = format!("p0::{}", data.get());
            let _: i64 = timed(conn.publish(&topic, payload)).await?;
            return Ok(StreamPosition::default());
        };
        let (offset, epoch): (u64, String) = timed(
            shared
                .scripts
                .publish
                .key(shared.key("meta", channel))
                .key(shared.key("history", channel))
                .key(&topic)
                .arg(data.get())
                .arg(new_epoch())
                .arg(policy.size.max(1))
                .arg(ms(policy.ttl).max(1))
                .arg(ms(policy.meta_ttl).max(1))
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(StreamPosition { offset, epoch })
    }

    async fn publish_presence_event(
        &self,
        channel: &str,
        info: &PresenceEntry,
        joined: bool,
    ) -> Result<()> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let json = serde_json::to_string(info).map_err(|err| Error::EngineData(err.to_string()))?;
        let payload = format!("{}{json}", if joined { "j" } else { "l" });
        let _: i64 = timed(conn.publish(shared.key("pub", channel), payload)).await?;
        Ok(())
    }

    async fn history(&self, channel: &str, policy: &HistoryPolicy) -> Result<StoredHistory> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let (top, epoch, items): (u64, String, Vec<String>) = timed(
            shared
                .scripts
                .history
                .key(shared.key("meta", channel))
                .key(shared.key("history", channel))
                .arg(new_epoch())
                .arg(ms(policy.meta_ttl).max(1))
                .invoke_async(&mut conn),
        )
        .await?;
        let epoch_arc: Arc<str> = Arc::from(epoch.as_str());
        let publications = items
            .iter()
            .filter_map(|item| parse_entry(item))
            .filter(|(_, item_epoch, _)| *item_epoch == epoch)
            .map(|(offset, _, data)| Publication {
                data,
                offset,
                epoch: epoch_arc.clone(),
                info: None,
            })
            .collect();
        Ok(StoredHistory {
            position: StreamPosition { offset: top, epoch },
            publications,
        })
    }

    async fn add_presence(
        &self,
        channel: &str,
        entries: &[PresenceEntry],
        ttl: Duration,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let expires = now_ms().saturating_add(ms(ttl));
        let data_key = shared.key("presence.data", channel);
        let expire_key = shared.key("presence.expire", channel);
        let mut pipe = redis::pipe();
        for entry in entries {
            let json =
                serde_json::to_string(entry).map_err(|err| Error::EngineData(err.to_string()))?;
            pipe.zadd(&expire_key, &entry.client, expires).ignore();
            pipe.hset(&data_key, &entry.client, json).ignore();
        }
        let keep = ms(ttl).saturating_mul(2).max(1);
        pipe.pexpire(&expire_key, keep).ignore();
        pipe.pexpire(&data_key, keep).ignore();
        let () = timed(pipe.query_async(&mut conn)).await?;
        Ok(())
    }

    async fn remove_presence(&self, channel: &str, clients: &[String]) -> Result<()> {
        if clients.is_empty() {
            return Ok(());
        }
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let mut pipe = redis::pipe();
        pipe.zrem(shared.key("presence.expire", channel), clients)
            .ignore();
        pipe.hdel(shared.key("presence.data", channel), clients)
            .ignore();
        let () = timed(pipe.query_async(&mut conn)).await?;
        Ok(())
    }

    async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let flat: Vec<String> = timed(
            shared
                .scripts
                .presence
                .key(shared.key("presence.expire", channel))
                .key(shared.key("presence.data", channel))
                .arg(now_ms())
                .invoke_async(&mut conn),
        )
        .await?;
        Ok(flat
            .chunks(2)
            .filter_map(|pair| pair.get(1))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect())
    }

    async fn swap_last(
        &self,
        org: OrgId,
        channel: &str,
        schema: &str,
        frame: &str,
    ) -> Result<Option<String>> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        timed(
            shared
                .scripts
                .swap_last
                .key(shared.key("schema", &org.to_string()))
                .key(shared.key("last", &org.to_string()))
                .key(shared.key("lastexp", &org.to_string()))
                .arg(channel)
                .arg(schema)
                .arg(frame)
                .arg(now_ms())
                .arg(ms(shared.last_ttl).max(1))
                .invoke_async(&mut conn),
        )
        .await
    }

    async fn last(&self, channel: &str) -> Result<Option<String>> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let org = org_of(channel);
        let (frame, expires): (Option<String>, Option<i64>) = timed(
            redis::pipe()
                .hget(shared.key("last", org), channel)
                .zscore(shared.key("lastexp", org), channel)
                .query_async(&mut conn),
        )
        .await?;
        Ok(frame.filter(|_| expires.is_none_or(|at| at > now_ms())))
    }

    async fn list_last(&self, org: OrgId) -> Result<Vec<(String, String)>> {
        let shared = &self.shared;
        let mut conn = shared.commands()?;
        let org = org.to_string();
        let (mut list, expired): (Vec<(String, String)>, Vec<String>) = timed(
            redis::pipe()
                .hgetall(shared.key("last", &org))
                .zrangebyscore(shared.key("lastexp", &org), "-inf", now_ms())
                .query_async(&mut conn),
        )
        .await?;
        list.retain(|(channel, _)| !expired.contains(channel));
        list.sort();
        Ok(list)
    }

    async fn shutdown(&self) {
        let mut state = self.shared.pubsub.lock().await;
        state.sink = None;
        state.channels.clear();
        *self.shared.lock_commands() = None;
    }
}

/// KEYS: meta, history list, pub/sub channel. ARGV: data, new epoch, size, ttl ms,
/// meta ttl ms. Returns {offset, epoch}.
const PUBLISH: &str = r"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('hset', KEYS[1], 'e', epoch)
end
local offset = redis.call('hincrby', KEYS[1], 's', 1)
redis.call('pexpire', KEYS[1], ARGV[5])
local entry = offset .. ':' .. epoch .. ':' .. ARGV[1]
redis.call('rpush', KEYS[2], entry)
redis.call('ltrim', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('pexpire', KEYS[2], ARGV[4])
redis.call('publish', KEYS[3], 'p' .. entry)
return {offset, epoch}
";

/// KEYS: meta, history list. ARGV: new epoch, meta ttl ms. Returns {top, epoch, items}.
const HISTORY: &str = r"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('hsetnx', KEYS[1], 's', 0)
  redis.call('pexpire', KEYS[1], ARGV[2])
end
local top = redis.call('hget', KEYS[1], 's') or '0'
return {top, epoch, redis.call('lrange', KEYS[2], 0, -1)}
";

/// KEYS: expiry set, data hash. ARGV: now ms. Drops expired entries, returns the rest.
const PRESENCE: &str = r"
local expired = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
if #expired > 0 then
  redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
  for i = 1, #expired, 500 do
    redis.call('hdel', KEYS[2], unpack(expired, i, math.min(i + 499, #expired)))
  end
end
return redis.call('hgetall', KEYS[2])
";

/// KEYS: schema hash, frame hash of the org. ARGV: channel, schema, frame. Returns the
/// previous schema.
/// KEYS: schemas hash, last frames hash, expiry sorted set (score: expiry ms), all of one
/// org. ARGV: channel, schema, frame, now ms, ttl ms. Returns the unexpired schema stored
/// before. Sweeps up to 64 expired channels of the org, and lets the three keys of an org
/// nobody pushes to expire whole.
const SWAP_LAST: &str = r"
local old = redis.call('hget', KEYS[1], ARGV[1])
local expires = redis.call('zscore', KEYS[3], ARGV[1])
if old and expires and tonumber(expires) <= tonumber(ARGV[4]) then
  old = false
end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hset', KEYS[2], ARGV[1], ARGV[3])
redis.call('zadd', KEYS[3], tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[1])
local gone = redis.call('zrangebyscore', KEYS[3], '-inf', ARGV[4], 'LIMIT', 0, 64)
for _, channel in ipairs(gone) do
  redis.call('hdel', KEYS[1], channel)
  redis.call('hdel', KEYS[2], channel)
  redis.call('zrem', KEYS[3], channel)
end
for i = 1, 3 do
  redis.call('pexpire', KEYS[i], ARGV[5])
end
return old
";
