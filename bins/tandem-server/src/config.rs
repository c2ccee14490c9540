//! The server's configuration: Grafana's INI keys and `GF_*` variables, turned into the
//! [`tandem_http::Settings`] the library crates take.
//!
//! Every key the server reads is declared once, in [`KEYS`], with its default and a line of
//! help. Reading a key that is not declared panics, and a debug build checks after loading
//! that every declared key was read, so a test that loads the defaults exercises every read.
//! `docs/configuration.md` documents the same table and a test keeps the two in step.
//!
//! Values are layered with the `config` crate, later layers winning: the defaults from
//! [`KEYS`], then the INI file (read by [`ini`], which follows Grafana's reader), then the
//! environment.
//!
//! Grafana's behaviour is matched as of Grafana 12.1 (`pkg/setting`: variable names, empty
//! variables ignored, `${…}`/`$__env{…}`/`$__file{…}` expansion) and go-ini 1.67 with its
//! default options (the INI dialect).
//!
//! Loading reads the INI file and the files that `__FILE` variables and `$__file{…}` name,
//! and nothing else: it neither opens the database nor creates directories.

mod ini;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_dashboards::{DashboardSettings, ProvisioningConfig};
use tandem_datasources::{DataSourceProvisioning, DataSourceSettings, HttpSettings};
use tandem_http::{
    AlertProvisioning, AlertingError, AlertingSettings, AuthSettings, ClusterSettings,
    CsrfSettings, EvaluationMode, SameSite, ServerSettings, Settings,
};
use tandem_live::{HaEngine, LiveSettings};
use tandem_sessions::SessionSettings;
use tandem_storage::{Backend, DatabaseSettings, Location, redact_url};

use crate::cli::CliArgs;
use crate::config::ini::{IniSource, parse_ini};

/// One configuration key the server reads.
#[derive(Debug)]
pub(crate) struct Key {
    /// The INI section, without brackets.
    pub(crate) section: &'static str,
    /// The key inside the section.
    pub(crate) name: &'static str,
    /// The default, written as in the INI file; empty when the default is no value.
    pub(crate) default: &'static str,
    /// One line for `--help`; `docs/configuration.md` says more.
    pub(crate) doc: &'static str,
}

/// The file read when `--config` is not given, if it exists (relative to the working
/// directory).
pub(crate) const DEFAULT_CONFIG_FILE: &str = "conf/tandem.ini";

/// Every key the server reads, in the order `--help` and the documentation list them.
#[rustfmt::skip]
pub(crate) const KEYS: &[Key] = &[
    key("server", "http_addr", "", "address to listen on; empty = every interface"),
    key("server", "http_port", "3000", "port to listen on; 0 = any free port"),
    key("server", "protocol", "http", "only http; TLS belongs to a proxy in front"),
    key("server", "domain", "localhost", "fills %(domain)s in root_url"),
    key("server", "root_url", "http://localhost:3000/", "public URL of the server"),
    key("server", "router_logging", "false", "log every request at info level"),
    key("server", "max_request_body_bytes", "10485760", "larger request bodies get 413"),
    key("server", "max_connections", "4096", "further connections wait"),
    key("paths", "data", "data", "directory for Tandem's files"),
    key("paths", "provisioning", "conf/provisioning", "dashboards/ and datasources/*.yaml are read here"),
    key("dashboards", "versions_to_keep", "20", "versions kept per dashboard; at least 1"),
    key("dataproxy", "timeout", "30", "seconds a data source query may take"),
    key("dataproxy", "dialTimeout", "10", "seconds connecting to a data source may take"),
    key("dataproxy", "response_limit", "0", "largest data source answer in bytes; 0 = 256 MiB"),
    key("database", "type", "sqlite3", "sqlite3, postgres or mysql"),
    key("database", "host", "127.0.0.1:3306", "server host:port (5432 for postgres)"),
    key("database", "name", "grafana", "database name"),
    key("database", "user", "root", "database user"),
    key("database", "password", "", "database password"),
    key("database", "url", "", "postgres:// or mysql:// URL; overrides the above"),
    key("database", "ssl_mode", "disable", "TLS to postgres or mysql"),
    key("database", "path", "tandem.db", "sqlite file, relative to [paths] data"),
    key("database", "max_open_conn", "0", "pool size; 0 = 20"),
    key("database", "max_idle_conn", "2", "connections kept open while idle"),
    key("database", "conn_max_lifetime", "14400", "seconds before a connection is renewed"),
    key("database", "wal", "true", "sqlite write-ahead log"),
    key("database", "cache_mode", "private", "accepted; the sqlite cache is always private"),
    key("database", "migration_locking", "true", "lock the database while migrating"),
    key("database", "locking_attempt_timeout_sec", "0", "wait for the migration lock; 0 = no limit"),
    key("database", "query_retries", "0", "retries of a failed read"),
    key("database", "transaction_retries", "5", "retries of a busy or deadlocked transaction"),
    key("database", "log_queries", "false", "log every SQL statement at debug level"),
    key("security", "secret_key", "SW2YcwTIb9zpOOhoPsMm", "signing key; change it, share it"),
    key("security", "admin_user", "admin", "server admin created on an empty database"),
    key("security", "admin_password", "admin", "that admin's first password"),
    key("security", "admin_email", "admin@localhost", "that admin's email"),
    key("security", "cookie_secure", "false", "send cookies only over HTTPS"),
    key("security", "allow_embedding", "false", "let other sites frame the pages (no X-Frame-Options: deny)"),
    key("security", "cookie_samesite", "lax", "lax, strict, none or disabled"),
    key("security", "csrf_trusted_origins", "", "host names besides the request's own whose pages may send requests with the session cookie, space-separated"),
    key("security", "csrf_additional_headers", "", "headers carrying the host the browser used (X-Forwarded-Host), space-separated"),
    key("security", "csrf_always_check", "false", "check the Origin of requests without the session cookie too"),
    key("security", "disable_brute_force_login_protection", "false", "stop counting failed logins"),
    key("security", "brute_force_login_protection_max_attempts", "5", "failed logins in 5 minutes before a login is blocked"),
    key("auth", "login_cookie_name", "grafana_session", "name of the session cookie"),
    key("auth", "token_rotation_interval_minutes", "10", "minutes between session token rotations"),
    key("auth", "login_maximum_inactive_lifetime_duration", "7d", "an unused session ends after this"),
    key("auth", "login_maximum_lifetime_duration", "30d", "a session ends this long after login"),
    key("auth", "token_rotation_grace_period", "30s", "the previous token works this long after a rotation"),
    key("log", "level", "info", "trace, debug, info, warn, error or critical"),
    key("log", "format", "text", "text or json"),
    key("cluster", "instance_id", "", "this instance's id; empty = random"),
    key("cluster", "advertise_address", "", "host:port peers reach; empty = listener"),
    key("cluster", "heartbeat_interval", "1s", "how often this instance reports alive"),
    key("cluster", "peer_timeout", "5s", "silence after which a peer is dead"),
    key("cluster", "live_history_size", "100", "publications kept per Live history channel"),
    key("cluster", "live_history_ttl", "10m", "how long Live history keeps a publication"),
    key("cluster", "live_client_queue_size", "256", "messages queued per Live connection before 3008"),
    key("cluster", "live_max_subscriptions_per_connection", "128", "Live subscriptions per connection"),
    key("cluster", "live_ping_interval", "25s", "how often Live pings each connection"),
    key("cluster", "live_presence_ttl", "60s", "Live presence of a dead instance vanishes after this"),
    key("cluster", "live_producer_lease_ttl", "10s", "a dead instance's testdata streams move after this"),
    key("live", "max_connections", "100", "Live WebSocket connections per instance; -1 = unlimited"),
    key("live", "message_size_limit", "65536", "largest Live message a client may send; 0 = 16 MiB"),
    key("live", "allowed_origins", "", "origins besides root_url's that may open Live; * = any"),
    key("live", "ha_engine", "", "empty (one instance), redis or postgres"),
    key("live", "ha_engine_address", "127.0.0.1:6379", "Redis host:port or redis:// URL"),
    key("live", "ha_engine_password", "", "Redis password"),
    key("live", "ha_prefix", "", "prefix of Live's Redis keys and channels; empty = tandem"),
    key("cluster", "notification_claim_timeout", "2s", "a notification claim not renewed this long is taken over by another instance"),
    key("cluster", "notification_poll_interval", "1s", "how often alert groups are recomputed from the alert state"),
    key("cluster", "notification_log_retention", "120h", "finished notifications are deleted from the log after this"),
    key("smtp", "enabled", "false", "send email contact points' notifications"),
    key("smtp", "host", "localhost:25", "SMTP server host:port; port 465 is TLS from the start"),
    key("smtp", "user", "", "SMTP login; empty = no authentication"),
    key("smtp", "password", "", "SMTP password"),
    key("smtp", "skip_verify", "false", "accept any certificate of the SMTP server"),
    key("smtp", "from_address", "admin@grafana.localhost", "sender address of emails"),
    key("smtp", "from_name", "Grafana", "sender name of emails"),
    key("smtp", "ehlo_identity", "", "name sent in EHLO; empty = localhost"),
    key("smtp", "startTLS_policy", "", "OpportunisticStartTLS (empty), MandatoryStartTLS or NoStartTLS"),
    key("smtp", "cert_file", "", "PEM client certificate presented to the SMTP server; empty = none"),
    key("smtp", "key_file", "", "PEM private key of cert_file"),
    key("cluster", "alerting_evaluation", "all", "all: every instance evaluates every rule; sharded: one live instance each"),
    key("unified_alerting", "execute_alerts", "true", "evaluate alert rules on this instance"),
    key("unified_alerting", "min_interval", "10s", "base interval; group intervals are multiples of it"),
    key("unified_alerting", "evaluation_timeout", "30s", "longest time one evaluation attempt may take"),
    key("unified_alerting", "max_attempts", "3", "attempts of a failing evaluation"),
    key("unified_alerting.state_history", "enabled", "true", "record alert state changes as annotations (once per change cluster-wide)"),
    key("unified_alerting", "ha_peers", "", "accepted and ignored: the database replaces gossip"),
    key("unified_alerting", "ha_listen_address", "0.0.0.0:9094", "accepted and ignored"),
    key("unified_alerting", "ha_advertise_address", "", "accepted and ignored"),
    key("unified_alerting", "ha_peer_timeout", "15s", "accepted and ignored"),
    key("unified_alerting", "ha_gossip_interval", "200ms", "accepted and ignored"),
    key("unified_alerting", "ha_push_pull_interval", "60s", "accepted and ignored"),
    key("unified_alerting", "ha_redis_address", "", "accepted and ignored"),
    key("unified_alerting", "ha_redis_username", "", "accepted and ignored"),
    key("unified_alerting", "ha_redis_password", "", "accepted and ignored"),
    key("unified_alerting", "ha_redis_db", "0", "accepted and ignored"),
    key("unified_alerting", "ha_redis_prefix", "", "accepted and ignored"),
    key("unified_alerting", "ha_redis_peer_name", "", "accepted and ignored"),
    key("unified_alerting", "ha_redis_max_conns", "5", "accepted and ignored"),
];

