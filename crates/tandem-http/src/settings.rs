use std::time::Duration;

use tandem_storage::DatabaseSettings;

/// Everything one Tandem instance needs to run, as typed values; the binary builds it from
/// Grafana-style INI files and `GF_*` variables, an embedder builds it however it likes.
/// `Default` is the documented default of every key.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[cluster]`, Tandem's own section.
    pub cluster: ClusterSettings,
    /// `[security]`.
    pub security: SecuritySettings,
}

/// `[server]` settings.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// The address to listen on (`http_addr`); empty means every interface.
    pub http_addr: String,
    /// The port to listen on (`http_port`); 0 picks a free port.
    pub http_port: u16,
    /// The public URL of the server (`root_url`).
    pub root_url: String,
    /// Log every request at info level (`router_logging`).
    pub router_logging: bool,
    /// Requests with a larger body are refused with 413 (`max_request_body_bytes`).
    pub max_request_body_bytes: usize,
    /// Connections beyond this many wait until one closes (`max_connections`).
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            http_addr: String::new(),
            http_port: 3000,
            root_url: "http://localhost:3000/".to_owned(),
            router_logging: false,
            max_request_body_bytes: 10 * 1024 * 1024,
            max_connections: 4096,
        }
    }
}

/// `[cluster]` settings: how this instance takes part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// This instance's id (`instance_id`); `None` generates one at start.
    pub instance_id: Option<String>,
    /// The `host:port` peers and operators reach this instance at (`advertise_address`);
    /// `None` uses the listening address.
    pub advertise_address: Option<String>,
    /// How often the heartbeat row is refreshed (`heartbeat_interval`).
    pub heartbeat_interval: Duration,
    /// A peer whose heartbeat is older than this is dead (`peer_timeout`).
    pub peer_timeout: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            instance_id: None,
            advertise_address: None,
            heartbeat_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(5),
        }
    }
}

/// `[security]` settings.
#[derive(Clone)]
pub struct SecuritySettings {
    /// The key that signs and hashes secrets (`secret_key`); every instance of a cluster
    /// must share it.
    pub secret_key: String,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            secret_key: "SW2YcwTIb9zpOOhoPsMm".to_owned(),
        }
    }
}

// Written by hand so that the key never reaches a log line.
impl std::fmt::Debug for SecuritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecuritySettings")
            .field("secret_key", &"***")
            .finish()
    }
}
