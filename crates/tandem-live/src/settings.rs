use std::fmt;
use std::time::Duration;

/// The hard ceiling on one incoming message when `message_size_limit` is 0 ("no limit"):
/// nothing a client sends is ever buffered without bound.
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Which HA engine carries publications, history and presence between instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HaEngine {
    /// One instance: everything stays in this process (`ha_engine` unset).
    #[default]
    Local,
    /// Redis pub/sub plus keys for history and presence (Grafana's `ha_engine = redis`).
    Redis,
    /// PostgreSQL `LISTEN/NOTIFY` plus tables in Tandem's own database (Tandem's own).
    Postgres,
}

impl HaEngine {
    /// Reads `[live] ha_engine`: empty means local.
    pub fn parse(value: &str) -> Option<HaEngine> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "local" | "memory" => Some(HaEngine::Local),
            "redis" => Some(HaEngine::Redis),
            "postgres" | "postgresql" => Some(HaEngine::Postgres),
            _ => None,
        }
    }

    /// The name used in settings, logs and health.
    pub fn name(self) -> &'static str {
        match self {
            HaEngine::Local => "local",
            HaEngine::Redis => "redis",
            HaEngine::Postgres => "postgres",
        }
    }
}

impl fmt::Display for HaEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Live's settings: Grafana's `[live]` keys plus Tandem's own limits.
///
/// Plain data; `Default` is the documented default of every key.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveSettings {
    /// `max_connections`: WebSocket connections per instance; -1 is unlimited, 0 turns
    /// Live off (every connection is refused). Over the limit a connection is closed with
    /// 3504.
    pub max_connections: i64,
    /// `message_size_limit`: the largest message a client may send, in bytes; 0 is
    /// Grafana's "no limit", which Tandem caps at [`MAX_MESSAGE_SIZE`].
    pub message_size_limit: usize,
    /// `allowed_origins`: origins besides `root_url`'s that may open a WebSocket
    /// (checked by the HTTP layer; `*` allows any).
    pub allowed_origins: Vec<String>,
    /// `ha_engine`.
    pub ha_engine: HaEngine,
    /// `ha_engine_address`: Redis `host:port` or a `redis://` URL.
    pub ha_engine_address: String,
    /// `ha_engine_password`: Redis password (overrides one in the URL).
    pub ha_engine_password: String,
    /// `ha_prefix`: prefix of every Redis key and channel, and of the PostgreSQL
    /// notification channel; empty means `tandem`.
    pub ha_prefix: String,
    /// Tandem's `history_size`: publications kept per history channel.
    pub history_size: usize,
    /// Tandem's `history_ttl`: how long publications stay in history.
    pub history_ttl: Duration,
    /// Tandem's `history_meta_ttl`: how long a channel's offset and epoch outlive its
    /// last publication (after that a new epoch starts and old positions cannot recover),
    /// and a stream's last frame its last push.
    pub history_meta_ttl: Duration,
    /// Tandem's `client_queue_size`: messages queued for one connection before it is
    /// closed as a slow consumer (3008).
    pub client_queue_size: usize,
    /// Tandem's `client_queue_max_bytes`: bytes queued for one connection before it is
    /// closed as a slow consumer.
    pub client_queue_max_bytes: usize,
    /// Tandem's `max_subscriptions_per_connection` (over it: error 106).
    pub max_subscriptions_per_connection: usize,
    /// Tandem's `ping_interval`: the server pings every connection this often and closes
    /// it (3012) when the previous ping got no pong.
    pub ping_interval: Duration,
    /// Tandem's `presence_ttl`: a presence entry not refreshed for this long disappears
    /// (entries of a dead instance vanish after it).
    pub presence_ttl: Duration,
    /// Tandem's `producer_lease_ttl`: the lease a cluster-singleton stream producer holds;
    /// a dead holder's streams move after it.
    pub producer_lease_ttl: Duration,
    /// Tandem's `engine_event_queue`: engine events waiting for the fan-out; when full,
    /// events are dropped and every subscriber is told to recover.
    pub engine_event_queue: usize,
}

impl Default for LiveSettings {
    fn default() -> LiveSettings {
        LiveSettings {
            max_connections: 100,
            message_size_limit: 65_536,
            allowed_origins: Vec::new(),
            ha_engine: HaEngine::Local,
            ha_engine_address: "127.0.0.1:6379".to_owned(),
            ha_engine_password: String::new(),
            ha_prefix: String::new(),
            history_size: 100,
            history_ttl: Duration::from_secs(600),
            history_meta_ttl: Duration::from_secs(24 * 3600),
            client_queue_size: 256,
            client_queue_max_bytes: 1024 * 1024,
            max_subscriptions_per_connection: 128,
            ping_interval: Duration::from_secs(25),
            presence_ttl: Duration::from_secs(60),
            producer_lease_ttl: Duration::from_secs(10),
            engine_event_queue: 16_384,
        }
    }
}

impl LiveSettings {
    /// How long a stream channel's last frame (and its schema) is kept after its last
    /// push, on every engine: `history_meta_ttl`, and never less than `history_ttl`.
    pub fn last_frame_ttl(&self) -> Duration {
        self.history_meta_ttl.max(self.history_ttl)
    }

    /// The prefix of engine keys and channels.
    pub fn prefix(&self) -> &str {
        if self.ha_prefix.is_empty() {
            "tandem"
        } else {
            &self.ha_prefix
        }
    }

    /// The effective limit on one incoming message.
    pub fn message_limit(&self) -> usize {
        match self.message_size_limit {
            0 => MAX_MESSAGE_SIZE,
            limit => limit.min(MAX_MESSAGE_SIZE),
        }
    }
}

impl fmt::Debug for LiveSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("LiveSettings")
            .field("max_connections", &self.max_connections)
            .field("message_size_limit", &self.message_size_limit)
            .field("allowed_origins", &self.allowed_origins)
            .field("ha_engine", &self.ha_engine)
            .field("ha_engine_address", &self.ha_engine_address)
            .field("ha_prefix", &self.ha_prefix)
            .field("history_size", &self.history_size)
            .field("history_ttl", &self.history_ttl)
            .field("client_queue_size", &self.client_queue_size)
            .field("ping_interval", &self.ping_interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_parse_as_grafana_writes_them() {
        assert_eq!(HaEngine::parse(""), Some(HaEngine::Local));
        assert_eq!(HaEngine::parse("redis"), Some(HaEngine::Redis));
        assert_eq!(HaEngine::parse(" Postgres "), Some(HaEngine::Postgres));
        assert_eq!(HaEngine::parse("nats"), None);
    }

    #[test]
    fn defaults_are_grafanas() {
        let settings = LiveSettings::default();
        assert_eq!(settings.max_connections, 100);
        assert_eq!(settings.message_limit(), 65_536);
        assert_eq!(settings.ha_engine_address, "127.0.0.1:6379");
        assert_eq!(settings.prefix(), "tandem");
        let unlimited = LiveSettings {
            message_size_limit: 0,
            ..LiveSettings::default()
        };
        assert_eq!(unlimited.message_limit(), MAX_MESSAGE_SIZE);
        let secret = LiveSettings {
            ha_engine_password: "hunter2".into(),
            ..LiveSettings::default()
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