/// Everything loading produces.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The settings the library crates take.
    pub(crate) settings: Settings,
    /// How the binary sets up logging.
    pub(crate) log: LogSettings,
    /// The INI file that was read, if any.
    pub(crate) file: Option<PathBuf>,
    /// Settings accepted but worth a warning, to be logged once logging is set up.
    pub(crate) warnings: Vec<String>,
}

/// `[log]` settings, which only the binary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// The most verbose level logged (`level`); Grafana's `critical` is `ERROR`.
    pub(crate) level: tracing::Level,
    /// How log lines are written (`format`).
    pub(crate) format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why the configuration cannot be loaded; the binary prints it and exits with status 2.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// A value does not parse.
    Invalid {
        /// The key's section.
        section: &'static str,
        /// The key.
        name: &'static str,
        /// The value as read, with any password hidden.
        value: String,
        /// What the value should look like.
        expected: String,
        /// The file and line or the environment variable the value came from.
        origin: Option<String>,
    },
    /// Values that parse but do not fit together.
    Conflict {
        /// The section of the key at fault.
        section: &'static str,
        /// The key at fault.
        name: &'static str,
        /// What does not fit.
        message: String,
    },
    /// A `${…}`, `$__env{…}` or `$__file{…}` expansion in a value failed.
    Expansion {
        /// The key's section.
        section: &'static str,
        /// The key.
        name: &'static str,
        /// What could not be expanded.
        message: String,
        /// The file and line or the environment variable the value came from.
        origin: Option<String>,
    },
    /// The INI file cannot be read.
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The INI file is not INI.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: &'static str,
    },
    /// A `GF_*__FILE` variable names a file that cannot be read.
    EnvFile {
        /// The variable.
        var: String,
        /// The file it names.
        path: PathBuf,
        /// Why it cannot be read.
        source: io::Error,
    },
    /// Both `GF_X` and `GF_X__FILE` are set.
    EnvConflict {
        /// `GF_X`.
        var: String,
    },
    /// The `config` crate failed to layer the sources.
    Layering(::config::ConfigError),
    /// The dashboard provisioning files cannot be used.
    Provisioning(tandem_dashboards::Error),
    /// The data source provisioning files cannot be used.
    DataSourceProvisioning(tandem_datasources::Error),
    /// The alerting provisioning files cannot be used.
    AlertingProvisioning(AlertingError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                section,
                name,
                value,
                expected,
                origin,
            } => {
                write!(
                    f,
                    "invalid value {value:?} for [{section}] {name}: expected {expected}"
                )?;
                match origin {
                    Some(origin) => write!(f, " (from {origin})"),
                    None => Ok(()),
                }
            }
            ConfigError::Conflict {
                section,
                name,
                message,
            } => write!(f, "[{section}] {name}: {message}"),
            ConfigError::Expansion {
                section,
                name,
                message,
                origin,
            } => {
                write!(f, "[{section}] {name}: {message}")?;
                match origin {
                    Some(origin) => write!(f, " (from {origin})"),
                    None => Ok(()),
                }
            }
            ConfigError::ReadFile { path, source } => {
                write!(
                    f,
                    "cannot read the configuration file {}: {source}",
                    path.display()
                )
            }
            ConfigError::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            ConfigError::EnvFile { var, path, source } => {
                write!(f, "cannot read {} named by {var}: {source}", path.display())
            }
            ConfigError::EnvConflict { var } => {
                write!(f, "{var} and {var}__FILE are both set; set only one")
            }
            ConfigError::Layering(err) => write!(f, "cannot layer the configuration: {err}"),
            ConfigError::Provisioning(err) => write!(f, "{err}"),
            ConfigError::DataSourceProvisioning(err) => write!(f, "{err}"),
            ConfigError::AlertingProvisioning(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::ReadFile { source, .. } | ConfigError::EnvFile { source, .. } => {
                Some(source)
            }
            ConfigError::Layering(err) => Some(err),
            _ => None,
        }
    }
}

impl From<::config::ConfigError> for ConfigError {
    fn from(err: ::config::ConfigError) -> Self {
        ConfigError::Layering(err)
    }
}

/// Loads the configuration: defaults, then the file given with `--config` (which must
/// exist) or else [`DEFAULT_CONFIG_FILE`] if it exists, then the environment read
/// through `env` (the binary passes `|name| std::env::var(name).ok()`; tests pass their
/// own variables).
pub(crate) fn load(
    args: &CliArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let file = match &args.config {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.exists()),
    };
    load_from(file.as_deref(), &env)
}

/// Parses a duration written as Grafana writes them: a whole number and a unit (`ms`, `s`,
/// `m`, `h`, `d`, `w`), repeated (`1h30m`), or a bare `0`.
///
/// The error says what is wrong, for the caller to put in context.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, String> {
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    if input.is_empty() {
        return Err("empty".to_owned());
    }
    let mut total_ms: u64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("a number is missing before {rest:?}"));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(format!("the unit is missing after {number}")),
            _ => return Err(format!("unknown unit {unit:?}")),
        };
        total_ms = number
            .parse::<u64>()
            .ok()
            .and_then(|number| number.checked_mul(unit_ms))
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| "too long".to_owned())?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// The help text listing every key with its default.
pub(crate) fn describe_keys() -> String {
    let mut out = String::from(
        "configuration keys, with their defaults (set them in the INI file, \
         or as GF_<SECTION>_<KEY>):\n",
    );
    let mut section = "";
    for key in KEYS {
        if key.section != section {
            section = key.section;
            out.push_str(&format!("  [{section}]\n"));
        }
        let setting = format!("{} = {}", key.name, key.default);
        out.push_str(&format!("    {setting:<36} {}\n", key.doc));
    }
    out
}

