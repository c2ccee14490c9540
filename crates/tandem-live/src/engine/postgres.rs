//! The PostgreSQL engine (Tandem's own `ha_engine = postgres`): `LISTEN/NOTIFY` for
//! fan-out and tables in Tandem's database for history, presence and last frames, so a
//! PostgreSQL deployment needs no Redis.
//!
//! Every instance LISTENs on one notification channel (`<prefix>_live`) on a connection
//! of its own and drops what is for channels it has no subscribers for: `LISTEN` per Live
//! channel would make the listener's subscriptions change between receives, which
//! sqlx's listener cannot do safely while it waits.
//! A notification carries `{"c":channel,"o":offset,"e":epoch,"d":data}`; a payload that
//! would exceed NOTIFY's 8000 bytes is left in a table and the notification names its row
//! (`"h":true` for a history row, `"m":id` for `live_message`), which the listener reads
//! before the next notification, so order is kept.
//! A publish with history is one transaction: the `live_stream` row lock orders the
//! channel's offsets, and notifications are delivered in commit order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tandem_storage::{Backend, Database};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::channel::OrgId;
use crate::engine::{
    Engine, EventSink, HistoryPolicy, PresenceEntry, Publication, StoredHistory, StreamPosition,
    ms, new_epoch, now_ms, raw, reconnect_delay,
};
use crate::settings::{HaEngine, LiveSettings};
use crate::{Error, Result};

/// NOTIFY refuses payloads of 8000 bytes or more; leave room for the envelope.
const MAX_INLINE: usize = 7900;
/// How long a large payload waits in `live_message` for its readers.
const MESSAGE_TTL: Duration = Duration::from_secs(60);
/// How often expired rows are deleted.
const CLEANUP_EVERY: Duration = Duration::from_secs(30);
/// How long connecting the listener may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL engine of one instance.
pub struct PostgresEngine {
    shared: Arc<Shared>,
}

/// How often one engine deletes expired last frames (at most; as often as the TTL when
/// that is shorter).
const LAST_SWEEP_MS: i64 = 60_000;

struct Shared {
    pool: PgPool,
    listener_pool: PgPool,
    topic: String,
    sink: EventSink,
    channels: Mutex<HashSet<String>>,
    history_ttl: Duration,
    /// How long a last frame outlives its channel's last push.
    last_ttl_ms: i64,
    /// When this engine last deleted expired last frames (Unix ms).
    last_swept: std::sync::atomic::AtomicI64,
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    c: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "is_zero")]
    o: u64,
    #[serde(default, borrow, skip_serializing_if = "str::is_empty")]
    e: std::borrow::Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    d: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    h: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    j: Option<PresenceEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<PresenceEntry>,
}

