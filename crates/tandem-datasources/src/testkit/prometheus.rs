//! A private Prometheus for tests, over data the test wrote, so query results are known
//! exactly.
//!
//! [`TestPrometheus::start`] backfills a TSDB with `promtool tsdb create-blocks-from
//! openmetrics` from the OpenMetrics text it is given, then starts `prometheus` on that
//! TSDB at a free loopback port. Prometheus cannot listen on port 0, so the kit picks a free
//! port, starts the process, and then makes sure the server answering on that port is the
//! one it started (its `storage.tsdb.path` flag is the kit's own directory); when the
//! process dies first (the port was taken in between) it tries again with another port, so
//! a port collision never fails a test.
//!
//! The binaries come from `TANDEM_TEST_PROMETHEUS_BIN` (the `prometheus` binary; `promtool`
//! beside it) or from `PATH`. When they are missing the test says it skipped; with
//! `TANDEM_TEST_REQUIRE_SERVICES=1` it fails instead. Debian's `prometheus` package has
//! both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The variable naming the `prometheus` binary tests use.
pub const PROMETHEUS_BIN_ENV: &str = "TANDEM_TEST_PROMETHEUS_BIN";
/// The basic auth user of a kit started with [`PrometheusOptions::basic_auth`].
pub const BASIC_AUTH_USER: &str = "tandem";
/// Its password.
pub const BASIC_AUTH_PASSWORD: &str = "tandem-test-password";
/// The bcrypt hash (cost 4) of [`BASIC_AUTH_PASSWORD`] that Prometheus' web configuration
/// wants, made once with glibc's `crypt` (`$2b$`): tests need no bcrypt implementation.
const BASIC_AUTH_BCRYPT: &str = "$2b$04$rjk8UeOmnwZ16cgIVndBce6snOlJBrnezoidoSejiRXbmYRqdEw32";
/// How many ports are tried before giving up.
const PORT_ATTEMPTS: usize = 10;
/// How long a started Prometheus has to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start the test Prometheus.
#[derive(Clone, Debug, Default)]
pub struct PrometheusOptions {
    /// Require basic auth ([`BASIC_AUTH_USER`], [`BASIC_AUTH_PASSWORD`]) on every request.
    pub basic_auth: bool,
    /// YAML appended to `prometheus.yml` after its `global` section: `rule_files`,
    /// `alerting` and the like.
    pub extra_config: String,
    /// Files written beside `prometheus.yml` (name, content): rule files the extra
    /// configuration names.
    pub files: Vec<(String, String)>,
    /// More command-line flags (`--rules.alert.resend-delay=1s`).
    pub args: Vec<String>,
}

/// A running private Prometheus; killed and its files removed when dropped.
pub struct TestPrometheus {
    child: Child,
    url: String,
    dir: PathBuf,
    version: String,
}

impl TestPrometheus {
    /// Starts Prometheus over the OpenMetrics text `openmetrics` (the trailing `# EOF` is
    /// added when missing). `None`, after saying so, when the binaries are not installed;
    /// panics when they are required or the start fails.
    pub async fn start(openmetrics: &str, options: PrometheusOptions) -> Option<TestPrometheus> {
        TestPrometheus::start_on_ports(openmetrics, options, std::iter::repeat_with(free_port))
            .await
    }