const fn key(
    section: &'static str,
    name: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Key {
    Key {
        section,
        name,
        default,
        doc,
    }
}

impl Key {
    /// The key's path for the `config` crate.
    fn path(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }

    /// The environment variable that overrides the key, named as Grafana names it.
    fn env_var(&self) -> String {
        let upper = |part: &str| part.replace(['.', '-'], "_").to_ascii_uppercase();
        format!("GF_{}_{}", upper(self.section), upper(self.name))
    }
}

fn load_from(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let mut builder = ::config::Config::builder();
    for key in KEYS {
        builder = builder.set_default(key.path(), key.default)?;
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let entries = parse_ini(&text).map_err(|(line, message)| ConfigError::Syntax {
            path: path.to_owned(),
            line,
            message,
        })?;
        builder = builder.add_source(IniSource::new(path, entries));
    }
    // Overrides are looked up key by key: the variable names cannot be split back into a
    // section and a key, since both contain underscores.
    for key in KEYS {
        if let Some((value, origin)) = env_override(key, env)? {
            let value = ::config::Value::new(Some(&origin), value);
            builder = builder.set_override(key.path(), value)?;
        }
    }
    let values = Values::collect(&builder.build()?, env)?;
    let (mut settings, log, warnings) = settings(&values)?;
    let provisioning = PathBuf::from(values.get::<String>("paths", "provisioning")?);
    values.check_all_read();
    settings.provisioning =
        ProvisioningConfig::load_dir(&provisioning.join("dashboards"), |name| env(name))
            .map_err(ConfigError::Provisioning)?;
    settings.datasource_provisioning =
        DataSourceProvisioning::load_dir(&provisioning.join("datasources"), |name| env(name))
            .map_err(ConfigError::DataSourceProvisioning)?;
    settings.alerting_provisioning =
        AlertProvisioning::load_dir(&provisioning.join("alerting"), |name| env(name))
            .map_err(ConfigError::AlertingProvisioning)?;
    Ok(Loaded {
        settings,
        log,
        file: file.map(Path::to_owned),
        warnings,
    })
}

/// `GF_<SECTION>_<KEY>`, or the content of the file named by `GF_<SECTION>_<KEY>__FILE`,
/// with the variable's name as the origin. Empty variables are ignored, as Grafana does.
fn env_override(
    key: &Key,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>, ConfigError> {
    let var = key.env_var();
    let file_var = format!("{var}__FILE");
    let direct = env(&var).filter(|value| !value.is_empty());
    let from_file = env(&file_var).filter(|value| !value.is_empty());
    match (direct, from_file) {
        (Some(_), Some(_)) => Err(ConfigError::EnvConflict { var }),
        (Some(value), None) => Ok(Some((value, var))),
        (None, Some(path)) => {
            let mut value =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::EnvFile {
                    var: file_var.clone(),
                    path: path.into(),
                    source,
                })?;
            // Editors and `echo` end files with a newline that is not part of the secret.
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            Ok(Some((value, file_var)))
        }
        (None, None) => Ok(None),
    }
}

/// Builds the typed settings; every read goes through [`Values::get`].
fn settings(values: &Values) -> Result<(Settings, LogSettings, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();

    let http_port = values.get::<Port>("server", "http_port")?.0;
    let server = ServerSettings {
        http_addr: values.get("server", "http_addr")?,
        http_port,
        root_url: root_url(values, http_port)?,
        router_logging: values.get("server", "router_logging")?,
        allow_embedding: values.get("security", "allow_embedding")?,
        max_request_body_bytes: values.get("server", "max_request_body_bytes")?,
        max_connections: values
            .get::<NonZeroUsize>("server", "max_connections")?
            .get(),
    };

    let data_dir = PathBuf::from(values.get::<String>("paths", "data")?);
    let database = database(values, &data_dir, &mut warnings)?;

    let identity = identity(values)?;
    if !values.is_set("security", "secret_key") {
        warnings.push(
            "[security] secret_key is Grafana's published default; \
             set a secret of your own, the same on every instance"
                .to_owned(),
        );
    }
    let auth = AuthSettings {
        login_cookie_name: values.get("auth", "login_cookie_name")?,
        cookie_secure: values.get("security", "cookie_secure")?,
        cookie_samesite: values.get("security", "cookie_samesite")?,
        csrf: CsrfSettings {
            trusted_origins: space_separated(
                &values.get::<String>("security", "csrf_trusted_origins")?,
            ),
            additional_headers: space_separated(
                &values.get::<String>("security", "csrf_additional_headers")?,
            ),
            always_check: values.get("security", "csrf_always_check")?,
        },
    };
    if auth.login_cookie_name.is_empty()
        || !auth
            .login_cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(values.invalid(
            "auth",
            "login_cookie_name",
            "a cookie name (letters, digits, _ and -)",
        ));
    }

    let log = LogSettings {
        level: values.get("log", "level")?,
        format: values.get("log", "format")?,
    };

    let instance_id: String = values.get("cluster", "instance_id")?;
    let advertise_address: String = values.get("cluster", "advertise_address")?;
    if !advertise_address.is_empty() && !is_host_port(&advertise_address) {
        return Err(values.invalid("cluster", "advertise_address", "host:port"));
    }
    let heartbeat_interval: Duration = values.get("cluster", "heartbeat_interval")?;
    if heartbeat_interval.is_zero() {
        return Err(values.invalid("cluster", "heartbeat_interval", "a duration above 0"));
    }
    let peer_timeout: Duration = values.get("cluster", "peer_timeout")?;
    if peer_timeout <= heartbeat_interval {
        return Err(ConfigError::Conflict {
            section: "cluster",
            name: "peer_timeout",
            message: format!(
                "{peer_timeout:?} must be longer than [cluster] heartbeat_interval \
                 ({heartbeat_interval:?}), or live peers are declared dead"
            ),
        });
    }
    let cluster = ClusterSettings {
        instance_id: Some(instance_id).filter(|id| !id.is_empty()),
        advertise_address: Some(advertise_address).filter(|address| !address.is_empty()),
        heartbeat_interval,
        peer_timeout,
    };

    let versions_to_keep: u32 = values.get("dashboards", "versions_to_keep")?;
    if versions_to_keep == 0 {
        return Err(values.invalid("dashboards", "versions_to_keep", "a number above 0"));
    }

    let notifications = notifications(values, &server.root_url)?;
    let settings = Settings {
        server,
        database,
        cluster,
        auth,
        identity,
        dashboards: DashboardSettings { versions_to_keep },
        provisioning: ProvisioningConfig::default(),
        datasources: datasources(values)?,
        live: live(values)?,
        datasource_provisioning: DataSourceProvisioning::default(),
        alerting: alerting(values)?,
        alerting_provisioning: AlertProvisioning::default(),
        notifications,
        effective_config: values.effective(),
    };
    Ok((settings, log, warnings))
}

/// A list in Grafana's space-separated form (`csrf_trusted_origins = a.example b.example`).
fn space_separated(value: &str) -> Vec<String> {
    value
        .split(' ')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `[live]` keys, and Tandem's `[cluster] live_*` limits.
fn live(values: &Values) -> Result<LiveSettings, ConfigError> {
    let max_connections: MaxConnections = values.get("live", "max_connections")?;
    let engine: String = values.get("live", "ha_engine")?;
    let ha_engine = HaEngine::parse(&engine)
        .ok_or_else(|| values.invalid("live", "ha_engine", "empty, redis or postgres"))?;
    let origins: String = values.get("live", "allowed_origins")?;
    let positive = |name: &'static str| -> Result<usize, ConfigError> {
        let value: usize = values.get("cluster", name)?;
        if value == 0 {
            return Err(values.invalid("cluster", name, "a number above 0"));
        }
        Ok(value)
    };
    let nonzero = |name: &'static str| -> Result<Duration, ConfigError> {
        let value: Duration = values.get("cluster", name)?;
        if value.is_zero() {
            return Err(values.invalid("cluster", name, "a duration above 0"));
        }
        Ok(value)
    };
    Ok(LiveSettings {
        max_connections: max_connections.0,
        message_size_limit: values.get("live", "message_size_limit")?,
        allowed_origins: origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect(),
        ha_engine,
        ha_engine_address: values.get("live", "ha_engine_address")?,
        ha_engine_password: values.get("live", "ha_engine_password")?,
        ha_prefix: values.get("live", "ha_prefix")?,
        history_size: positive("live_history_size")?,
        history_ttl: nonzero("live_history_ttl")?,
        client_queue_size: positive("live_client_queue_size")?,
        max_subscriptions_per_connection: positive("live_max_subscriptions_per_connection")?,
        ping_interval: nonzero("live_ping_interval")?,
        presence_ttl: nonzero("live_presence_ttl")?,
        producer_lease_ttl: nonzero("live_producer_lease_ttl")?,
        ..LiveSettings::default()
    })
}

/// `[live] max_connections`: a count, or -1 for no limit.
struct MaxConnections(i64);

impl FromValue for MaxConnections {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw.trim().parse::<i64>() {
            Ok(n) if n >= -1 => Ok(MaxConnections(n)),
            _ => Err("a number of connections, or -1 for no limit".to_owned()),
        }
    }
}

/// The `[dataproxy]` keys: how data sources are queried.
fn datasources(values: &Values) -> Result<DataSourceSettings, ConfigError> {
    let timeout: u32 = values.get("dataproxy", "timeout")?;
    let dial_timeout: u32 = values.get("dataproxy", "dialTimeout")?;
    if timeout == 0 {
        return Err(values.invalid("dataproxy", "timeout", "a number of seconds above 0"));
    }
    if dial_timeout == 0 {
        return Err(values.invalid("dataproxy", "dialTimeout", "a number of seconds above 0"));
    }
    let response_limit: usize = values.get("dataproxy", "response_limit")?;
    Ok(DataSourceSettings {
        http: HttpSettings {
            timeout: Duration::from_secs(u64::from(timeout)),
            connect_timeout: Duration::from_secs(u64::from(dial_timeout)),
            // Grafana's 0 is "no limit"; Tandem still keeps one, as every buffer has.
            response_limit: match response_limit {
                0 => DEFAULT_RESPONSE_LIMIT,
                limit => limit,
            },
        },
        ..DataSourceSettings::default()
    })
}

/// The largest data source answer read when `[dataproxy] response_limit` is 0.
const DEFAULT_RESPONSE_LIMIT: usize = 256 * 1024 * 1024;

/// `[unified_alerting]` and `[cluster] alerting_evaluation`. Grafana's gossip keys
/// (`ha_*`) are read so that they stay declared, and ignored: the shared database does
/// their job.
fn alerting(values: &Values) -> Result<AlertingSettings, ConfigError> {
    for name in [
        "ha_peers",
        "ha_listen_address",
        "ha_advertise_address",
        "ha_peer_timeout",
        "ha_gossip_interval",
        "ha_push_pull_interval",
        "ha_redis_address",
        "ha_redis_username",
        "ha_redis_password",
        "ha_redis_db",
        "ha_redis_prefix",
        "ha_redis_peer_name",
        "ha_redis_max_conns",
    ] {
        let _ignored: String = values.get("unified_alerting", name)?;
    }
    let mode = match values
        .get::<String>("cluster", "alerting_evaluation")?
        .as_str()
    {
        "all" => EvaluationMode::All,
        "sharded" => EvaluationMode::Sharded,
        _ => return Err(values.invalid("cluster", "alerting_evaluation", "all or sharded")),
    };
    let min_interval: Duration = values.get("unified_alerting", "min_interval")?;
    if min_interval < Duration::from_secs(1) || min_interval.subsec_nanos() != 0 {
        return Err(values.invalid(
            "unified_alerting",
            "min_interval",
            "a whole number of seconds, at least 1s",
        ));
    }
    let evaluation_timeout: Duration = values.get("unified_alerting", "evaluation_timeout")?;
    if evaluation_timeout.is_zero() {
        return Err(values.invalid(
            "unified_alerting",
            "evaluation_timeout",
            "a duration above 0",
        ));
    }
    let max_attempts: u32 = values.get("unified_alerting", "max_attempts")?;
    Ok(AlertingSettings {
        execute_alerts: values.get("unified_alerting", "execute_alerts")?,
        min_interval,
        evaluation_timeout,
        max_attempts: max_attempts.max(1),
        mode,
        state_history: values.get("unified_alerting.state_history", "enabled")?,
        ..AlertingSettings::default()
    })
}

/// `[cluster] notification_claim_timeout` and `notification_poll_interval`.
fn notifications(
    values: &Values,
    root_url: &str,
) -> Result<tandem_http::NotifySettings, ConfigError> {
    let claim_timeout: Duration = values.get("cluster", "notification_claim_timeout")?;
    if claim_timeout < Duration::from_millis(200) {
        return Err(values.invalid("cluster", "notification_claim_timeout", "at least 200ms"));
    }
    let poll_interval: Duration = values.get("cluster", "notification_poll_interval")?;
    if poll_interval < Duration::from_millis(50) {
        return Err(values.invalid("cluster", "notification_poll_interval", "at least 50ms"));
    }
    let mut external_url = root_url.to_owned();
    if !external_url.ends_with('/') {
        external_url.push('/');
    }
    let log_retention: Duration = values.get("cluster", "notification_log_retention")?;
    if log_retention < Duration::from_secs(60) {
        return Err(values.invalid("cluster", "notification_log_retention", "at least 1m"));
    }
    Ok(tandem_http::NotifySettings {
        claim_timeout,
        poll_interval,
        external_url,
        log_retention,
        smtp: smtp(values)?,
        ..tandem_http::NotifySettings::default()
    })
}

