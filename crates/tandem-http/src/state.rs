//! What every handler can reach: the instance's database, domain services and settings.

use std::sync::Arc;
use std::time::Duration;

use tandem_alerting::AlertRules;
use tandem_dashboards::Dashboards;
use tandem_datasources::DataSourceService;
use tandem_live::Hub;
use tandem_sessions::Identity;
use tandem_storage::{Database, Membership};

use crate::{BuildInfo, Metrics};

/// What every handler can reach: one shared [`AppStateParts`], so that a clone per
/// request and per middleware layer costs one reference count rather than one per field.
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    /// Shares `parts` between every handler.
    pub fn new(parts: AppStateParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppStateParts {
    /// The instance's database pool.
    pub db: Database,
    /// The cluster membership view.
    pub membership: Arc<dyn Membership>,
    /// This instance's id.
    pub instance_id: Arc<str>,
    /// Peers silent for longer are dead.
    pub peer_timeout: Duration,
    /// The Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// Build information.
    pub build: BuildInfo,
    /// `[server] root_url`.
    pub root_url: Arc<str>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Log every request at info level.
    pub router_logging: bool,
    /// Leave out `X-Frame-Options: deny` (`[security] allow_embedding`).
    pub allow_embedding: bool,
    /// Users, orgs, sessions and keys.
    pub identity: Identity,
    /// Preferences of users, teams and orgs.
    pub preferences: Arc<dyn tandem_sessions::PreferenceStore>,
    /// Cookie settings.
    pub auth: Arc<crate::AuthSettings>,
    /// Folders, dashboards, versions, stars and search.
    pub dashboards: Dashboards,
    /// Annotations.
    pub annotations: Arc<dyn tandem_dashboards::AnnotationStore>,
    /// Dashboard snapshots.
    pub snapshots: Arc<dyn tandem_dashboards::SnapshotStore>,
    /// Library panels and variables.
    pub library: Arc<dyn tandem_dashboards::LibraryElementStore>,
    /// Folder and dashboard permissions, and what they grant.
    pub permissions: tandem_dashboards::Permissions,
    /// Data sources and the queries and expressions over them.
    pub datasources: DataSourceService,
    /// Grafana Live: this instance's WebSocket connections and the HA engine.
    pub live: Arc<Hub>,
    /// Alert rules and their state.
    pub alerting: AlertRules,
    /// Contact points, notification policies, mute timings and templates.
    pub notifications: std::sync::Arc<dyn tandem_alerting::notify::store::NotificationStore>,
    /// Wakes this instance's notification dispatcher (after a post to the Alertmanager API).
    pub dispatch_wake: std::sync::Arc<tokio::sync::Notify>,
    /// `[smtp]`: how email contact points send (the test-receiver call uses it).
    pub smtp: Arc<tandem_alerting::SmtpSettings>,
    /// Every configuration key and its value in force, for `GET /api/admin/settings`.
    pub effective_config: Arc<Vec<(String, String, String)>>,
}

impl AppStateParts {
    /// The path part of `root_url` without its trailing slash (`""` at the root), Grafana's
    /// `appSubUrl`.
    pub fn sub_path(&self) -> &str {
        let url = self.root_url.as_ref();
        let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
        match after_scheme.find('/') {
            Some(slash) => after_scheme[slash..].trim_end_matches('/'),
            None => "",
        }
    }
}
