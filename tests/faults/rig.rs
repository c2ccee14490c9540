//! The cluster under test: three `tandem-server` processes behind a private nginx (the
//! cluster example's configuration), each reaching a private database server through a TCP
//! proxy of its own (so one instance can be cut off), sharing a private Redis for Live, and
//! a webhook receiver that records every notification.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tandem::http::testkit::{ServerProcess, TcpProxy};
use tandem::storage::testkit::servers::{
    PrivateMariadb, PrivatePostgres, PrivateRedis, free_port, is_root,
};

use crate::receiver::{self, Log};

/// How long an instance may take to become healthy (migrations included).
const START: Duration = Duration::from_secs(90);
/// Debian's libfaketime, preloaded into the instance whose clock runs ahead.
pub(crate) const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// The admin's password on every instance.
pub(crate) const ADMIN_PASSWORD: &str = "fault-suite-admin";

/// Which database the cluster shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Postgres,
    Mariadb,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Mariadb => "MariaDB",
        }
    }
}

/// The private database server.
enum PrivateDb {
    Postgres(PrivatePostgres),
    Mariadb(PrivateMariadb),
}

impl PrivateDb {
    fn url(&self) -> String {
        match self {
            PrivateDb::Postgres(db) => db.url(),
            PrivateDb::Mariadb(db) => db.url(),
        }
    }

    /// `127.0.0.1:<port>`, as it appears in [`PrivateDb::url`].
    fn address(&self) -> String {
        match self {
            PrivateDb::Postgres(db) => db.address(),
            PrivateDb::Mariadb(db) => db.address(),
        }
    }

    fn grafana_type(&self) -> &'static str {
        match self {
            PrivateDb::Postgres(_) => "postgres",
            PrivateDb::Mariadb(_) => "mysql",
        }
    }

    fn stop(&mut self) {
        match self {
            PrivateDb::Postgres(db) => db.stop(),
            PrivateDb::Mariadb(db) => db.stop(),
        }
    }

    fn restart(&mut self) {
        match self {
            PrivateDb::Postgres(db) => db.restart(),
            PrivateDb::Mariadb(db) => db.restart(),
        }
    }
}

/// One instance: a fixed port (nginx's upstream), its proxy to the database, its process
/// while it runs.
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) port: u16,
    pub(crate) proxy: TcpProxy,
    process: Option<ServerProcess>,
}

impl Instance {
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn process(&self) -> &ServerProcess {
        self.process.as_ref().expect("the instance runs")
    }
}

pub(crate) struct Rig {
    pub(crate) backend: Backend,
    db: PrivateDb,
    pub(crate) redis: PrivateRedis,
    pub(crate) instances: Vec<Instance>,
    nginx: Nginx,
    pub(crate) hook: String,
    pub(crate) log: Log,
}

impl Rig {
    /// Starts the servers, the instances (one after another, the first running the
    /// migrations) and nginx.
    pub(crate) async fn start(backend: Backend, instances: usize) -> Rig {
        let db = tokio::task::block_in_place(|| match backend {
            Backend::Postgres => PrivateDb::Postgres(PrivatePostgres::start()),
            Backend::Mariadb => PrivateDb::Mariadb(PrivateMariadb::start()),
        });
        let redis = tokio::task::block_in_place(PrivateRedis::start);
        let (hook, log) = receiver::receiver(Arc::new(AtomicBool::new(false))).await;
        let mut list = Vec::new();
        for i in 0..instances {
            list.push(Instance {
                id: format!("tandem-{}", i + 1),
                port: free_port(),
                proxy: TcpProxy::start(&db.address()).await,
                process: None,
            });
        }
        let nginx = Nginx::start(&list.iter().map(|i| i.port).collect::<Vec<_>>());
        let mut rig = Rig {
            backend,
            db,
            redis,
            instances: list,
            nginx,
            hook,
            log,
        };
        for i in 0..instances {
            rig.spawn(i, false);
            rig.wait_healthy(i).await;
        }
        rig
    }