/// Grafana's `[smtp]` section.
fn smtp(values: &Values) -> Result<tandem_http::SmtpSettings, ConfigError> {
    let policy: String = values.get("smtp", "startTLS_policy")?;
    let Some(start_tls_policy) = tandem_http::StartTlsPolicy::parse(&policy) else {
        return Err(values.invalid(
            "smtp",
            "startTLS_policy",
            "OpportunisticStartTLS, MandatoryStartTLS or NoStartTLS",
        ));
    };
    let smtp = tandem_http::SmtpSettings {
        enabled: values.get("smtp", "enabled")?,
        host: values.get("smtp", "host")?,
        user: values.get("smtp", "user")?,
        password: values.get("smtp", "password")?,
        skip_verify: values.get("smtp", "skip_verify")?,
        from_address: values.get("smtp", "from_address")?,
        from_name: values.get("smtp", "from_name")?,
        ehlo_identity: values.get("smtp", "ehlo_identity")?,
        start_tls_policy,
        cert_file: values.get("smtp", "cert_file")?,
        key_file: values.get("smtp", "key_file")?,
    };
    if smtp.enabled
        && let Err(problem) = smtp.check()
    {
        let field = problem.split_once(':').map_or("", |(k, _)| k);
        let (key, wanted) = match field {
            "host" => ("host", "host:port".to_owned()),
            "cert_file" | "key_file" => (
                field,
                format!(
                    "a readable PEM certificate and its key, both set or both empty ({problem})"
                ),
            ),
            _ => ("from_address", "a valid from_address".to_owned()),
        };
        return Err(values.invalid("smtp", key, &wanted));
    }
    Ok(smtp)
}

/// The `[security]` and `[auth]` keys of sessions, logins and the admin user.
fn identity(values: &Values) -> Result<SessionSettings, ConfigError> {
    let minutes: u32 = values.get("auth", "token_rotation_interval_minutes")?;
    if minutes == 0 {
        return Err(values.invalid(
            "auth",
            "token_rotation_interval_minutes",
            "a number of minutes above 0",
        ));
    }
    let max_failed_logins: u32 =
        values.get("security", "brute_force_login_protection_max_attempts")?;
    let disabled: bool = values.get("security", "disable_brute_force_login_protection")?;
    Ok(SessionSettings {
        secret_key: values.get("security", "secret_key")?,
        rotation_interval: Duration::from_secs(u64::from(minutes) * 60),
        max_inactive_lifetime: values
            .get::<Days>("auth", "login_maximum_inactive_lifetime_duration")?
            .0,
        max_lifetime: values
            .get::<Days>("auth", "login_maximum_lifetime_duration")?
            .0,
        rotation_grace: values.get("auth", "token_rotation_grace_period")?,
        brute_force_protection: !disabled && max_failed_logins > 0,
        max_failed_logins: u64::from(max_failed_logins),
        admin_user: values.get("security", "admin_user")?,
        admin_password: values.get("security", "admin_password")?,
        admin_email: values.get("security", "admin_email")?,
        ..SessionSettings::default()
    })
}

/// `root_url` with go-ini's `%(key)s` placeholders expanded, which Grafana's own
/// `defaults.ini` and its reverse-proxy guide use, and with the trailing slash Grafana adds.
fn root_url(values: &Values, http_port: u16) -> Result<String, ConfigError> {
    let protocol: String = values.get("server", "protocol")?;
    if protocol != "http" {
        return Err(values.invalid(
            "server",
            "protocol",
            "http (Tandem serves plain HTTP; terminate TLS in a proxy in front of it)",
        ));
    }
    let domain: String = values.get("server", "domain")?;
    let mut root_url = values
        .get::<String>("server", "root_url")?
        .replace("%(protocol)s", &protocol)
        .replace("%(domain)s", &domain)
        .replace("%(http_port)s", &http_port.to_string());
    if root_url.contains("%(") {
        return Err(values.invalid(
            "server",
            "root_url",
            "a URL whose only placeholders are %(protocol)s, %(domain)s and %(http_port)s",
        ));
    }
    if !root_url.starts_with("http://") && !root_url.starts_with("https://") {
        return Err(values.invalid("server", "root_url", "an http:// or https:// URL"));
    }
    // Cookie paths and links are built by appending to it.
    if !root_url.ends_with('/') {
        root_url.push('/');
    }
    Ok(root_url)
}

