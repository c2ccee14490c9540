use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use tandem_storage::{Backend, DatabaseSettings, Location};
use tokio::process::{Child, Command};

use crate::testkit::http;

/// The `tandem-server` binary of this build, beside the test binary's `deps/` folder.
///
/// The first call in a test process runs `cargo build -p tandem-server` (a quick no-op when
/// it is up to date): `cargo test` does not rebuild another package's binary on its own,
/// and a stale one would test old code.
pub fn server_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("the test binary lives in target/<profile>/deps");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut build = std::process::Command::new(cargo);
            build.args([
                "build",
                "--quiet",
                "-p",
                "tandem-server",
                "--bin",
                "tandem-server",
            ]);
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "building tandem-server failed");
            profile_dir.join("tandem-server")
        })
        .clone()
}

/// The `GF_DATABASE_*` variables that point a server process at `settings`' database.
pub fn database_env(settings: &DatabaseSettings) -> Vec<(String, String)> {
    let mut env = vec![(
        "GF_DATABASE_TYPE".to_owned(),
        settings.backend.grafana_name().to_owned(),
    )];
    match &settings.location {
        Location::SqliteFile(path) => {
            env.push(("GF_DATABASE_PATH".to_owned(), path.display().to_string()));
        }
        Location::Url(url) => env.push(("GF_DATABASE_URL".to_owned(), url.clone())),
    }
    if settings.backend == Backend::Sqlite {
        env.push(("GF_DATABASE_WAL".to_owned(), "true".to_owned()));
    }
    env
}

/// A real `tandem-server` process on a loopback port of its own; killed when dropped.
///
/// The server binds port 0 and the kernel picks the port, which is read back from the
/// server's "HTTP server listening" log line: no other process can take the port between a
/// pick and the bind, so tests running side by side never collide.
pub struct ServerProcess {
    child: Child,
    /// Known once [`ServerProcess::wait_healthy`] has read it from the log.
    port: Option<u16>,
    instance_id: String,
    admin_password: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Spawns the server with `env` added to a minimal environment (loopback address, port
    /// 0, a fast heartbeat, a random instance id unless `env` sets one); its output goes to
    /// a log file.
    pub fn spawn(env: &[(String, String)]) -> ServerProcess {
        let run = rand::random::<u32>();
        let instance_id = env
            .iter()
            .find(|(key, _)| key == "GF_CLUSTER_INSTANCE_ID")
            .map_or_else(
                || format!("proc-{:08x}", rand::random::<u32>()),
                |(_, id)| id.clone(),
            );
        let admin_password = env
            .iter()
            .find(|(key, _)| key == "GF_SECURITY_ADMIN_PASSWORD")
            .map_or_else(|| "admin".to_owned(), |(_, password)| password.clone());
        let log = std::env::temp_dir().join(format!("tandem-server-{run:08x}.log"));
        let log_file = std::fs::File::create(&log).expect("create the process log");
        let mut command = Command::new(server_binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
            .env("GF_SERVER_HTTP_PORT", "0")
            .env("GF_CLUSTER_HEARTBEAT_INTERVAL", "200ms")
            .env("GF_CLUSTER_PEER_TIMEOUT", "2s")
            .env(
                "GF_PATHS_DATA",
                std::env::temp_dir().join(format!("tandem-data-{run:08x}")),
            )
            .env("GF_CLUSTER_INSTANCE_ID", &instance_id)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .kill_on_drop(true);
        let child = command.spawn().expect("spawn tandem-server");
        ServerProcess {
            child,
            port: None,
            instance_id,
            admin_password,
            log,
        }
    }

    /// The base URL; known once [`ServerProcess::wait_healthy`] returned.
    pub fn url(&self) -> String {
        let port = self
            .port
            .expect("the port is known once wait_healthy has returned");
        format!("http://127.0.0.1:{port}")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the process is running")
    }

    /// What the process has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The instance id it runs with.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Waits until the server has logged the port it listens on, `/api/health` answers 200
    /// and `/api/cluster` shows this process's instance id, panicking with the process log
    /// after `deadline` or if the process exits.
    pub async fn wait_healthy(&mut self, deadline: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "tandem-server exited with {status} before becoming healthy:\n{}",
                    self.logs()
                );
            }
            if self.port.is_none() {
                self.port = listening_port(&self.logs());
            }
            if self.port.is_none() {
                assert!(
                    start.elapsed() < deadline,
                    "tandem-server did not log its port within {deadline:?}:\n{}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
                continue;
            }
            let health = http::request("GET", &format!("{}/api/health", self.url()), &[], "").await;
            if health.is_ok_and(|response| response.status == 200) {
                let credentials = format!("admin:{}", self.admin_password);
                let basic = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                );
                let cluster = http::request(
                    "GET",
                    &format!("{}/api/cluster", self.url()),
                    &[("authorization", basic.as_str())],
                    "",
                )
                .await
                .expect("GET /api/cluster");
                assert_eq!(
                    cluster.json()["instanceId"],
                    self.instance_id,
                    "another server answers at {}",
                    self.url()
                );
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "tandem-server not healthy after {deadline:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL the server");
    }

    /// Stops the process with SIGSTOP, as a stalled machine would: it holds its
    /// connections and runs nothing until [`ServerProcess::resume`].
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
    }

    /// Sends SIGTERM and waits (at most `deadline`) for the process to exit; returns its
    /// exit code.
    pub async fn terminate(&mut self, deadline: Duration) -> Option<i32> {
        self.signal("TERM");
        let exit = tokio::time::timeout(deadline, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit {deadline:?} after SIGTERM:\n{}", self.logs()))
            .expect("wait for the server");
        exit.code()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The port of the server's "HTTP server listening" log line, in the text format (colours
/// included) or the JSON one.
pub fn listening_port(logs: &str) -> Option<u16> {
    let line = logs
        .lines()
        .find(|line| line.contains("HTTP server listening"))?;
    let plain = strip_ansi(line);
    let address = match plain.find("address=") {
        Some(at) => plain[at + "address=".len()..].split_whitespace().next()?,
        None => {
            let at = plain.find("\"address\":\"")?;
            plain[at + "\"address\":\"".len()..].split('"').next()?
        }
    };
    address
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| addr.port())
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence ends with its first letter (`\x1b[2m`).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn the_port_is_read_from_either_log_format() {
        let text = "\u{1b}[2m2026-12-02T06:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mtandem_http::server\u{1b}[0m\u{1b}[2m:\u{1b}[0m HTTP server listening \u{1b}[3maddress\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:40123 \u{1b}[3minstance_id\u{1b}[0m\u{1b}[2m=\u{1b}[0mx";
        assert_eq!(listening_port(text), Some(40123));
        let json = r#"{"timestamp":"…","level":"INFO","fields":{"message":"HTTP server listening","address":"127.0.0.1:5000","instance_id":"x"}}"#;
        assert_eq!(listening_port(json), Some(5000));
        assert_eq!(listening_port("starting\n"), None);
    }
}