    /// [`TestPrometheus::start`] trying the ports `ports` yields, in order (at most
    /// ten); tests of the kit itself use it to hand it a port that is taken.
    pub async fn start_on_ports(
        openmetrics: &str,
        options: PrometheusOptions,
        ports: impl IntoIterator<Item = u16>,
    ) -> Option<TestPrometheus> {
        let (prometheus, promtool) = binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "tandem-prometheus-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let tsdb = dir.join("tsdb");
        std::fs::create_dir_all(&tsdb).expect("create the Prometheus directory");
        let mut data = openmetrics.trim_end().to_owned();
        if !data.ends_with("# EOF") {
            data.push_str("\n# EOF");
        }
        data.push('\n');
        let input = dir.join("data.om");
        std::fs::write(&input, data).expect("write the OpenMetrics data");
        let backfill = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&tsdb)
            .output()
            .await
            .expect("run promtool");
        assert!(
            backfill.status.success(),
            "promtool tsdb create-blocks-from openmetrics failed: {}",
            String::from_utf8_lossy(&backfill.stderr)
        );
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  evaluation_interval: 1h\n{}",
                options.extra_config
            ),
        )
        .expect("write the config");
        for (name, content) in &options.files {
            std::fs::write(dir.join(name), content).expect("write a file beside the config");
        }
        let web_config = dir.join("web.yml");
        if options.basic_auth {
            std::fs::write(
                &web_config,
                format!("basic_auth_users:\n  {BASIC_AUTH_USER}: {BASIC_AUTH_BCRYPT}\n"),
            )
            .expect("write the web config");
        }
        let version = version(&prometheus).await;
        for (attempt, port) in (1..=PORT_ATTEMPTS).zip(ports) {
            let mut command = Command::new(&prometheus);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y")
                .arg("--log.level=warn")
                .args(&options.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            if options.basic_auth {
                command.arg(format!("--web.config.file={}", web_config.display()));
            }
            let child = command.spawn().expect("start prometheus");
            let url = format!("http://127.0.0.1:{port}");
            let mut started = TestPrometheus {
                child,
                url,
                dir: dir.clone(),
                version: version.clone(),
            };
            match started.wait_ready(&tsdb, &options).await {
                Ok(()) => {
                    eprintln!("test prometheus: {version} at {}", started.url);
                    return Some(started);
                }
                Err(why) => {
                    eprintln!("test prometheus attempt {attempt} on port {port}: {why}");
                    // Dropping `started` kills the process but must keep the directory.
                    let _ = started.child.start_kill();
                    let _ = started.child.wait().await;
                    started.dir = PathBuf::new();
                }
            }
        }
        panic!("could not start a test Prometheus after {PORT_ATTEMPTS} ports");
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `prometheus --version`'s first line.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Waits until the server on our port answers and is ours; `Err` when our process died
    /// (another process took the port) or the deadline passed.
    async fn wait_ready(&mut self, tsdb: &Path, options: &PrometheusOptions) -> Result<(), String> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let with_auth = |request: reqwest::RequestBuilder| {
            if options.basic_auth {
                request.basic_auth(BASIC_AUTH_USER, Some(BASIC_AUTH_PASSWORD))
            } else {
                request
            }
        };
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = pipe.read_to_string(&mut stderr).await;
                }
                return Err(format!("prometheus exited with {status}: {stderr}"));
            }
            let flags = with_auth(client.get(format!("{}/api/v1/status/flags", self.url)))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = flags
                && response.status().is_success()
                && let Ok(bytes) = response.bytes().await
                && let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes)
            {
                let path = body
                    .pointer("/data/storage.tsdb.path")
                    .and_then(|p| p.as_str());
                if path != Some(tsdb.to_string_lossy().as_ref()) {
                    return Err(format!("another server answers on {}", self.url));
                }
                let ready = with_auth(client.get(format!("{}/-/ready", self.url)))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err("not ready before the deadline".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `prometheus` and `promtool`, or `None` after saying the test skipped.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let prometheus = match std::env::var_os(PROMETHEUS_BIN_ENV) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => on_path("prometheus"),
    };
    let promtool = prometheus.as_ref().and_then(|p| {
        let beside = p.with_file_name("promtool");
        if beside.is_file() {
            Some(beside)
        } else {
            on_path("promtool")
        }
    });
    match (prometheus, promtool) {
        (Some(prometheus), Some(promtool)) if prometheus.is_file() => Some((prometheus, promtool)),
        _ => {
            let required = std::env::var(tandem_storage::testkit::REQUIRE_SERVICES_ENV)
                .is_ok_and(|v| v == "1");
            assert!(
                !required,
                "Prometheus is required ({}=1) but prometheus and promtool are neither at {PROMETHEUS_BIN_ENV} nor on PATH",
                tandem_storage::testkit::REQUIRE_SERVICES_ENV
            );
            tandem_storage::testkit::skip(&format!(
                "Prometheus tests need prometheus and promtool on PATH or {PROMETHEUS_BIN_ENV}"
            ));
            None
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A port that was free a moment ago (the kit checks who answers on it afterwards).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

async fn version(prometheus: &Path) -> String {
    Command::new(prometheus)
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            text.lines().next().unwrap_or("").to_owned()
        })
        .unwrap_or_default()
}