fn database(
    values: &Values,
    data_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<DatabaseSettings, ConfigError> {
    // Everything is read before anything is decided, so that a wrong value is reported
    // even when the chosen backend would not use it.
    let declared: Backend = values.get("database", "type")?;
    let host: String = values.get("database", "host")?;
    let name: String = values.get("database", "name")?;
    let user: String = values.get("database", "user")?;
    let password: String = values.get("database", "password")?;
    let url: String = values.get("database", "url")?;
    let ssl_mode: String = values.get("database", "ssl_mode")?;
    let path: String = values.get("database", "path")?;
    let max_open_conn: u32 = values.get("database", "max_open_conn")?;
    let max_idle_conn: u32 = values.get("database", "max_idle_conn")?;
    let conn_max_lifetime = values.get::<Seconds>("database", "conn_max_lifetime")?.0;
    let wal: bool = values.get("database", "wal")?;
    let cache_mode: CacheMode = values.get("database", "cache_mode")?;
    let migration_locking: bool = values.get("database", "migration_locking")?;
    let lock_timeout = values
        .get::<Seconds>("database", "locking_attempt_timeout_sec")?
        .0;
    let query_retries: u32 = values.get("database", "query_retries")?;
    let transaction_retries: u32 = values.get("database", "transaction_retries")?;
    let log_queries: bool = values.get("database", "log_queries")?;

    let (backend, location) = if !url.is_empty() {
        let Some(from_url) = backend_of_url(&url) else {
            return Err(values.invalid("database", "url", "a postgres:// or mysql:// URL"));
        };
        if values.is_set("database", "type") && declared != from_url {
            return Err(ConfigError::Conflict {
                section: "database",
                name: "url",
                message: format!(
                    "the URL is for {} but [database] type is {}",
                    from_url.grafana_name(),
                    declared.grafana_name()
                ),
            });
        }
        (from_url, Location::Url(url))
    } else {
        let location = match declared {
            Backend::Sqlite => Location::SqliteFile(data_dir.join(path)),
            Backend::Postgres | Backend::Mysql => {
                let Some(ssl_query) = ssl_query(declared, &ssl_mode) else {
                    let expected = match declared {
                        Backend::Postgres => {
                            "disable, allow, prefer, require, verify-ca or verify-full"
                        }
                        _ => "disable, false, true, skip-verify, or a sqlx ssl-mode",
                    };
                    return Err(values.invalid("database", "ssl_mode", expected));
                };
                // Grafana's default host names MySQL's port; a postgres user who left it
                // alone means the local postgres.
                let host = if values.is_set("database", "host") {
                    host
                } else {
                    "127.0.0.1".to_owned()
                };
                Location::Url(server_url(
                    declared, &host, &name, &user, &password, &ssl_query,
                ))
            }
        };
        (declared, location)
    };
    if cache_mode == CacheMode::Shared {
        warnings.push(
            "[database] cache_mode = shared is ignored: Tandem always uses a private \
             sqlite cache"
                .to_owned(),
        );
    }

    Ok(DatabaseSettings {
        backend,
        location,
        max_open_conn: if max_open_conn == 0 {
            DatabaseSettings::DEFAULT_MAX_OPEN
        } else {
            max_open_conn
        },
        max_idle_conn,
        conn_max_lifetime,
        wal,
        migration_locking,
        migration_lock_timeout: Some(lock_timeout).filter(|timeout| !timeout.is_zero()),
        query_retries,
        transaction_retries,
        log_queries,
        ..DatabaseSettings::default()
    })
}

fn backend_of_url(url: &str) -> Option<Backend> {
    let (scheme, _) = url.split_once("://")?;
    match scheme {
        "postgres" | "postgresql" => Some(Backend::Postgres),
        "mysql" | "mariadb" => Some(Backend::Mysql),
        _ => None,
    }
}

/// The URL query that asks for Grafana's `ssl_mode`, or `None` if the mode is unknown.
fn ssl_query(backend: Backend, ssl_mode: &str) -> Option<String> {
    match backend {
        Backend::Postgres => matches!(
            ssl_mode,
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        )
        .then(|| format!("sslmode={ssl_mode}")),
        // Grafana's MySQL values are true, false and skip-verify; sqlx's own are accepted too.
        _ => {
            let mode = match ssl_mode {
                "disable" | "false" => "disabled",
                "skip-verify" => "required",
                "true" => "verify_identity",
                "disabled" | "preferred" | "required" | "verify_ca" | "verify_identity" => ssl_mode,
                _ => return None,
            };
            Some(format!("ssl-mode={mode}"))
        }
    }
}

/// `scheme://user:password@host:port/name?query`, with the credentials and the name
/// percent-encoded so that `@`, `:` and `/` in a password survive.
fn server_url(
    backend: Backend,
    host: &str,
    name: &str,
    user: &str,
    password: &str,
    query: &str,
) -> String {
    let (scheme, default_port) = match backend {
        Backend::Postgres => ("postgres", 5432),
        _ => ("mysql", 3306),
    };
    let userinfo = match (user.is_empty(), password.is_empty()) {
        (true, true) => String::new(),
        (_, true) => format!("{}@", percent_encode(user)),
        _ => format!("{}:{}@", percent_encode(user), percent_encode(password)),
    };
    let host = with_port(host, default_port);
    format!(
        "{scheme}://{userinfo}{host}/{}?{query}",
        percent_encode(name)
    )
}

/// `host` with `port` appended unless it has one; a bare IPv6 address gets brackets.
fn with_port(host: &str, port: u16) -> String {
    if host.starts_with('[') {
        if host.contains("]:") {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        }
    } else {
        match host.matches(':').count() {
            0 => format!("{host}:{port}"),
            1 => host.to_owned(),
            _ => format!("[{host}]:{port}"),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn is_host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// Grafana's expansions inside a value, applied after the environment overrides as Grafana
/// applies them: `${VAR}` and `$__env{VAR}` become the variable (empty when unset), and
/// `$__file{path}` the file's content without surrounding blanks. A `$` that starts
/// neither stays as it is. The error says what could not be expanded.
fn expand(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (kind, braced) = match after.strip_prefix("__") {
            Some(named) => {
                let end = named
                    .find(|c: char| !c.is_ascii_lowercase())
                    .unwrap_or(named.len());
                (&named[..end], &named[end..])
            }
            None => ("env", after),
        };
        let Some((argument, remainder)) = braced
            .strip_prefix('{')
            .and_then(|inner| inner.split_once('}'))
        else {
            out.push('$');
            rest = after;
            continue;
        };
        match kind {
            "env" => out.push_str(&env(argument).unwrap_or_default()),
            "file" => {
                let content = std::fs::read_to_string(argument)
                    .map_err(|err| format!("cannot read {argument} named by $__file{{}}: {err}"))?;
                out.push_str(content.trim());
            }
            _ => return Err(format!("$__{kind}{{…}} is not supported")),
        }
        rest = remainder;
    }
    out.push_str(rest);
    Ok(out)
}

/// The layered values of every key in [`KEYS`], as text, with where each came from.
struct Values {
    entries: Vec<Entry>,
}

struct Entry {
    key: &'static Key,
    value: String,
    /// `None` for the default.
    origin: Option<String>,
    read: Cell<bool>,
}

impl Values {
    fn collect(
        layered: &::config::Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Values, ConfigError> {
        let mut entries = Vec::with_capacity(KEYS.len());
        for key in KEYS {
            let found = layered.get_table(key.section)?.remove(key.name);
            let (value, origin) = match found {
                Some(value) => {
                    let origin = value.origin().map(str::to_owned);
                    let value = value.into_string()?;
                    let value = expand(&value, env).map_err(|message| ConfigError::Expansion {
                        section: key.section,
                        name: key.name,
                        message,
                        origin: origin.clone(),
                    })?;
                    (value, origin)
                }
                None => (key.default.to_owned(), None),
            };
            // An empty value means the default, as in Grafana, whose own defaults.ini
            // leaves keys empty (`max_open_conn =`) and which ignores empty variables.
            let (value, origin) = if value.trim().is_empty() {
                (key.default.to_owned(), None)
            } else {
                (value, origin)
            };
            entries.push(Entry {
                key,
                value,
                origin,
                read: Cell::new(false),
            });
        }
        Ok(Values { entries })
    }

    /// Every key with the value in force (secrets included: the endpoint that shows them
    /// masks them).
    fn effective(&self) -> Vec<(String, String, String)> {
        self.entries
            .iter()
            .map(|entry| {
                (
                    entry.key.section.to_owned(),
                    entry.key.name.to_owned(),
                    entry.value.clone(),
                )
            })
            .collect()
    }

    /// The key's value, parsed. Panics if the key is not declared in [`KEYS`].
    fn get<T: FromValue>(&self, section: &str, name: &str) -> Result<T, ConfigError> {
        let entry = self.entry(section, name);
        entry.read.set(true);
        T::from_value(&entry.value).map_err(|expected| entry.invalid(expected))
    }

    /// Whether the key was given in the file or the environment rather than defaulted.
    fn is_set(&self, section: &str, name: &str) -> bool {
        self.entry(section, name).origin.is_some()
    }

    fn invalid(&self, section: &str, name: &str, expected: &str) -> ConfigError {
        self.entry(section, name).invalid(expected.to_owned())
    }

    fn entry(&self, section: &str, name: &str) -> &Entry {
        self.entries
            .iter()
            .find(|entry| entry.key.section == section && entry.key.name == name)
            .unwrap_or_else(|| {
                panic!("[{section}] {name} is read but not declared in config::KEYS")
            })
    }

    /// A declared key nobody reads is either dead or a forgotten read.
    fn check_all_read(&self) {
        for entry in &self.entries {
            debug_assert!(
                entry.read.get(),
                "[{}] {} is declared in config::KEYS but never read",
                entry.key.section,
                entry.key.name
            );
        }
    }
}

impl Entry {
    fn invalid(&self, expected: String) -> ConfigError {
        let value = match self.key.name {
            "url" => redact_url(&self.value),
            name if name.ends_with("password") || name == "secret_key" => "***".to_owned(),
            _ => self.value.clone(),
        };
        ConfigError::Invalid {
            section: self.key.section,
            name: self.key.name,
            value,
            expected,
            origin: self.origin.clone(),
        }
    }
}

/// A type a configuration value parses into.
trait FromValue: Sized {
    /// Parses the text of a value; the error completes "expected …".
    fn from_value(raw: &str) -> Result<Self, String>;
}

impl FromValue for String {
    fn from_value(raw: &str) -> Result<Self, String> {
        Ok(raw.to_owned())
    }
}

impl FromValue for bool {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("true or false".to_owned()),
        }
    }
}

impl FromValue for u32 {
    fn from_value(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|_| format!("a whole number from 0 to {}", u32::MAX))
    }
}

impl FromValue for usize {
    fn from_value(raw: &str) -> Result<Self, String> {
        raw.parse().map_err(|_| "a whole number".to_owned())
    }
}

impl FromValue for NonZeroUsize {
    fn from_value(raw: &str) -> Result<Self, String> {
        raw.parse().map_err(|_| "a whole number above 0".to_owned())
    }
}

/// A TCP port.
struct Port(u16);

impl FromValue for Port {
    fn from_value(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map(Port)
            .map_err(|_| "a port number (0-65535)".to_owned())
    }
}

impl FromValue for Duration {
    fn from_value(raw: &str) -> Result<Self, String> {
        parse_duration(raw).map_err(|why| format!("a duration such as 500ms, 5s or 1h30m ({why})"))
    }
}

/// A duration in which a bare number counts days, as Grafana's session lifetimes did
/// before they took durations.
struct Days(Duration);

impl FromValue for Days {
    fn from_value(raw: &str) -> Result<Self, String> {
        if !raw.is_empty() && raw.bytes().all(|byte| byte.is_ascii_digit()) {
            return raw
                .parse::<u64>()
                .ok()
                .and_then(|days| days.checked_mul(86_400))
                .map(|secs| Days(Duration::from_secs(secs)))
                .ok_or_else(|| "a number of days or a duration such as 7d".to_owned());
        }
        parse_duration(raw)
            .map(Days)
            .map_err(|why| format!("a number of days or a duration such as 7d ({why})"))
    }
}

impl FromValue for SameSite {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            "disabled" => Ok(SameSite::Disabled),
            _ => Err("lax, strict, none or disabled".to_owned()),
        }
    }
}

/// A duration in which a bare number counts seconds, for Grafana's keys in seconds.
struct Seconds(Duration);

impl FromValue for Seconds {
    fn from_value(raw: &str) -> Result<Self, String> {
        if !raw.is_empty() && raw.bytes().all(|byte| byte.is_ascii_digit()) {
            return raw
                .parse()
                .map(|secs| Seconds(Duration::from_secs(secs)))
                .map_err(|_| "a number of seconds that fits in 64 bits".to_owned());
        }
        parse_duration(raw)
            .map(Seconds)
            .map_err(|why| format!("a number of seconds or a duration such as 4h ({why})"))
    }
}

impl FromValue for Backend {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw {
            "sqlite3" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            "mysql" => Ok(Backend::Mysql),
            _ => Err("sqlite3, postgres or mysql".to_owned()),
        }
    }
}

impl FromValue for tracing::Level {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw.to_ascii_lowercase().as_str() {
            "trace" => Ok(tracing::Level::TRACE),
            "debug" => Ok(tracing::Level::DEBUG),
            "info" => Ok(tracing::Level::INFO),
            "warn" => Ok(tracing::Level::WARN),
            "error" | "critical" => Ok(tracing::Level::ERROR),
            _ => Err("trace, debug, info, warn, error or critical".to_owned()),
        }
    }
}

impl FromValue for LogFormat {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("text or json".to_owned()),
        }
    }
}

/// Grafana's SQLite `cache_mode`; accepted so that Grafana files load, never applied.
#[derive(PartialEq, Eq)]
enum CacheMode {
    Private,
    Shared,
}

