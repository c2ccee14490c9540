use std::time::Duration;

use tandem_alerting::{AlertProvisioning, AlertingSettings};
use tandem_dashboards::{DashboardSettings, ProvisioningConfig};
use tandem_datasources::{DataSourceProvisioning, DataSourceSettings};
use tandem_live::LiveSettings;
use tandem_sessions::SessionSettings;
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
    /// `[auth]` and `[security]`: cookies.
    pub auth: AuthSettings,
    /// `[auth]` and `[security]`: sessions, logins, the admin user, the secret key.
    pub identity: SessionSettings,
    /// `[dashboards]`.
    pub dashboards: DashboardSettings,
    /// The dashboard providers of `<[paths] provisioning>/dashboards/*.yaml`, as the
    /// binary read them; none by default.
    pub provisioning: ProvisioningConfig,
    /// `[live]`: Grafana Live.
    pub live: LiveSettings,
    /// `[dataproxy]`: how data sources are queried.
    pub datasources: DataSourceSettings,
    /// The data sources of `<[paths] provisioning>/datasources/*.yaml`, as the binary read
    /// them (variables expanded); applied at every start, as Grafana does.
    pub datasource_provisioning: DataSourceProvisioning,
    /// `[unified_alerting]` and `[cluster] alerting_evaluation`.
    pub alerting: AlertingSettings,
    /// The rule groups of `<[paths] provisioning>/alerting/*.yaml`, as the binary read
    /// them; none by default.
    pub alerting_provisioning: AlertProvisioning,
    /// `[cluster] notification_*`: how notifications are claimed and sent.
    pub notifications: tandem_alerting::NotifySettings,
    /// Every configuration key with the value in force, as `(section, key, value)`, for
    /// `GET /api/admin/settings` (which masks the secrets); the binary fills it from its
    /// layered configuration, an embedder may leave it empty.
    pub effective_config: Vec<(String, String, String)>,
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
    /// Let other sites frame the pages: no `X-Frame-Options: deny` (`[security]
    /// allow_embedding`).
    pub allow_embedding: bool,
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
            allow_embedding: false,
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

/// How a cookie may travel across sites (`[security] cookie_samesite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Lax`, Grafana's default.
    Lax,
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=None` (requires `Secure` in browsers).
    None,
    /// No `SameSite` attribute at all (`disabled`).
    Disabled,
}

/// Cookie settings.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// The session cookie's name (`[auth] login_cookie_name`).
    pub login_cookie_name: String,
    /// Send cookies with `Secure` (`[security] cookie_secure`).
    pub cookie_secure: bool,
    /// The cookies' `SameSite` (`[security] cookie_samesite`).
    pub cookie_samesite: SameSite,
    /// Grafana's check of the `Origin` of requests that carry the session cookie.
    pub csrf: CsrfSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            login_cookie_name: "grafana_session".to_owned(),
            cookie_secure: false,
            cookie_samesite: SameSite::Lax,
            csrf: CsrfSettings::default(),
        }
    }
}

/// `[security] csrf_*`: which pages may send requests that carry the session cookie.
/// A request whose `Origin` names another host than the one it was sent to is refused
/// unless that host is trusted here (see `crate::csrf`).
#[derive(Clone, Debug, Default)]
pub struct CsrfSettings {
    /// Host names, besides the request's own, whose pages may send such requests
    /// (`csrf_trusted_origins`); an entry written as a URL counts by its host name.
    pub trusted_origins: Vec<String>,
    /// Request headers that carry the host the browser used, for a proxy that rewrites
    /// `Host` (`csrf_additional_headers`, typically `X-Forwarded-Host`): an `Origin` naming
    /// the host one of them names passes.
    pub additional_headers: Vec<String>,
    /// Check requests without the session cookie too (`csrf_always_check`).
    pub always_check: bool,
}