impl<'a> Envelope<'a> {
    fn new(channel: &'a str) -> Envelope<'a> {
        Envelope {
            c: channel.into(),
            o: 0,
            e: "".into(),
            d: None,
            h: false,
            m: None,
            j: None,
            l: None,
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl PostgresEngine {
    /// Starts the engine on Tandem's PostgreSQL database: connects the listener (waiting
    /// a few seconds at most; unreachable is logged and degraded) and starts its tasks.
    pub async fn start(
        database: Database,
        settings: &LiveSettings,
        sink: EventSink,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Result<PostgresEngine> {
        if database.backend() != Backend::Postgres {
            return Err(Error::InvalidSettings(
                "ha_engine = postgres needs [database] type = postgres".into(),
            ));
        }
        let pool = database.connection().get_postgres_connection_pool().clone();
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(TIMEOUT)
            .connect_lazy_with((*pool.connect_options()).clone());
        let topic: String = format!("{}_live", settings.prefix())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        sink.health().set_connecting();
        let shared = Arc::new(Shared {
            pool,
            listener_pool,
            topic,
            sink,
            channels: Mutex::new(HashSet::new()),
            history_ttl: settings.history_ttl,
            last_ttl_ms: ms(settings.last_frame_ttl()),
            last_swept: std::sync::atomic::AtomicI64::new(0),
        });
        let first = shared.listen().await;
        tasks.spawn(listen_loop(shared.clone(), first, cancel.child_token()));
        tasks.spawn(cleanup_loop(shared.clone(), cancel.child_token()));
        Ok(PostgresEngine { shared })
    }
}

impl Shared {
    fn lock_channels(&self) -> MutexGuard<'_, HashSet<String>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn listen(&self) -> Result<PgListener> {
        let connect = async {
            let mut listener = PgListener::connect_with(&self.listener_pool).await?;
            listener.eager_reconnect(false);
            listener.listen(&self.topic).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        tokio::time::timeout(TIMEOUT, connect)
            .await
            .map_err(|_| Error::EngineUnavailable("connecting the listener timed out".into()))?
            .map_err(Error::Postgres)
    }

    /// Handles one notification; `false` when a referenced row could not be read (the
    /// publication is lost, so subscribers must recover).
    async fn handle(&self, payload: &str) -> bool {
        let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(payload) else {
            tracing::warn!("a malformed live notification was dropped");
            return true;
        };
        if !self.lock_channels().contains(envelope.c.as_ref()) {
            return true;
        }
        if let Some(id) = envelope.m {
            let stored: std::result::Result<Option<(String,)>, _> =
                sqlx::query_as("SELECT payload FROM live_message WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await;
            return match stored {
                Ok(Some((payload,))) => Box::pin(self.handle(&payload)).await,
                Ok(None) | Err(_) => false,
            };
        }
        let channel = envelope.c.as_ref();
        if let Some(info) = envelope.j {
            self.sink.presence(channel, info, true);
            return true;
        }
        if let Some(info) = envelope.l {
            self.sink.presence(channel, info, false);
            return true;
        }
        let data = match (envelope.d, envelope.h) {
            (Some(data), _) => data.to_owned(),
            (None, true) => {
                let stored: std::result::Result<Option<(String,)>, _> = sqlx::query_as(
                    "SELECT data FROM live_publication WHERE channel = $1 AND pub_offset = $2 AND epoch = $3",
                )
                .bind(channel)
                .bind(i64::try_from(envelope.o).unwrap_or(i64::MAX))
                .bind(envelope.e.as_ref())
                .fetch_optional(&self.pool)
                .await;
                match stored {
                    Ok(Some((data,))) => match raw(data) {
                        Ok(data) => data,
                        Err(_) => return false,
                    },
                    Ok(None) | Err(_) => return false,
                }
            }
            (None, false) => return true,
        };
        self.sink.publication(
            channel,
            Publication {
                data,
                offset: envelope.o,
                epoch: envelope.e.as_ref().into(),
                info: None,
            },
        );
        true
    }

    /// Sends `envelope` on the topic inside `tx`, through `live_message` when too large.
    async fn notify(
        &self,
        tx: &mut sqlx::PgConnection,
        envelope: &Envelope<'_>,
        fallback: impl FnOnce() -> Envelope<'static>,
    ) -> Result<()> {
        let json =
            serde_json::to_string(envelope).map_err(|err| Error::EngineData(err.to_string()))?;
        let payload = if json.len() <= MAX_INLINE {
            json
        } else {
            let mut small = fallback();
            if !small.h {
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO live_message (payload, created_at) VALUES ($1, $2) RETURNING id",
                )
                .bind(&json)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await
                .map_err(Error::Postgres)?;
                small.m = Some(id);
            }
            serde_json::to_string(&small).map_err(|err| Error::EngineData(err.to_string()))?
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.topic)
            .bind(payload)
            .execute(&mut *tx)
            .await
            .map_err(Error::Postgres)?;
        Ok(())
    }
}

async fn listen_loop(shared: Arc<Shared>, first: Result<PgListener>, cancel: CancellationToken) {
    let mut next = Some(first);
    let mut attempt = 0u32;
    let mut connected_before = false;
    let mut failed_before = false;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let outcome = match next.take() {
            Some(outcome) => outcome,
            None => shared.listen().await,
        };
        match outcome {
            Ok(mut listener) => {
                shared.sink.health().set_up();
                attempt = 0;
                if connected_before || failed_before {
                    tracing::info!("the live postgres engine is back; subscribers recover");
                    shared.sink.reset();
                }
                connected_before = true;
                loop {
                    let notification = tokio::select! {
                        () = cancel.cancelled() => return,
                        notification = listener.try_recv() => notification,
                    };
                    match notification {
                        Ok(Some(notification)) => {
                            if !shared.handle(notification.payload()).await {
                                shared.sink.reset();
                            }
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                shared.sink.health().set_down();
                tracing::error!(
                    "lost the live postgres listener; serving this instance's subscribers until it returns"
                );
            }
            Err(err) => {
                if !failed_before || connected_before {
                    tracing::error!(error = %err, "cannot listen on the live postgres engine; live is degraded until it answers");
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

/// Deletes expired publications, messages, presence and streams; every instance does,
/// and the deletes are idempotent.
async fn cleanup_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut ticker = tokio::time::interval(CLEANUP_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        let statements: [(&'static str, i64); 4] = [
            (
                "DELETE FROM live_publication WHERE created_at < $1",
                now - ms(shared.history_ttl),
            ),
            (
                "DELETE FROM live_message WHERE created_at < $1",
                now - ms(MESSAGE_TTL),
            ),
            ("DELETE FROM live_presence WHERE expires_at < $1", now),
            ("DELETE FROM live_stream WHERE expires_at < $1", now),
        ];
        for (sql, before) in statements {
            if let Err(err) = sqlx::query(sql).bind(before).execute(&shared.pool).await {
                tracing::debug!(error = %err, "live cleanup failed");
                break;
            }
        }
    }
}

fn offset(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[async_trait::async_trait]
impl Engine for PostgresEngine {
    fn kind(&self) -> HaEngine {
        HaEngine::Postgres
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        self.shared.lock_channels().insert(channel.to_owned());
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.shared.lock_channels().remove(channel);
        Ok(())
    }

    async fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        _info: Option<&PresenceEntry>,
        history: Option<&HistoryPolicy>,
    ) -> Result<StreamPosition> {
        let shared = &self.shared;
        let mut tx = shared.pool.begin().await.map_err(Error::Postgres)?;
        let position = match history {
            Some(policy) => {
                let now = now_ms();
                let (epoch, top): (String, i64) = sqlx::query_as(
                    "INSERT INTO live_stream (channel, epoch, top_offset, expires_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (channel) DO UPDATE SET \
                       epoch = CASE WHEN live_stream.expires_at < $4 THEN EXCLUDED.epoch ELSE live_stream.epoch END, \
                       top_offset = CASE WHEN live_stream.expires_at < $4 THEN 1 ELSE live_stream.top_offset + 1 END, \
                       expires_at = EXCLUDED.expires_at \
                     RETURNING epoch, top_offset",
                )
                .bind(channel)
                .bind(new_epoch())
                .bind(now.saturating_add(ms(policy.meta_ttl)))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(Error::Postgres)?;
                sqlx::query(
                    "INSERT INTO live_publication (channel, pub_offset, epoch, data, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (channel, pub_offset) DO UPDATE SET epoch = EXCLUDED.epoch, data = EXCLUDED.data, created_at = EXCLUDED.created_at",
                )
                .bind(channel)
                .bind(top)
                .bind(&epoch)
                .bind(data.get())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(Error::Postgres)?;
                let keep = i64::try_from(policy.size).unwrap_or(i64::MAX);
                sqlx::query(
                    "DELETE FROM live_publication WHERE channel = $1 AND (pub_offset <= $2 OR epoch <> $3)",
                )
                .bind(channel)
                .bind(top.saturating_sub(keep))
                .bind(&epoch)
                .execute(&mut *tx)
                .await
                .map_err(Error::Postgres)?;
                StreamPosition {
                    offset: offset(top),
                    epoch,
                }
            }
            None => StreamPosition::default(),
        };
        let mut envelope = Envelope::new(channel);
        envelope.o = position.offset;
        envelope.e = position.epoch.as_str().into();
        envelope.d = Some(data);
        let has_history = history.is_some();
        let (owned_channel, owned_epoch, top) =
            (channel.to_owned(), position.epoch.clone(), position.offset);
        shared
            .notify(&mut tx, &envelope, move || {
                let mut small = Envelope::new("");
                small.c = owned_channel.into();
                small.o = top;
                small.e = owned_epoch.into();
                small.h = has_history;
                small
            })
            .await?;
        tx.commit().await.map_err(Error::Postgres)?;
        Ok(position)
    }

    async fn publish_presence_event(
        &self,
        channel: &str,
        info: &PresenceEntry,
        joined: bool,
    ) -> Result<()> {
        let shared = &self.shared;
        let mut envelope = Envelope::new(channel);
        if joined {
            envelope.j = Some(info.clone());
        } else {
            envelope.l = Some(info.clone());
        }
        let mut conn = shared.pool.acquire().await.map_err(Error::Postgres)?;
        shared
            .notify(&mut conn, &envelope, || Envelope::new(""))
            .await
    }

    async fn history(&self, channel: &str, policy: &HistoryPolicy) -> Result<StoredHistory> {
        let shared = &self.shared;
        let now = now_ms();
        let (epoch, top): (String, i64) = sqlx::query_as(
            "INSERT INTO live_stream (channel, epoch, top_offset, expires_at) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (channel) DO UPDATE SET \
               epoch = CASE WHEN live_stream.expires_at < $4 THEN EXCLUDED.epoch ELSE live_stream.epoch END, \
               top_offset = CASE WHEN live_stream.expires_at < $4 THEN 0 ELSE live_stream.top_offset END, \
               expires_at = CASE WHEN live_stream.expires_at < $4 THEN EXCLUDED.expires_at ELSE live_stream.expires_at END \
             RETURNING epoch, top_offset",
        )
        .bind(channel)
        .bind(new_epoch())
        .bind(now.saturating_add(ms(policy.meta_ttl)))
        .bind(now)
        .fetch_one(&shared.pool)
        .await
        .map_err(Error::Postgres)?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT pub_offset, data FROM live_publication \
             WHERE channel = $1 AND epoch = $2 AND created_at >= $3 ORDER BY pub_offset",
        )
        .bind(channel)
        .bind(&epoch)
        .bind(now.saturating_sub(ms(policy.ttl)))
        .fetch_all(&shared.pool)
        .await
        .map_err(Error::Postgres)?;
        let epoch_arc: Arc<str> = epoch.as_str().into();
        let mut publications = Vec::with_capacity(rows.len());
        for (pub_offset, data) in rows {
            publications.push(Publication {
                data: raw(data)?,
                offset: offset(pub_offset),
                epoch: epoch_arc.clone(),
                info: None,
            });
        }
        Ok(StoredHistory {
            position: StreamPosition {
                offset: offset(top),
                epoch,
            },
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
        let clients: Vec<&str> = entries.iter().map(|e| e.client.as_str()).collect();
        let users: Vec<&str> = entries.iter().map(|e| e.user.as_str()).collect();
        sqlx::query(
            "INSERT INTO live_presence (channel, client_id, user_id, expires_at) \
             SELECT $1, c, u, $4 FROM UNNEST($2::text[], $3::text[]) AS t(c, u) \
             ON CONFLICT (channel, client_id) DO UPDATE SET user_id = EXCLUDED.user_id, expires_at = EXCLUDED.expires_at",
        )
        .bind(channel)
        .bind(&clients)
        .bind(&users)
        .bind(now_ms().saturating_add(ms(ttl)))
        .execute(&self.shared.pool)
        .await
        .map_err(Error::Postgres)?;
        Ok(())
    }

    async fn remove_presence(&self, channel: &str, clients: &[String]) -> Result<()> {
        if clients.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM live_presence WHERE channel = $1 AND client_id = ANY($2)")
            .bind(channel)
            .bind(clients)
            .execute(&self.shared.pool)
            .await
            .map_err(Error::Postgres)?;
        Ok(())
    }

    async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT client_id, user_id FROM live_presence WHERE channel = $1 AND expires_at > $2",
        )
        .bind(channel)
        .bind(now_ms())
        .fetch_all(&self.shared.pool)
        .await
        .map_err(Error::Postgres)?;
        Ok(rows
            .into_iter()
            .map(|(client, user)| PresenceEntry { user, client })
            .collect())
    }

    async fn swap_last(
        &self,
        org: OrgId,
        channel: &str,
        schema: &str,
        frame: &str,
    ) -> Result<Option<String>> {
        let now = now_ms();
        let cutoff = now - self.shared.last_ttl_ms;
        let (old,): (Option<String>,) = sqlx::query_as(
            "WITH old AS (SELECT schema_json FROM live_last WHERE channel = $1 AND updated_at > $6) \
             INSERT INTO live_last (channel, org_id, schema_json, frame_json, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel) DO UPDATE SET org_id = EXCLUDED.org_id, schema_json = EXCLUDED.schema_json, \
               frame_json = EXCLUDED.frame_json, updated_at = EXCLUDED.updated_at \
             RETURNING (SELECT schema_json FROM old)",
        )
        .bind(channel)
        .bind(org.0)
        .bind(schema)
        .bind(frame)
        .bind(now)
        .bind(cutoff)
        .fetch_one(&self.shared.pool)
        .await
        .map_err(Error::Postgres)?;
        // Expired last frames are deleted by whichever engine pushes, at most once a
        // minute each; reads never answer them meanwhile.
        let swept = self
            .shared
            .last_swept
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - swept >= LAST_SWEEP_MS.min(self.shared.last_ttl_ms)
            && self
                .shared
                .last_swept
                .compare_exchange(
                    swept,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            sqlx::query("DELETE FROM live_last WHERE updated_at <= $1")
                .bind(cutoff)
                .execute(&self.shared.pool)
                .await
                .map_err(Error::Postgres)?;
        }
        Ok(old)
    }

    async fn last(&self, channel: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT frame_json FROM live_last WHERE channel = $1 AND updated_at > $2",
        )
        .bind(channel)
        .bind(now_ms() - self.shared.last_ttl_ms)
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(Error::Postgres)?;
        Ok(row.map(|(frame,)| frame))
    }

    async fn list_last(&self, org: OrgId) -> Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT channel, frame_json FROM live_last WHERE org_id = $1 AND updated_at > $2 ORDER BY channel",
        )
        .bind(org.0)
        .bind(now_ms() - self.shared.last_ttl_ms)
        .fetch_all(&self.shared.pool)
        .await
        .map_err(Error::Postgres)
    }

    async fn shutdown(&self) {
        self.shared.lock_channels().clear();
        self.shared.listener_pool.close().await;
    }
}