impl FromValue for CacheMode {
    fn from_value(raw: &str) -> Result<Self, String> {
        match raw {
            "private" => Ok(CacheMode::Private),
            "shared" => Ok(CacheMode::Shared),
            _ => Err("private or shared".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tandem_http::Settings;
    use tandem_storage::{Backend, DatabaseSettings, Location};

    use crate::cli::CliArgs;
    use crate::config::{
        ConfigError, KEYS, Loaded, LogFormat, LogSettings, describe_keys, load, load_from,
        parse_duration,
    };

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(content: &str) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "tandem-server-config-{}-{n}.ini",
                std::process::id()
            ));
            std::fs::write(&path, content).expect("write a temporary file");
            TempFile(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn try_load(ini: Option<&str>, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let file = ini.map(TempFile::new);
        let env = |name: &str| {
            env.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        };
        load_from(file.as_ref().map(TempFile::path), &env)
    }

    #[track_caller]
    fn loaded(ini: &str, env: &[(&str, &str)]) -> Settings {
        match try_load(Some(ini), env) {
            Ok(loaded) => loaded.settings,
            Err(err) => panic!("loading failed: {err}"),
        }
    }

    /// Loading fails with a message containing `expected`.
    #[track_caller]
    fn check_error(ini: &str, env: &[(&str, &str)], expected: &str) {
        match try_load(Some(ini), env) {
            Ok(loaded) => panic!("loading succeeded: {loaded:?}"),
            Err(err) => {
                let message = err.to_string();
                assert!(
                    message.contains(expected),
                    "error {message:?} does not contain {expected:?}"
                );
            }
        }
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        // Loading the defaults reads every key, which is checked in debug builds.
        let loaded = try_load(None, &[]).expect("the defaults load");
        let defaults = Settings::default();
        let settings = &loaded.settings;

        assert_eq!(settings.server.http_addr, defaults.server.http_addr);
        assert_eq!(settings.server.http_port, 3000);
        assert_eq!(settings.server.http_port, defaults.server.http_port);
        assert_eq!(settings.server.root_url, defaults.server.root_url);
        assert_eq!(
            settings.server.router_logging,
            defaults.server.router_logging
        );
        assert_eq!(
            settings.server.max_request_body_bytes,
            defaults.server.max_request_body_bytes
        );
        assert_eq!(
            settings.server.max_connections,
            defaults.server.max_connections
        );
        assert_eq!(settings.database, defaults.database);
        assert_eq!(
            settings.database.location,
            Location::SqliteFile(PathBuf::from("data/tandem.db"))
        );
        assert_eq!(settings.cluster.instance_id, None);
        assert_eq!(settings.cluster.advertise_address, None);
        assert_eq!(
            settings.cluster.heartbeat_interval,
            defaults.cluster.heartbeat_interval
        );
        assert_eq!(settings.cluster.peer_timeout, defaults.cluster.peer_timeout);
        assert_eq!(settings.identity.secret_key, defaults.identity.secret_key);
        let (identity, expected) = (&settings.identity, &defaults.identity);
        assert_eq!(identity.rotation_interval, expected.rotation_interval);
        assert_eq!(
            identity.max_inactive_lifetime,
            expected.max_inactive_lifetime
        );
        assert_eq!(identity.max_lifetime, expected.max_lifetime);
        assert_eq!(identity.rotation_grace, expected.rotation_grace);
        assert_eq!(
            identity.brute_force_protection,
            expected.brute_force_protection
        );
        assert_eq!(identity.max_failed_logins, expected.max_failed_logins);
        assert_eq!(
            (
                &identity.admin_user,
                &identity.admin_password,
                &identity.admin_email
            ),
            (
                &expected.admin_user,
                &expected.admin_password,
                &expected.admin_email
            )
        );
        assert_eq!(
            settings.auth.login_cookie_name,
            defaults.auth.login_cookie_name
        );
        assert_eq!(settings.auth.cookie_secure, defaults.auth.cookie_secure);
        assert_eq!(settings.auth.cookie_samesite, defaults.auth.cookie_samesite);
        assert!(settings.auth.csrf.trusted_origins.is_empty());
        assert!(settings.auth.csrf.additional_headers.is_empty());
        assert!(!settings.auth.csrf.always_check);
        assert_eq!(
            loaded.log,
            LogSettings {
                level: tracing::Level::INFO,
                format: LogFormat::Text
            }
        );
        assert_eq!(loaded.file, None);
        // The published secret key deserves a warning.
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("secret_key"));
    }

    #[test]
    fn the_file_overrides_the_defaults() {
        let loaded = try_load(
            Some(
                "[server]\n\
                 http_addr = 127.0.0.1\n\
                 http_port = 4000\n\
                 root_url = https://grafana.example.com/sub\n\
                 router_logging = true\n\
                 [paths]\n\
                 data = /var/lib/tandem\n\
                 [database]\n\
                 max_open_conn = 7\n\
                 conn_max_lifetime = 1h\n\
                 locking_attempt_timeout_sec = 30\n\
                 wal = false\n\
                 [security]\n\
                 secret_key = s3cret\n\
                 [log]\n\
                 level = critical\n\
                 format = json\n\
                 [cluster]\n\
                 instance_id = a1\n\
                 advertise_address = 10.0.0.5:3000\n\
                 heartbeat_interval = 500ms\n\
                 peer_timeout = 3s\n",
            ),
            &[],
        )
        .expect("the file loads");
        let settings = &loaded.settings;
        assert_eq!(settings.server.http_addr, "127.0.0.1");
        assert_eq!(settings.server.http_port, 4000);
        assert_eq!(settings.server.root_url, "https://grafana.example.com/sub/");
        assert!(settings.server.router_logging);
        assert_eq!(
            settings.database.location,
            Location::SqliteFile(PathBuf::from("/var/lib/tandem/tandem.db"))
        );
        assert_eq!(settings.database.max_open_conn, 7);
        assert_eq!(
            settings.database.conn_max_lifetime,
            Duration::from_secs(3600)
        );
        assert_eq!(
            settings.database.migration_lock_timeout,
            Some(Duration::from_secs(30))
        );
        assert!(!settings.database.wal);
        assert_eq!(settings.identity.secret_key, "s3cret");
        assert_eq!(loaded.log.level, tracing::Level::ERROR);
        assert_eq!(loaded.log.format, LogFormat::Json);
        assert_eq!(settings.cluster.instance_id.as_deref(), Some("a1"));
        assert_eq!(
            settings.cluster.advertise_address.as_deref(),
            Some("10.0.0.5:3000")
        );
        assert_eq!(
            settings.cluster.heartbeat_interval,
            Duration::from_millis(500)
        );
        assert_eq!(settings.cluster.peer_timeout, Duration::from_secs(3));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let ini = "[server]\nhttp_port = 3001\nhttp_addr = 10.0.0.1\n";
        let settings = loaded(ini, &[("GF_SERVER_HTTP_PORT", "4000")]);
        assert_eq!(settings.server.http_port, 4000);
        assert_eq!(settings.server.http_addr, "10.0.0.1");

        // An empty variable is ignored, as Grafana ignores it.
        let settings = loaded(ini, &[("GF_SERVER_HTTP_PORT", "")]);
        assert_eq!(settings.server.http_port, 3001);

        let settings = loaded("", &[("GF_DATABASE_MAX_IDLE_CONN", "9")]);
        assert_eq!(settings.database.max_idle_conn, 9);
    }

    #[test]
    fn file_variables_read_their_file() {
        let secret = TempFile::new("p@ss:word\n");
        let path = secret.path().to_str().expect("a UTF-8 temporary path");
        let settings = loaded(
            "[database]\ntype = postgres\nhost = db\n",
            &[("GF_DATABASE_PASSWORD__FILE", path)],
        );
        assert_eq!(
            settings.database.location,
            Location::Url("postgres://root:p%40ss%3Aword@db:5432/grafana?sslmode=disable".into())
        );

        // Only one trailing newline is removed.
        let secret = TempFile::new("key\n\n");
        let path = secret.path().to_str().expect("a UTF-8 temporary path");
        let settings = loaded("", &[("GF_SECURITY_SECRET_KEY__FILE", path)]);
        assert_eq!(settings.identity.secret_key, "key\n");
    }

    #[test]
    fn file_variable_errors() {
        check_error(
            "",
            &[("GF_DATABASE_PASSWORD__FILE", "/nonexistent/tandem/secret")],
            "cannot read /nonexistent/tandem/secret named by GF_DATABASE_PASSWORD__FILE",
        );
        check_error(
            "",
            &[
                ("GF_DATABASE_PASSWORD", "a"),
                ("GF_DATABASE_PASSWORD__FILE", "/run/secrets/db"),
            ],
            "GF_DATABASE_PASSWORD and GF_DATABASE_PASSWORD__FILE are both set",
        );
    }

    #[test]
    fn server_urls_are_built_from_their_parts() {
        #[track_caller]
        fn check(ini: &str, expected: &str) {
            let settings = loaded(ini, &[]);
            assert_eq!(
                settings.database.location,
                Location::Url(expected.to_owned())
            );
        }
        check(
            "[database]\ntype = postgres\nhost = db.internal\nname = tandem\n\
             user = app\npassword = \"\"\"p@ss:w/rd#1;\"\"\"\nssl_mode = verify-full\n",
            "postgres://app:p%40ss%3Aw%2Frd%231%3B@db.internal:5432/tandem?sslmode=verify-full",
        );
        // Grafana's default host names MySQL's port; for postgres the local port is meant.
        check(
            "[database]\ntype = postgres\n",
            "postgres://root@127.0.0.1:5432/grafana?sslmode=disable",
        );
        check(
            "[database]\ntype = postgres\nhost = db:6543\n",
            "postgres://root@db:6543/grafana?sslmode=disable",
        );
        check(
            "[database]\ntype = mysql\nhost = db\nuser = grafana\npassword = pw\n",
            "mysql://grafana:pw@db:3306/grafana?ssl-mode=disabled",
        );
        check(
            "[database]\ntype = mysql\nssl_mode = skip-verify\n",
            "mysql://root@127.0.0.1:3306/grafana?ssl-mode=required",
        );
        check(
            "[database]\ntype = mysql\nhost = ::1\n",
            "mysql://root@[::1]:3306/grafana?ssl-mode=disabled",
        );
    }

    #[test]
    fn grafanas_smtp_section_is_read() {
        let ini = "[smtp]\nenabled = true\nhost = mail.example.com:587\nuser = me\n\
                   password = \"\"\"p#ss;word\"\"\"\nfrom_address = alerts@example.com\n\
                   from_name = Alerts\nskip_verify = true\n";
        let smtp = loaded(ini, &[("GF_SMTP_STARTTLS_POLICY", "MandatoryStartTLS")])
            .notifications
            .smtp;
        assert!(smtp.enabled && smtp.skip_verify);
        assert_eq!(smtp.host, "mail.example.com:587");
        assert_eq!(
            (smtp.user.as_str(), smtp.password.as_str()),
            ("me", "p#ss;word")
        );
        assert_eq!(smtp.from_address, "alerts@example.com");
        assert_eq!(smtp.from_name, "Alerts");
        assert_eq!(
            smtp.start_tls_policy,
            tandem_http::StartTlsPolicy::Mandatory
        );
        assert!(
            !format!("{smtp:?}").contains("p#ss"),
            "the password is never printed"
        );
        let defaults = loaded("", &[]).notifications.smtp;
        assert_eq!(defaults, tandem_http::SmtpSettings::default());
        check_error("[smtp]\nstartTLS_policy = always\n", &[], "startTLS_policy");
        check_error("[smtp]\nenabled = true\nhost = mail:smtp\n", &[], "host");
        check_error(
            "[smtp]\nenabled = true\nfrom_address = nobody\n",
            &[],
            "from_address",
        );
        check_error(
            "[smtp]\nenabled = true\ncert_file = /nonexistent/client.pem\nkey_file = /nonexistent/client.key\n",
            &[],
            "cannot read /nonexistent/client.pem",
        );
        check_error(
            "[smtp]\nenabled = true\ncert_file = /etc/hostname\n",
            &[],
            "go together",
        );
        check_error(
            "[cluster]\nnotification_log_retention = 1s\n",
            &[],
            "notification_log_retention",
        );
    }

    #[test]
    fn a_url_overrides_the_parts() {
        let url = "postgres://u:pw@db:5432/tandem?sslmode=require";
        let settings = loaded(&format!("[database]\nurl = {url}\nhost = ignored\n"), &[]);
        assert_eq!(settings.database.backend, Backend::Postgres);
        assert_eq!(settings.database.location, Location::Url(url.to_owned()));

        let settings = loaded("[database]\ntype = postgres\n", &[("GF_DATABASE_URL", url)]);
        assert_eq!(settings.database.location, Location::Url(url.to_owned()));
    }

    #[test]
    fn sqlite_paths_are_resolved_against_the_data_directory() {
        #[track_caller]
        fn check(ini: &str, expected: &str) {
            let settings = loaded(ini, &[]);
            assert_eq!(
                settings.database.location,
                Location::SqliteFile(PathBuf::from(expected))
            );
        }
        check("[paths]\ndata = /srv/t\n", "/srv/t/tandem.db");
        check("[database]\npath = other.db\n", "data/other.db");
        check(
            "[paths]\ndata = /srv/t\n[database]\npath = /abs/x.db\n",
            "/abs/x.db",
        );
        check(
            "[paths]\ndata = C:\\tandem\\data\n",
            "C:\\tandem\\data/tandem.db",
        );
    }

    #[test]
    fn dashboard_providers_are_read_from_the_provisioning_directory() {
        let dir =
            std::env::temp_dir().join(format!("tandem-server-provisioning-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dashboards")).expect("a provisioning directory");
        let provider = "apiVersion: 1\nproviders:\n  - name: files\n    folder: Ops\n    \
                        options:\n      path: ${DASHBOARDS}\n";
        std::fs::write(dir.join("dashboards/a.yaml"), provider).expect("a provider file");
        let env = [
            ("GF_PATHS_PROVISIONING", dir.to_str().expect("a UTF-8 path")),
            ("DASHBOARDS", "/var/lib/dashboards"),
        ];
        let settings = loaded("", &env);
        let providers = &settings.provisioning.providers;
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].name, "files");
        assert_eq!(providers[0].folder, "Ops");
        assert_eq!(providers[0].path, Path::new("/var/lib/dashboards"));

