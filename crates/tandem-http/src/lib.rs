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

// No panic on a request path: the input policy (`tandem_storage::input`) and checked
// arithmetic instead. Tests and test kits may panic; that is how they fail.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod api;
mod auth;
mod csrf;
mod edge;
mod error;
mod extract;
mod live;
mod metrics;
mod openapi;
mod policy;
mod routes;
mod routing;
mod serve;
mod server;
mod settings;
mod shared;
mod state;
#[cfg(feature = "testkit")]
pub mod testkit;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};

use crate::routing::Routes;

pub use crate::auth::{AuthMethod, ClientAddr, CurrentUser};
pub use crate::error::{ApiError, Error, Result};
pub use crate::extract::{JsonBody, PathParams, QueryParams};
pub use crate::metrics::Metrics;
pub use crate::routing::RouteSpec;
pub use crate::serve::serve;
pub use crate::server::{RunningServer, Server};
pub use crate::settings::{
    AuthSettings, ClusterSettings, CsrfSettings, SameSite, ServerSettings, Settings,
};
pub use crate::state::{AppState, AppStateParts};
pub use tandem_alerting::{
    AlertProvisioning, AlertingSettings, Error as AlertingError, Evaluated, EvaluationMode,
    NotifySettings, SmtpSettings, StartTlsPolicy,
};

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

/// The API router over `state`.
///
/// Every `/api` route except `/api/health` requires an authenticated caller (see
/// [`CurrentUser`]); the status page `/`, `/login` (the form and its post), `/logout` and
/// `/metrics` do not. [`route_table`] lists the same routes. Before any of them, a request
/// that carries the session cookie from another site's page is refused (Grafana's CSRF
/// check, [`CsrfSettings`]).
pub fn router(state: AppState) -> Router {
    let (public, protected) = api_routes();
    let (public, _) = public.into_parts();
    let (protected, _) = protected.into_parts();
    let protected = protected.route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(public)
        .merge(protected)
        .fallback(api::not_found)
        // Inside the router, so that the path parameters of the matched route are known.
        .layer(from_fn(policy::check_uri))
        .layer(from_fn_with_state(state.metrics.clone(), edge::catch_panic))
        // After routing (the Live upgrades are told apart by their route) and before
        // authentication, as Grafana's middleware runs before its context handler.
        .layer(from_fn_with_state(state.clone(), csrf::check))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn(edge::json_errors))
        .layer(from_fn_with_state(state.clone(), edge::limit_body))
        .layer(from_fn_with_state(state.clone(), edge::log_request))
        // The limit is enforced by `edge::limit_body` for every route, so axum's own
        // (smaller) default must not apply on top of it.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Every route of [`router`], with an example request each: what the bad-input battery
/// walks.
pub fn route_table() -> Vec<RouteSpec> {
    let (public, protected) = api_routes();
    let (_, mut table) = public.into_parts();
    table.extend(protected.into_parts().1);
    table
}

/// The routes that answer without authentication, and those that need it.
fn api_routes() -> (Routes, Routes) {
    use crate::routes::alerting::{
        alertmanager, notifications, prometheus, provisioning as alert_provisioning, ruler,
    };
    use crate::routes::content::{
        annotations, dashboards, folders, library_elements, permissions, search, snapshots,
    };
    use crate::routes::identity::{
        admin, login, orgs, preferences, service_accounts, settings, stats, teams, user, users,
    };

    let public = Routes::new()
        .get("/api/health", api::health)
        .get("/metrics", api::metrics)
        .get("/api/openapi.json", openapi::document)
        .post("/login", login::login)
        .body(r#"{"user":"admin","password":"wrong password"}"#)
        .get("/logout", login::logout)
        .post("/api/user/auth-tokens/rotate", login::rotate)
        .merge(crate::routes::web::routes())
        .public();
    let protected = Routes::new()
        .get("/api/frontend/settings", api::frontend_settings)
        .get("/api/cluster", api::cluster)
        .get("/api/login/ping", login::ping)
        .get("/api/user", user::get)
        .put("/api/user", user::update)
        .body(r#"{"name":"Name","email":"me@example.com","login":"me"}"#)
        .put("/api/user/password", user::change_password)
        .body(r#"{"oldPassword":"wrong password","newPassword":"new password"}"#)
        .get("/api/user/orgs", user::orgs)
        .get("/api/user/teams", user::teams)
        .post("/api/user/using/{org_id}", user::using)
        .get("/api/user/auth-tokens", user::sessions)
        .post("/api/user/revoke-auth-token", user::revoke_session)
        .body(r#"{"authTokenId":1}"#)
        .get("/api/auth/keys", api::legacy_api_keys)
        .get("/api/plugins", api::empty_list)
        .get("/api/alert-notifications", api::empty_list)
        .get("/api/admin/stats", stats::stats)
        .get("/api/admin/settings", settings::settings)
        .merge(users::routes())
        .merge(admin::routes())
        .merge(orgs::routes())
        .merge(teams::routes())
        .merge(preferences::routes())
        .merge(service_accounts::routes())
        .merge(dashboards::routes())
        .merge(annotations::routes())
        .merge(folders::routes())
        .merge(permissions::routes())
        .merge(snapshots::routes())
        .merge(library_elements::routes())
        .merge(crate::routes::datasources::routes())
        .merge(crate::routes::live::routes())
        .merge(
            alert_provisioning::routes()
                .merge(ruler::routes())
                .merge(prometheus::routes())
                .merge(notifications::routes())
                .merge(alertmanager::routes()),
        )
        .get("/api/search", search::search)
        .query(SEARCH_EXAMPLE)
        .get("/api/search/", search::search)
        .query(SEARCH_EXAMPLE);
    (public, protected)
}

/// The example query of `/api/search` in the route table.
const SEARCH_EXAMPLE: &str = "query=a&tag=x&type=dash-db&folderUIDs=f&dashboardUIDs=d&folderIds=0&dashboardIds=1&starred=false&limit=10&page=1";
