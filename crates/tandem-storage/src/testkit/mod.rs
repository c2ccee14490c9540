//! Test support shared by every crate's tests: fresh databases on each backend, and the
//! conformance suites of the storage traits.
//!
//! The backend matrix comes from the environment: `TANDEM_TEST_POSTGRES_URL` and
//! `TANDEM_TEST_MYSQL_URL` name a server on which tests may create and drop databases
//! (SQLite needs nothing). A test whose backend is not configured says that it skipped
//! ([`skip`]: a `SKIPPED` line on the terminal, and a count when the test binary exits);
//! with `TANDEM_TEST_REQUIRE_SERVICES=1` a missing backend fails the test instead.
//!
//! This module reads environment variables on purpose; library code proper never does.
// A test kit fails by panicking.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod conformance;
pub mod proxy;
pub mod servers;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::ConnectionTrait;

use crate::{Backend, Database, DatabaseSettings, MigrationOptions};

/// The variable naming the PostgreSQL server tests may use.
pub const POSTGRES_URL_ENV: &str = "TANDEM_TEST_POSTGRES_URL";
/// The variable naming the MySQL/MariaDB server tests may use.
pub const MYSQL_URL_ENV: &str = "TANDEM_TEST_MYSQL_URL";
/// The variable naming the Redis server tests may use.
pub const REDIS_URL_ENV: &str = "TANDEM_TEST_REDIS_URL";
/// When set to `1`, a test whose service is not configured fails instead of skipping.
pub const REQUIRE_SERVICES_ENV: &str = "TANDEM_TEST_REQUIRE_SERVICES";

/// Generates one `#[tokio::test]` per backend (`sqlite`, `postgres`, `mysql`) in a module
/// named after the case; `$body` is an async function taking a fresh [`TestDatabase`].
///
/// ```text
/// tandem_storage::backend_tests!(migrations_apply_once, |db| async move { … });
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::testkit::run_on($crate::Backend::Sqlite, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::testkit::run_on($crate::Backend::Postgres, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::testkit::run_on($crate::Backend::Mysql, $body).await;
            }
        }
    };
}

/// Creates a fresh database on `backend`, runs `body` with it, and drops it afterwards;
/// skips (or fails, when services are required) if the backend is not configured.
pub async fn run_on<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDatabase) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(db) = TestDatabase::create(backend).await {
        body(db).await;
    }
}

/// The server URL configured for `backend`, or `None` (after saying so) when the test
/// should skip. Panics when the backend is missing and services are required.
pub fn service_url(env: &str, what: &str) -> Option<String> {
    match std::env::var(env) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1") => {
            panic!("{what} is required ({REQUIRE_SERVICES_ENV}=1) but {env} is not set")
        }
        _ => {
            skip(&format!("{what} tests need {env}"));
            None
        }
    }
}

/// Whether the program or library at `path` (`what`, e.g. Debian's `faketime`) is
/// installed; when it is not, says that the test skips, or panics when services are
/// required.
pub fn tool_installed(path: &str, what: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    if std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1") {
        panic!("{what} ({path}) is required ({REQUIRE_SERVICES_ENV}=1) but not installed");
    }
    skip(&format!("{what} is not installed ({path})"));
    false
}

/// How many test cases skipped, for the line printed when the test binary exits.
static SKIPPED: AtomicU64 = AtomicU64::new(0);

/// Says that the running test case skips, where people look: a line of its own on the
/// terminal while the run goes on (written past the test harness's capture of `eprintln!`,
/// which would show it only for a failing test), and a count when the test binary exits,
/// since the harness itself reports the case as `ok`.
pub fn skip(why: &str) {
    use std::io::Write;
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    AT_EXIT.call_once(|| {
        // SAFETY: `report_skips` is an `extern "C"` function without arguments that only
        // reads an atomic and writes to stderr, as `atexit` requires.
        unsafe {
            libc::atexit(report_skips);
        }
    });
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

extern "C" fn report_skips() {
    use std::io::Write;
    let skipped = SKIPPED.load(Ordering::Relaxed);
    if skipped > 0 {
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED {skipped} test case(s) for want of a service: the harness counted them as passed; \
             set {POSTGRES_URL_ENV}, {MYSQL_URL_ENV}, {REDIS_URL_ENV} (and the services the lines above name) \
             to run them, and {REQUIRE_SERVICES_ENV}=1 to make a missing one fail"
        );
    }
}