        // The same provider name twice is refused, naming the file.
        std::fs::write(dir.join("dashboards/b.yml"), provider).expect("a second file");
        check_error("", &env, "provider name \"files\" is used more than once");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn data_sources_are_read_from_the_provisioning_directory() {
        let dir = std::env::temp_dir().join(format!(
            "tandem-server-ds-provisioning-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("datasources")).expect("a provisioning directory");
        let file = "apiVersion: 1\ndatasources:\n  - name: Prom\n    type: prometheus\n    \
                    url: http://${PROM_HOST}:9090\n    secureJsonData:\n      \
                    basicAuthPassword: $PROM_PASSWORD\n";
        std::fs::write(dir.join("datasources/a.yaml"), file).expect("a file");
        let env = [
            ("GF_PATHS_PROVISIONING", dir.to_str().expect("a UTF-8 path")),
            ("PROM_HOST", "prometheus.internal"),
            ("PROM_PASSWORD", "s3cret"),
        ];
        let settings = loaded("", &env);
        let entries = &settings.datasource_provisioning.datasources;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].spec.name, "Prom");
        assert_eq!(entries[0].spec.url, "http://prometheus.internal:9090");
        assert_eq!(
            entries[0].spec.secure_json_data.get("basicAuthPassword"),
            Some("s3cret")
        );
        std::fs::write(dir.join("datasources/b.yaml"), "apiVersion: [\n").expect("a bad file");
        check_error("", &env, "b.yaml");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn csrf_keys_are_grafanas_space_separated_lists() {
        let settings = loaded(
            "[security]\ncsrf_trusted_origins = idp.example  grafana.example.com\n\
             csrf_additional_headers = X-Forwarded-Host\n",
            &[("GF_SECURITY_CSRF_ALWAYS_CHECK", "true")],
        );
        let csrf = &settings.auth.csrf;
        assert_eq!(csrf.trusted_origins, ["idp.example", "grafana.example.com"]);
        assert_eq!(csrf.additional_headers, ["X-Forwarded-Host"]);
        assert!(csrf.always_check);
        check_error(
            "[security]\ncsrf_always_check = sometimes\n",
            &[],
            "[security] csrf_always_check",
        );
    }

    #[test]
    fn live_keys_are_grafanas_and_tandems() {
        let defaults = loaded("", &[]).live;
        assert_eq!(defaults, tandem_live::LiveSettings::default());
        let settings = loaded(
            "[live]\nmax_connections = -1\nha_engine = redis\nha_engine_address = redis://r:6380\n\
             allowed_origins = https://a.example, https://b.example\nha_prefix = grafana\n\
             [cluster]\nlive_history_size = 7\nlive_ping_interval = 2s\n",
            &[("GF_LIVE_HA_ENGINE_PASSWORD", "pw")],
        )
        .live;
        assert_eq!(settings.max_connections, -1);
        assert_eq!(settings.ha_engine, tandem_live::HaEngine::Redis);
        assert_eq!(settings.ha_engine_address, "redis://r:6380");
        assert_eq!(settings.ha_engine_password, "pw");
        assert_eq!(
            settings.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(settings.history_size, 7);
        assert_eq!(settings.ping_interval, Duration::from_secs(2));
        check_error(
            "[live]\nha_engine = nats\n",
            &[],
            "[live] ha_engine: expected empty, redis or postgres",
        );
        check_error(
            "[live]\nmax_connections = -5\n",
            &[],
            "[live] max_connections: expected a number of connections, or -1 for no limit",
        );
    }

    #[test]
    fn dataproxy_keys_set_how_data_sources_are_queried() {
        let defaults = loaded("", &[]).datasources.http;
        assert_eq!(defaults.timeout, Duration::from_secs(30));
        assert_eq!(defaults.connect_timeout, Duration::from_secs(10));
        assert_eq!(defaults.response_limit, 256 * 1024 * 1024);
        let settings = loaded(
            "[dataproxy]\ntimeout = 7\ndialTimeout = 3\nresponse_limit = 1024\n",
            &[],
        );
        assert_eq!(settings.datasources.http.timeout, Duration::from_secs(7));
        assert_eq!(
            settings.datasources.http.connect_timeout,
            Duration::from_secs(3)
        );
        assert_eq!(settings.datasources.http.response_limit, 1024);
        let from_env = loaded("", &[("GF_DATAPROXY_DIALTIMEOUT", "4")]);
        assert_eq!(
            from_env.datasources.http.connect_timeout,
            Duration::from_secs(4)
        );
        check_error(
            "[dataproxy]\ntimeout = 0\n",
            &[],
            "[dataproxy] timeout: expected a number of seconds above 0",
        );
    }

    #[test]
    fn invalid_values_name_their_section_and_key() {
        check_error(
            "[server]\nhttp_port = abc\n",
            &[],
            "invalid value \"abc\" for [server] http_port: expected a port number (0-65535)",
        );
        check_error(
            "",
            &[("GF_SERVER_HTTP_PORT", "70000")],
            "for [server] http_port: expected a port number (0-65535) (from GF_SERVER_HTTP_PORT)",
        );
        check_error(
            "[cluster]\n\npeer_timeout = 5\n",
            &[],
            "invalid value \"5\" for [cluster] peer_timeout: expected a duration such as 500ms, 5s \
             or 1h30m (the unit is missing after 5)",
        );
        check_error(
            "[dashboards]\nversions_to_keep = 0\n",
            &[],
            "[dashboards] versions_to_keep: expected a number above 0",
        );
        check_error(
            "[cluster]\nheartbeat_interval = 1x\n",
            &[],
            "[cluster] heartbeat_interval",
        );
        check_error(
            "[database]\nwal = maybe\n",
            &[],
            "invalid value \"maybe\" for [database] wal: expected true or false",
        );
        check_error(
            "[database]\ntype = oracle\n",
            &[],
            "invalid value \"oracle\" for [database] type: expected sqlite3, postgres or mysql",
        );
        check_error(
            "[database]\nmax_open_conn = -1\n",
            &[],
            "[database] max_open_conn",
        );
        check_error(
            "[database]\nconn_max_lifetime = forever\n",
            &[],
            "[database] conn_max_lifetime",
        );
        check_error(
            "[server]\nmax_connections = 0\n",
            &[],
            "[server] max_connections",
        );
        check_error("[log]\nlevel = loud\n", &[], "[log] level");
        check_error("[log]\nformat = xml\n", &[], "[log] format");
        check_error(
            "[database]\ncache_mode = none\n",
            &[],
            "[database] cache_mode",
        );
        check_error(
            "[database]\ntype = postgres\nssl_mode = true\n",
            &[],
            "[database] ssl_mode",
        );
        check_error(
            "[cluster]\nadvertise_address = host\n",
            &[],
            "[cluster] advertise_address",
        );
        check_error(
            "[cluster]\nheartbeat_interval = 0\n",
            &[],
            "[cluster] heartbeat_interval",
        );
        check_error(
            "[cluster]\nheartbeat_interval = 5s\npeer_timeout = 5s\n",
            &[],
            "[cluster] peer_timeout: 5s must be longer than [cluster] heartbeat_interval",
        );
        check_error(
            "[server]\nroot_url = localhost:3000\n",
            &[],
            "[server] root_url",
        );
        check_error(
            "[server]\nroot_url = http://%(http_addr)s/\n",
            &[],
            "[server] root_url: expected a URL whose only placeholders are",
        );
        check_error("[server]\nprotocol = https\n", &[], "[server] protocol");
    }

    #[test]
    fn errors_say_which_line_set_the_value() {
        let file = TempFile::new("[server]\n; the port\nhttp_port = abc\n");
        let err = load_from(Some(file.path()), &|_| None).expect_err("a bad port");
        let expected = format!("(from {}:3)", file.path().display());
        assert!(err.to_string().ends_with(&expected), "{err}");
    }

    #[test]
    fn invalid_urls_do_not_show_the_password() {
        check_error(
            "[database]\nurl = sqlserver://sa:hunter2@db/x\n",
            &[],
            "invalid value \"sqlserver://sa:***@db/x\" for [database] url",
        );
    }

    #[test]
    fn type_and_url_must_agree() {
        check_error(
            "[database]\ntype = mysql\nurl = postgres://u:p@db/x\n",
            &[],
            "[database] url: the URL is for postgres but [database] type is mysql",
        );
        check_error(
            "[database]\nurl = postgres://u:p@db/x\n",
            &[("GF_DATABASE_TYPE", "sqlite3")],
            "[database] url",
        );
    }

    #[test]
    fn root_url_placeholders_are_expanded() {
        let ini = "[server]\ndomain = grafana.example.com\n\
                   root_url = %(protocol)s://%(domain)s:%(http_port)s/grafana\n";
        let settings = loaded(ini, &[]);
        assert_eq!(
            settings.server.root_url,
            "http://grafana.example.com:3000/grafana/"
        );
        // As in Grafana, the placeholders see the environment's overrides.
        let settings = loaded(ini, &[("GF_SERVER_HTTP_PORT", "4000")]);
        assert_eq!(
            settings.server.root_url,
            "http://grafana.example.com:4000/grafana/"
        );
        let settings = loaded(
            "",
            &[(
                "GF_SERVER_ROOT_URL",
                "%(protocol)s://%(domain)s:%(http_port)s/",
            )],
        );
        assert_eq!(settings.server.root_url, "http://localhost:3000/");
    }

    #[test]
    fn grafana_expansions_in_values() {
        let secret = TempFile::new("  from-a-file \n");
        let ini = format!(
            "[database]\ntype = postgres\nhost = ${{DB_HOST}}:6543\nuser = $__env{{DB_USER}}\n\
             password = $__file{{{}}}\nname = pa$$word$x\n",
            secret.path().display()
        );
        let settings = loaded(&ini, &[("DB_HOST", "db"), ("DB_USER", "app")]);
        assert_eq!(
            settings.database.location,
            Location::Url(
                "postgres://app:from-a-file@db:6543/pa%24%24word%24x?sslmode=disable".to_owned()
            )
        );

        // A variable that is unset expands to nothing, which means the default.
        let result = try_load(Some("[security]\nsecret_key = ${UNSET}\n"), &[]);
        let result = result.expect("loads");
        assert_eq!(result.settings.identity.secret_key, "SW2YcwTIb9zpOOhoPsMm");
        assert!(result.warnings[0].contains("secret_key"));

        // Expansions apply to the environment's values too.
        let settings = loaded("", &[("GF_SECURITY_SECRET_KEY", "${SK}"), ("SK", "abc")]);
        assert_eq!(settings.identity.secret_key, "abc");

        check_error(
            "[database]\npassword = $__vault{secret/db}\n",
            &[],
            "[database] password: $__vault{…} is not supported (from ",
        );
        check_error(
            "[database]\npassword = $__file{/nonexistent/tandem/pw}\n",
            &[],
            "[database] password: cannot read /nonexistent/tandem/pw named by $__file{}",
        );
    }

    #[test]
    fn an_empty_value_means_the_default() {
        let settings = loaded(
            "[database]\ntype =\nmax_open_conn =\nhost =\n[server]\nhttp_port =\n",
            &[],
        );
        assert_eq!(settings.database.backend, Backend::Sqlite);
        assert_eq!(
            settings.database.max_open_conn,
            DatabaseSettings::DEFAULT_MAX_OPEN
        );
        assert_eq!(settings.server.http_port, 3000);
    }

    #[test]
    fn grafana_files_load() {
        // Comments of both kinds, keys Tandem does not read, Grafana's alerting HA keys,
        // and sections Tandem does not know are all accepted.
        let settings = loaded(
            "##################### Grafana Configuration #####################\n\
             app_mode = production\n\
             instance_name = ${HOSTNAME}\n\
             [paths]\n\
             ;data = /var/lib/grafana\n\
             [server]\n\
             protocol = http\n\
             \x20   ; an indented comment must not swallow the next key\n\
             http_port = 3100 ; inline comment\n\
             enforce_domain = false\n\
             [database]\n\
             # type = mysql\n\
             password = \"\"\"#not;a comment\"\"\"\n\
             [unified_alerting]\n\
             enabled = true\n\
             ha_peers = tandem-1:9094,tandem-2:9094\n\
             ha_listen_address = ${POD_IP}:9094\n\
             ha_peer_timeout = 15s\n\
             [unified_alerting.screenshots]\n\
             capture = false\n\
             [auth.generic_oauth]\n\
             scopes = openid email profile\n\
             [plugin.grafana-image-renderer]\n\
             rendering_ignore_https_errors = true\n",
            &[],
        );
        assert_eq!(settings.server.http_port, 3100);
        assert_eq!(settings.database.backend, Backend::Sqlite);
    }

    #[test]
    fn state_history_is_on_unless_switched_off_by_file_or_environment() {
        assert!(loaded("", &[]).alerting.state_history);
        let off = loaded("[unified_alerting.state_history]\nenabled = false\n", &[]);
        assert!(!off.alerting.state_history);
        let off = loaded(
            "",
            &[("GF_UNIFIED_ALERTING_STATE_HISTORY_ENABLED", "false")],
        );
        assert!(!off.alerting.state_history);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let args = CliArgs {
            config: Some(PathBuf::from("/nonexistent/tandem.ini")),
            ..CliArgs::default()
        };
        let err = load(&args, |_| None).expect_err("the file does not exist");
        assert!(
            err.to_string()
                .starts_with("cannot read the configuration file /nonexistent/tandem.ini: "),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let file = TempFile::new("[server]\nhttp_port 3000\n");
        let err = load_from(Some(file.path()), &|_| None).expect_err("not INI");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2: expected `key = value` or a `[section]` header",
                file.path().display()
            )
        );
    }

    #[test]
    fn durations() {
        #[track_caller]
        fn check(input: &str, expected: Option<Duration>) {
            assert_eq!(parse_duration(input).ok(), expected, "input {input:?}");
        }
        let ms = |n| Some(Duration::from_millis(n));
        let s = |n| Some(Duration::from_secs(n));
        check("0", s(0));
        check("500ms", ms(500));
        check("5s", s(5));
        check("1m", s(60));
        check("1h", s(3600));
        check("7d", s(7 * 86_400));
        check("1w", s(7 * 86_400));
        check("1h30m", s(5400));
        check("1m30s250ms", ms(90_250));
        check("0s", s(0));
        check("", None);
        check("5", None);
        check("s", None);
        check("1x", None);
        check("1.5h", None);
        check("-1s", None);
        check("1h 30m", None);
        check("5S", None);
        check("99999999999999999999s", None);
        check("999999999999w", None);
    }

    #[test]
    fn keys_are_unique_and_help_lists_them() {
        let help = describe_keys();
        for (index, key) in KEYS.iter().enumerate() {
            assert!(
                !KEYS[..index]
                    .iter()
                    .any(|other| other.section == key.section && other.name == key.name),
                "[{}] {} is declared twice",
                key.section,
                key.name
            );
            assert!(
                help.contains(&format!("{} = {}", key.name, key.default)),
                "{}",
                key.name
            );
        }
        assert!(help.contains("  [database]\n"));
    }

    #[test]
    fn environment_variable_names() {
        let names: Vec<String> = KEYS.iter().map(|key| key.env_var()).collect();
        assert!(names.contains(&"GF_SERVER_HTTP_PORT".to_owned()));
        assert!(names.contains(&"GF_DATABASE_LOCKING_ATTEMPT_TIMEOUT_SEC".to_owned()));
        let grafana_style = crate::config::key("auth.generic-oauth", "api.url", "", "");
        assert_eq!(grafana_style.env_var(), "GF_AUTH_GENERIC_OAUTH_API_URL");
    }

    /// `docs/configuration.md` has a `## [section]` heading per section, followed by a table
    /// whose rows start `` | `key` | `default` | ``; every key in KEYS must be there with its
    /// default, and every row must be a key in KEYS.
    #[test]
    fn every_key_is_documented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let page = std::fs::read_to_string(path).expect("docs/configuration.md exists");

        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut section: Option<&str> = None;
        for line in page.lines() {
            if line.starts_with('#') {
                section = line
                    .strip_prefix("## [")
                    .and_then(|rest| rest.strip_suffix(']'));
                continue;
            }
            let (Some(section), Some(row)) = (section, line.strip_prefix("| `")) else {
                continue;
            };
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[0].trim_end_matches('`');
            let default = cells.get(1).copied().unwrap_or_default().trim_matches('`');
            rows.push((section.to_owned(), name.to_owned(), default.to_owned()));
        }

        for key in KEYS {
            let row = rows
                .iter()
                .find(|(section, name, _)| section == key.section && name == key.name);
            let Some((_, _, default)) = row else {
                panic!(
                    "[{}] {} is missing from docs/configuration.md",
                    key.section, key.name
                );
            };
            assert_eq!(
                default, key.default,
                "docs/configuration.md gives [{}] {} another default",
                key.section, key.name
            );
        }
        for (section, name, _) in &rows {
            assert!(
                KEYS.iter()
                    .any(|key| key.section == section && key.name == name),
                "docs/configuration.md documents [{section}] {name}, which is not in KEYS"
            );
        }
    }
}
