//! Tandem's Grafana-compatible HTTP API, and the composition of one instance.
//!
//! [`router`] builds the axum router of the API over an [`AppState`]; [`serve`] runs it on
//! hyper with a connection limit and graceful shutdown; [`Server::start`] composes a whole
//! instance (database, migrations, membership heartbeat, cluster jobs, HTTP) and is what
//! the `tandem-server` binary runs.
//!
//! This is the only crate that knows HTTP. Handlers translate requests into calls on the
//! storage and domain crates and map their errors through [`ApiError`]; they hold no
//! business rules of their own. Configuration arrives as typed [`Settings`]: this crate
//! reads no files or environment variables.

mod api;
mod auth;
mod edge;
mod error;
mod extract;
mod metrics;
mod routes;
mod serve;
mod server;
mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tandem_dashboards::Dashboards;
use tandem_sessions::Identity;
use tandem_storage::{Database, Membership};

pub use crate::auth::{AuthMethod, ClientAddr, CurrentUser};
pub use crate::error::{ApiError, Error, Result};
pub use crate::extract::{JsonBody, PathParams, QueryParams};
pub use crate::metrics::Metrics;
pub use crate::serve::serve;
pub use crate::server::{RunningServer, Server};
pub use crate::settings::{AuthSettings, ClusterSettings, SameSite, ServerSettings, Settings};

/// The Grafana version Tandem reports; clients choose their API flavour by it.
pub const GRAFANA_VERSION: &str = "12.1.0";

/// What the server says about its build.
#[derive(Clone, Copy, Debug)]
pub struct BuildInfo {
    /// The Grafana version Tandem is compatible with ([`GRAFANA_VERSION`]).
    pub version: &'static str,
    /// The git commit it was built from.
    pub commit: &'static str,
    /// Grafana's edition string.
    pub edition: &'static str,
    /// `production` or `development`.
    pub env: &'static str,
    /// Tandem's own version.
    pub tandem_version: &'static str,
}

impl BuildInfo {
    /// The build of this binary.
    pub fn current() -> BuildInfo {
        BuildInfo {
            version: GRAFANA_VERSION,
            commit: env!("TANDEM_COMMIT"),
            edition: "Open Source",
            env: if cfg!(debug_assertions) {
                "development"
            } else {
                "production"
            },
            tandem_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

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
    /// Users, orgs, sessions and keys.
    pub identity: Identity,
    /// Cookie settings.
    pub auth: Arc<crate::AuthSettings>,
    /// Folders, dashboards, versions, stars and search.
    pub dashboards: Dashboards,
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

/// The API router over `state`.
///
/// Every `/api` route except `/api/health` requires an authenticated caller (see
/// [`CurrentUser`]); `/login`, `/logout` and `/metrics` do not.
pub fn router(state: AppState) -> Router {
    use crate::routes::{
        admin, dashboards, folders, login, orgs, search, service_accounts, teams, user, users,
    };

    let protected = Router::new()
        .route("/api/frontend/settings", get(api::frontend_settings))
        .route("/api/cluster", get(api::cluster))
        .route("/api/login/ping", get(login::ping))
        .route("/api/user", get(user::get).put(user::update))
        .route(
            "/api/user/password",
            axum::routing::put(user::change_password),
        )
        .route("/api/user/orgs", get(user::orgs))
        .route("/api/user/teams", get(user::teams))
        .route("/api/user/using/{org_id}", post(user::using))
        .route("/api/user/auth-tokens", get(user::sessions))
        .route("/api/user/revoke-auth-token", post(user::revoke_session))
        .route("/api/auth/keys", get(api::legacy_api_keys))
        .route("/api/annotations", get(api::empty_list))
        .route("/api/dashboard/snapshots", get(api::empty_list))
        .route("/api/plugins", get(api::empty_list))
        .route("/api/alert-notifications", get(api::empty_list))
        .route("/api/library-elements", get(api::library_elements))
        .merge(users::routes())
        .merge(admin::routes())
        .merge(orgs::routes())
        .merge(teams::routes())
        .merge(service_accounts::routes())
        .merge(dashboards::routes())
        .merge(folders::routes())
        .route("/api/search", get(search::search))
        .route("/api/search/", get(search::search))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .route("/api/health", get(api::health))
        .route("/metrics", get(api::metrics))
        .route("/login", post(login::login))
        .route("/logout", get(login::logout))
        .route("/api/user/auth-tokens/rotate", post(login::rotate))
        .merge(protected)
        .fallback(api::not_found)
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn(edge::json_errors))
        .layer(from_fn_with_state(state.clone(), edge::limit_body))
        .layer(from_fn_with_state(state.clone(), edge::log_request))
        // The limit is enforced by `edge::limit_body` for every route, so axum's own
        // (smaller) default must not apply on top of it.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
