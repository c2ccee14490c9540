//! Micro-benchmark of the session check that authenticates every cookie request: the token
//! hash, the database lookup of the session and its user, and the lifetime checks.
//!
//! ```sh
//! cargo run --release --example bench_session_check                       # SQLite
//! cargo run --release --example bench_session_check -- postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! A given PostgreSQL or MySQL URL names a server on which a scratch database is created and
//! dropped. Prints the latency distribution of sequential checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::sessions::{Identity, SessionSettings, SessionStore, SqlSessionStore};
use tandem::storage::sea_orm::ConnectionTrait;
use tandem::storage::{Database, DatabaseSettings, MigrationOptions};

const WARMUP: usize = 1_000;
const CHECKS: usize = 20_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let server = std::env::args().nth(1);
    let scratch = format!("tandem_bench_{}", std::process::id());
    let settings = match &server {
        Some(url) => {
            let admin = Database::connect(&DatabaseSettings::from_url(url)?).await?;
            admin
                .connection()
                .execute_unprepared(&format!("CREATE DATABASE {scratch}"))
                .await?;
            admin.close().await;
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            DatabaseSettings::from_url(&format!("{base}/{scratch}"))?
        }
        None => DatabaseSettings::sqlite(std::env::temp_dir().join(&scratch).join("tandem.db")),
    };
    let db = Database::connect(&settings).await?;
    db.migrate(MigrationOptions {
        locking: true,
        lock_timeout: None,
    })
    .await?;
    let store: Arc<dyn SessionStore> = Arc::new(SqlSessionStore::new(db.clone()));
    let identity = Identity::new(store, SessionSettings::default());
    identity.ensure_admin().await?;
    let (_, session) = identity
        .login("admin", "admin", "127.0.0.1", "bench")
        .await?;

    for _ in 0..WARMUP {
        identity.authenticate_session(&session.token).await?;
    }
    let mut samples = Vec::with_capacity(CHECKS);
    let started = Instant::now();
    for _ in 0..CHECKS {
        let at = Instant::now();
        identity.authenticate_session(&session.token).await?;
        samples.push(at.elapsed());
    }
    let total = started.elapsed();
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{} session checks on {}: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs; {:.0} checks/s sequential",
            CHECKS,
            if server.is_some() {
                "the given server"
            } else {
                "SQLite"
            },
            micros(pick(0.50)),
            micros(pick(0.90)),
            micros(pick(0.99)),
            micros(samples[samples.len() - 1]),
            CHECKS as f64 / total.as_secs_f64(),
        );
    }
    db.close().await;
    match &server {
        Some(url) => {
            let admin = Database::connect(&DatabaseSettings::from_url(url)?).await?;
            let force = if url.starts_with("postgres") {
                " WITH (FORCE)"
            } else {
                ""
            };
            admin
                .connection()
                .execute_unprepared(&format!("DROP DATABASE {scratch}{force}"))
                .await?;
        }
        None => std::fs::remove_dir_all(std::env::temp_dir().join(&scratch))?,
    }
    Ok(())
}
