use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tandem_storage::testkit::{REDIS_URL_ENV, TestDatabase, service_url};
use tandem_storage::{Backend, Database, DatabaseSettings, Leases, MigrationOptions, SqlLeases};

use crate::{HaEngine, Hub, HubOptions, LiveSettings, LocalBroker, OrgMembers};

/// The engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// In-process; hubs share one [`LocalBroker`].
    Local,
    /// Redis at `TANDEM_TEST_REDIS_URL`, under a prefix of the test's own.
    Redis,
    /// PostgreSQL: a fresh database on `TANDEM_TEST_POSTGRES_URL`.
    Postgres,
}

/// Generates one test per engine (`local`, `redis`, `postgres`) in a module named after
/// the case; `$body` is an async function taking a fresh [`TestEnv`].
#[macro_export]
macro_rules! engine_tests {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                $crate::testkit::run_on($crate::testkit::EngineKind::Local, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                $crate::testkit::run_on($crate::testkit::EngineKind::Redis, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::testkit::run_on($crate::testkit::EngineKind::Postgres, $body).await;
            }
        }
    };
}

/// Runs `body` on a fresh environment of `kind`; skips (or fails, when services are
/// required) if the engine's service is not configured.
pub async fn run_on<F, Fut>(kind: EngineKind, body: F)
where
    F: FnOnce(TestEnv) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(env) = TestEnv::create(kind).await {
        body(env).await;
    }
}

/// Everything hubs of one test share: the engine's service, a database for leases (and
/// for the PostgreSQL engine), a unique prefix.
pub struct TestEnv {
    kind: EngineKind,
    prefix: String,
    redis_address: Option<String>,
    database: DatabaseSettings,
    broker: LocalBroker,
    _db: Option<TestDatabase>,
}

impl TestEnv {
    /// A fresh environment, or `None` when the engine's service is not configured.
    pub async fn create(kind: EngineKind) -> Option<TestEnv> {
        let (redis_address, backend) = match kind {
            EngineKind::Local => (None, Backend::Sqlite),
            EngineKind::Redis => (Some(service_url(REDIS_URL_ENV, "Redis")?), Backend::Sqlite),
            EngineKind::Postgres => (None, Backend::Postgres),
        };
        let db = TestDatabase::create(backend).await?;
        db.connect_migrated().await.close().await;
        Some(TestEnv {
            kind,
            prefix: unique_prefix(),
            redis_address,
            database: db.settings(),
            broker: LocalBroker::new(),
            _db: Some(db),
        })
    }

    /// An environment on a Redis of the test's own (`host:port`), leases on SQLite.
    pub async fn with_redis(address: &str) -> TestEnv {
        let db = TestDatabase::create(Backend::Sqlite)
            .await
            .expect("sqlite needs no service");
        db.connect_migrated().await.close().await;
        TestEnv {
            kind: EngineKind::Redis,
            prefix: unique_prefix(),
            redis_address: Some(address.to_owned()),
            database: db.settings(),
            broker: LocalBroker::new(),
            _db: Some(db),
        }
    }

    /// An environment on a PostgreSQL of the test's own.
    pub async fn with_postgres(url: &str) -> TestEnv {
        let settings = DatabaseSettings::from_url(url).expect("a postgres url");
        let db = Database::connect(&settings)
            .await
            .expect("connect to postgres");
        db.migrate(MigrationOptions {
            locking: true,
            lock_timeout: Some(Duration::from_secs(60)),
        })
        .await
        .expect("migrate");
        db.close().await;
        TestEnv {
            kind: EngineKind::Postgres,
            prefix: unique_prefix(),
            redis_address: None,
            database: settings,
            broker: LocalBroker::new(),
            _db: None,
        }
    }

    /// The engine.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Settings for this environment's engine, with limits small enough for tests to
    /// reach quickly.
    pub fn settings(&self) -> LiveSettings {
        LiveSettings {
            max_connections: -1,
            ha_engine: match self.kind {
                EngineKind::Local => HaEngine::Local,
                EngineKind::Redis => HaEngine::Redis,
                EngineKind::Postgres => HaEngine::Postgres,
            },
            ha_engine_address: self.redis_address.clone().unwrap_or_default(),
            ha_prefix: self.prefix.clone(),
            presence_ttl: Duration::from_secs(3),
            producer_lease_ttl: Duration::from_secs(2),
            ..LiveSettings::default()
        }
    }

    /// A new database pool, as another instance would have.
    pub async fn database(&self) -> Database {
        let mut settings = self.database.clone();
        settings.max_open_conn = settings.max_open_conn.clamp(2, 8);
        Database::connect(&settings)
            .await
            .expect("connect to the test database")
    }

    /// A hub named `node` with [`TestEnv::settings`].
    pub async fn hub(&self, node: &str) -> Hub {
        self.hub_with(node, self.settings()).await
    }

    /// A hub named `node` with `settings`, on its own database pool, leases included.
    pub async fn hub_with(&self, node: &str, settings: LiveSettings) -> Hub {
        let database = self.database().await;
        let leases: Arc<dyn Leases> = Arc::new(SqlLeases::new(database.clone()));
        Hub::start(HubOptions {
            settings,
            node_id: node.to_owned(),
            authorizer: Arc::new(OrgMembers),
            leases: Some(leases),
            database: Some(database),
            local_broker: Some(self.broker.clone()),
        })
        .await
        .unwrap_or_else(|err| panic!("start hub {node}: {err}"))
    }
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random();
    format!("tlt{}_{n}_{salt:08x}", std::process::id())
}