    /// nginx's base URL, where users come in.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.nginx.port)
    }

    /// Starts instance `i` (again); `skewed` runs its clock 5 s ahead.
    pub(crate) fn spawn(&mut self, i: usize, skewed: bool) {
        let db_url = self.db.url().replacen(
            &self.db.address(),
            &self.instances[i].proxy.addr().to_string(),
            1,
        );
        let mut env: Vec<(String, String)> = [
            ("GF_DATABASE_TYPE", self.db.grafana_type().to_owned()),
            ("GF_DATABASE_URL", db_url),
            ("GF_SERVER_HTTP_PORT", self.instances[i].port.to_string()),
            ("GF_SERVER_ROOT_URL", format!("{}/", self.url())),
            ("GF_CLUSTER_INSTANCE_ID", self.instances[i].id.clone()),
            ("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            (
                "GF_SECURITY_SECRET_KEY",
                "fault-suite-secret-key".to_owned(),
            ),
            ("GF_LIVE_HA_ENGINE", "redis".to_owned()),
            (
                "GF_LIVE_HA_ENGINE_ADDRESS",
                format!("redis://{}", self.redis.address()),
            ),
            ("GF_UNIFIED_ALERTING_MIN_INTERVAL", "1s".to_owned()),
            ("GF_CLUSTER_NOTIFICATION_POLL_INTERVAL", "200ms".to_owned()),
            // PostgreSQL's cluster evaluates every rule on every instance (Grafana's way);
            // MariaDB's shards the rules across the live instances.
            (
                "GF_CLUSTER_ALERTING_EVALUATION",
                match self.backend {
                    Backend::Postgres => "all",
                    Backend::Mariadb => "sharded",
                }
                .to_owned(),
            ),
            ("GF_LOG_LEVEL", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if skewed {
            env.push(("LD_PRELOAD".to_owned(), LIBFAKETIME.to_owned()));
            env.push(("FAKETIME".to_owned(), "+5s".to_owned()));
            env.push(("FAKETIME_DONT_RESET".to_owned(), "1".to_owned()));
        }
        self.instances[i].process = Some(ServerProcess::spawn(&env));
    }

    pub(crate) async fn wait_healthy(&mut self, i: usize) {
        let process = self.instances[i]
            .process
            .as_mut()
            .expect("the instance was spawned");
        process.wait_healthy(START).await;
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) async fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.instances[i].process.take() {
            process.kill().await;
        }
    }

    /// The last lines of every instance's log, for a failure message.
    pub(crate) fn logs(&self) -> String {
        let mut out = String::new();
        for instance in &self.instances {
            if let Some(process) = &instance.process {
                let logs = process.logs();
                let tail: Vec<&str> = logs.lines().rev().take(25).collect();
                out.push_str(&format!("---- {} (last lines)\n", instance.id));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// Stops the database server, waits `down`, starts it again.
    pub(crate) async fn restart_database(&mut self, down: Duration) {
        tokio::task::block_in_place(|| self.db.stop());
        tokio::time::sleep(down).await;
        tokio::task::block_in_place(|| self.db.restart());
    }

    /// Stops Redis, waits `down`, starts it again (empty: it keeps nothing on disk).
    pub(crate) async fn restart_redis(&mut self, down: Duration) {
        tokio::task::block_in_place(|| self.redis.stop());
        tokio::time::sleep(down).await;
        tokio::task::block_in_place(|| self.redis.restart());
    }

    /// A connection string to the database for the checks (not through any proxy).
    pub(crate) fn database_url(&self) -> String {
        self.db.url()
    }
}

/// A private nginx from `examples/cluster/nginx.conf.in`, in a directory of its own.
struct Nginx {
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start(upstreams: &[u16]) -> Nginx {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "tandem-faults-nginx-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create nginx's directories");
        }
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/cluster/nginx.conf.in"
        );
        let mut text = std::fs::read_to_string(template).expect("read nginx.conf.in");
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let user = if is_root() { "user root root;" } else { "" };
        text = text
            .replace("@UPSTREAMS@\n", &servers)
            .replace("@PREFIX@", &dir.display().to_string())
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@USER@", user);
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, text).expect("write nginx.conf");
        let status = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .status()
            .expect("run nginx");
        assert!(status.success(), "nginx did not start");
        Nginx { port, dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("nginx.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn nginx_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}
