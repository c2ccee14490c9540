//! Tandem: the high-availability core of a Grafana-compatible observability server.
//!
//! This facade re-exports the workspace's library crates under one name for embedders:
//! [`storage`] (database, migrations, server lock, leases, membership, cache),
//! [`sessions`] (users, orgs, teams, service accounts, sessions), [`http`]
//! (the Grafana-compatible API and the composition of one instance) and [`migrations`].
//! It also owns the cross-crate tests in `tests/` and the examples in `examples/`.
//!
//! To run an instance from code:
//!
//! ```no_run
//! # async fn run() -> Result<(), tandem::http::Error> {
//! let server = tandem::http::Server::start(tandem::http::Settings::default()).await?;
//! // … serve until it is time to stop …
//! server.shutdown().await
//! # }
//! ```

/// Folders, dashboards, versions, search, stars and file provisioning.
pub use tandem_dashboards as dashboards;
pub use tandem_http as http;
pub use tandem_migrations as migrations;
pub use tandem_sessions as sessions;
pub use tandem_storage as storage;
