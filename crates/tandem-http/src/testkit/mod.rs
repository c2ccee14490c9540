//! Test support for multi-instance tests: several in-process instances sharing one fresh
//! database ([`TestCluster`]), real `tandem-server` processes that can be killed
//! ([`ServerProcess`]), a small HTTP client ([`http`]) and a TCP proxy that can cut a
//! database off ([`TcpProxy`]).
//!
//! The backend matrix and the skip rules are `tandem_storage::testkit`'s.
// A test kit fails by panicking.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod http;
mod process;
pub mod ws;

use std::time::Duration;

use tandem_storage::testkit::TestDatabase;

use crate::{RunningServer, Server, Settings};

pub use crate::testkit::process::{ServerProcess, database_env, listening_port, server_binary};
pub use tandem_storage::testkit::proxy::TcpProxy;

/// Settings for a test instance on `db`: loopback, a free port, a fixed instance id, and
/// a fast heartbeat so membership changes show within a second.
pub fn test_settings(db: &TestDatabase, index: usize) -> Settings {
    let mut settings = Settings::default();
    settings.database = db.settings();
    settings.server.http_addr = "127.0.0.1".to_owned();
    settings.server.http_port = 0;
    settings.cluster.instance_id = Some(format!("instance-{index}"));
    settings.cluster.heartbeat_interval = Duration::from_millis(200);
    settings.cluster.peer_timeout = Duration::from_secs(2);
    settings
}

/// N in-process instances of the whole server sharing one fresh database.
pub struct TestCluster {
    servers: Vec<Option<RunningServer>>,
    // Declared last: the database is dropped after the servers that use it.
    db: TestDatabase,
}

impl TestCluster {
    /// Starts `n` instances at once on a fresh database of `backend` (they race to migrate
    /// it, as a real cluster's cold start does). `None` when the backend is not configured.
    pub async fn start(backend: Backend, n: usize) -> Option<TestCluster> {
        TestCluster::start_with(backend, n, |_, _| {}).await
    }

    /// Like [`TestCluster::start`], with `configure` adjusting each instance's settings.
    pub async fn start_with(
        backend: Backend,
        n: usize,
        configure: impl Fn(usize, &mut Settings),
    ) -> Option<TestCluster> {
        let db = TestDatabase::create(backend).await?;
        let mut starting = Vec::new();
        for index in 0..n {
            let mut settings = test_settings(&db, index);
            configure(index, &mut settings);
            starting.push(tokio::spawn(Server::start(settings)));
        }
        let mut servers = Vec::new();
        for (index, task) in starting.into_iter().enumerate() {
            let server = task
                .await
                .expect("server start task")
                .unwrap_or_else(|err| panic!("instance {index} failed to start: {err}"));
            servers.push(Some(server));
        }
        Some(TestCluster { servers, db })
    }

    /// The number of instances started.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether the cluster has no instances.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The base URL (`http://127.0.0.1:port`) of instance `index`.
    pub fn url(&self, index: usize) -> String {
        format!("http://{}", self.server(index).local_addr())
    }

    /// The base URLs of the running instances.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .flatten()
            .map(|server| format!("http://{}", server.local_addr()))
            .collect()
    }

    /// Instance `index`.
    pub fn server(&self, index: usize) -> &RunningServer {
        self.servers[index]
            .as_ref()
            .expect("the instance is running")
    }

    /// The shared database.
    pub fn database(&self) -> &TestDatabase {
        &self.db
    }

    /// Shuts instance `index` down gracefully.
    pub async fn stop(&mut self, index: usize) {
        let server = self.servers[index].take().expect("the instance is running");
        server.shutdown().await.expect("a clean shutdown");
    }

    /// Shuts every instance down gracefully.
    pub async fn shutdown(mut self) {
        for server in self.servers.iter_mut().filter_map(Option::take) {
            server.shutdown().await.expect("a clean shutdown");
        }
    }
}

/// Runs `body` against a fresh cluster of `n` instances on `backend`, each configured by
/// `configure`; skips like `tandem_storage::testkit::run_on`.
pub async fn run_cluster<C, F, Fut>(backend: Backend, n: usize, configure: C, body: F)
where
    C: Fn(usize, &mut Settings),
    F: FnOnce(TestCluster) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(cluster) = TestCluster::start_with(backend, n, configure).await {
        body(cluster).await;
    }
}

/// Runs `body` against a fresh cluster of `n` instances on every backend at once, each
/// configured by `configure`: for long scenarios that mostly wait on the clock, which then
/// take one test thread for the time of the slowest backend instead of three. Every backend
/// runs to its end; then the test fails naming each backend that failed.
pub async fn run_cluster_on_every_backend<C, F, Fut>(n: usize, configure: C, body: F)
where
    C: Fn(usize, &mut Settings) + Clone + Send + 'static,
    F: Fn(TestCluster) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runs: Vec<_> = [Backend::Sqlite, Backend::Postgres, Backend::Mysql]
        .into_iter()
        .map(|backend| {
            let (configure, body) = (configure.clone(), body.clone());
            let run = tokio::spawn(run_cluster(backend, n, configure, body));
            (backend, run)
        })
        .collect();
    let mut failed = Vec::new();
    for (backend, run) in runs {
        if let Err(err) = run.await {
            failed.push(format!("{}: {err}", backend.grafana_name()));
        }
    }
    assert!(failed.is_empty(), "failed on {}", failed.join("; "));
}

/// Generates one `#[tokio::test]` per backend in a module named after the case; each gets
/// a fresh [`TestCluster`] of `$n` in-process instances, optionally configured. With
/// `concurrently` first, one test runs the backends at once instead
/// ([`run_cluster_on_every_backend`]).
///
/// ```text
/// tandem_http::cluster_tests!(sessions_work_everywhere, 3, |cluster| async move { … });
/// tandem_http::cluster_tests!(slow_heartbeat, 2, |_, s| s.cluster.peer_timeout = …, |cluster| async move { … });
/// tandem_http::cluster_tests!(concurrently a_minute_of_evaluations, 3, configure, |cluster| async move { … });
/// ```
#[macro_export]
macro_rules! cluster_tests {
    (concurrently $name:ident, $n:expr, $configure:expr, $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::testkit::run_cluster_on_every_backend($n, $configure, $body).await;
        }
    };
    ($name:ident, $n:expr, $body:expr) => {
        $crate::cluster_tests!($name, $n, |_, _| {}, $body);
    };
    ($name:ident, $n:expr, $configure:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let backend = $crate::testkit::Backend::Sqlite;
                $crate::testkit::run_cluster(backend, $n, $configure, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let backend = $crate::testkit::Backend::Postgres;
                $crate::testkit::run_cluster(backend, $n, $configure, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                let backend = $crate::testkit::Backend::Mysql;
                $crate::testkit::run_cluster(backend, $n, $configure, $body).await;
            }
        }
    };
}

pub use tandem_storage::Backend;
pub use tandem_storage::testkit::conformance::eventually;