/// A database created for one test and dropped when the value is dropped.
pub struct TestDatabase {
    backend: Backend,
    settings: DatabaseSettings,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Server { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh, empty database: a SQLite file in a new temporary directory, or a new
    /// uniquely named database on the configured PostgreSQL or MySQL server.
    /// `None` when the backend is not configured (see the module docs).
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        let name = unique_name();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                Some(TestDatabase {
                    backend,
                    settings: DatabaseSettings::sqlite(dir.join("tandem.db")),
                    cleanup: Cleanup::Dir(dir),
                })
            }
            Backend::Postgres | Backend::Mysql => {
                let (env, what) = match backend {
                    Backend::Postgres => (POSTGRES_URL_ENV, "PostgreSQL"),
                    _ => (MYSQL_URL_ENV, "MySQL"),
                };
                let admin_url = service_url(env, what)?;
                let admin = admin_connection(&admin_url).await;
                admin
                    .connection()
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|err| panic!("create test database {name}: {err}"));
                admin.close().await;
                let url = with_database(&admin_url, &name);
                Some(TestDatabase {
                    backend,
                    settings: DatabaseSettings::from_url(&url).expect("a valid test url"),
                    cleanup: Cleanup::Server { admin_url, name },
                })
            }
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Settings that point at this database, with the documented defaults.
    pub fn settings(&self) -> DatabaseSettings {
        self.settings.clone()
    }

    /// A new pool on this database (an "instance" of its own), not migrated.
    pub async fn connect(&self) -> Database {
        self.connect_with(self.settings()).await
    }

    /// A new pool on this database with `settings` (which should come from
    /// [`TestDatabase::settings`]).
    pub async fn connect_with(&self, settings: DatabaseSettings) -> Database {
        Database::connect(&settings)
            .await
            .unwrap_or_else(|err| panic!("connect to the test database: {err}"))
    }

    /// A new pool on this database with the schema migrated.
    pub async fn connect_migrated(&self) -> Database {
        let db = self.connect().await;
        db.migrate(MigrationOptions {
            locking: true,
            lock_timeout: Some(Duration::from_secs(60)),
        })
        .await
        .unwrap_or_else(|err| panic!("migrate the test database: {err}"));
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Server { admin_url, name } => {
                let (admin_url, db_name, backend) = (admin_url.clone(), name.clone(), self.backend);
                // Drop may run inside a runtime, which cannot block on another; a thread
                // with its own small runtime can.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for dropping the test database");
                    runtime.block_on(async {
                        let admin = admin_connection(&admin_url).await;
                        let sql = match backend {
                            Backend::Postgres => {
                                format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
                            }
                            _ => format!("DROP DATABASE IF EXISTS {db_name}"),
                        };
                        let result = admin.connection().execute_unprepared(&sql).await;
                        admin.close().await;
                        result
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(_))) {
                    eprintln!("warning: could not drop test database {name}");
                }
            }
        }
    }
}

async fn admin_connection(admin_url: &str) -> Database {
    let mut settings =
        DatabaseSettings::from_url(admin_url).expect("a postgres:// or mysql:// url");
    settings.max_open_conn = 1;
    settings.max_idle_conn = 0;
    Database::connect(&settings)
        .await
        .unwrap_or_else(|err| panic!("connect to {}: {err}", crate::redact_url(admin_url)))
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random();
    format!("tandem_t{}_{n}_{salt:08x}", std::process::id())
}

/// `url` with its database name replaced by `name`, query string kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{name}?{query}"),
        None => format!("{host_part}/{name}"),
    }
}
