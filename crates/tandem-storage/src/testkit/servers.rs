//! Redis, PostgreSQL and MariaDB servers of a test's own, on free ports in temporary
//! directories, that the test may stop and start again (never the shared services).
//!
//! A port is picked by binding port 0; the server started on it is then verified to be
//! ours (its process id answers on that port), and another port is tried if it is not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY: Duration = Duration::from_secs(30);

/// A loopback port nobody listens on now (bound and released: another process may take it
/// before the caller binds it, which the servers here detect and retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a free port")
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tandem-private-{what}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Keeps `child` in `slot` and waits until `ready(pid)` says the server is ours and
/// answers: `false` when it exits first (most likely its port was taken meanwhile) or is
/// not ready in time (then it is killed).
fn started(slot: &mut Option<Child>, child: Child, ready: impl Fn(u32) -> bool) -> bool {
    let pid = child.id();
    *slot = Some(child);
    let start = Instant::now();
    while start.elapsed() < READY {
        if let Some(child) = slot.as_mut()
            && child.try_wait().ok().flatten().is_some()
        {
            *slot = None;
            return false;
        }
        if ready(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(slot);
    false
}

/// Waits (bounded) until nothing answers on `port` any more.
fn wait_port_free(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() && start.elapsed() < READY {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls `spawn` until it starts the server on its old port, panicking after a while.
fn spawn_again(what: &str, mut spawn: impl FnMut() -> bool) {
    let start = Instant::now();
    while !spawn() {
        assert!(
            start.elapsed() < READY * 2,
            "{what} did not come back on its port"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A private `redis-server` (from `PATH`), without persistence.
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port.
    pub fn start() -> PrivateRedis {
        let dir = temp_dir("redis");
        for _ in 0..10 {
            let mut redis = PrivateRedis {
                port: free_port(),
                dir: dir.clone(),
                child: None,
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("could not start a private redis-server");
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port, waiting until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let start = Instant::now();
        while !self.spawn() {
            assert!(
                start.elapsed() < READY,
                "redis did not come back on its port"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH for the engine restart tests");
        let port = self.port;
        started(&mut self.child, child, |pid| redis_pid(port) == Some(pid))
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        kill(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `process_id` the Redis on `port` reports, if one answers.
fn redis_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("process_id:") || !reply.ends_with(b"\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&reply);
    let line = text.lines().find(|line| line.starts_with("process_id:"))?;
    line.trim_start_matches("process_id:").trim().parse().ok()
}

/// A private PostgreSQL cluster (`initdb` and `postgres` from `/usr/lib/postgresql/*/bin`),
/// run as the `postgres` user when the test runs as root.
pub struct PrivatePostgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    child: Option<Child>,
}

impl PrivatePostgres {
    /// Creates a cluster and starts it on a free port.
    pub fn start() -> PrivatePostgres {
        let bin = postgres_bin();
        let dir = temp_dir("postgres");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&dir));
        }
        let data = dir.join("data");
        let mut initdb = user_command(as_postgres, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(&mut initdb);
        for _ in 0..10 {
            let mut pg = PrivatePostgres {
                port: free_port(),
                dir: dir.clone(),
                bin: bin.clone(),
                as_postgres,
                child: None,
            };
            if pg.spawn() {
                return pg;
            }
        }
        panic!("could not start a private postgres");
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        kill(&mut self.child);
        // A killed postmaster leaves its children to notice; wait for the port to free.
        wait_port_free(self.port);
    }

    /// Starts the server again on the same port, waiting until it answers.
    pub fn restart(&mut self) {
        self.stop();
        spawn_again("postgres", || self.spawn());
    }

    fn spawn(&mut self) -> bool {
        let data = self.dir.join("data");
        let mut command = user_command(self.as_postgres, &self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("start postgres");
        let port = self.port;
        started(&mut self.child, child, |pid| {
            postmaster_ready(&data, pid, port) && TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        kill(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `postmaster.pid` names our process, our port, and says it accepts connections.
fn postmaster_ready(data: &Path, pid: u32, port: u16) -> bool {
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(pid)
        && lines.get(3).and_then(|l| l.trim().parse::<u16>().ok()) == Some(port)
        && lines.get(7).is_some_and(|l| l.trim() == "ready")
}

fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .find(|dir| dir.join("initdb").exists())
        .expect("PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
}

/// Whether the test runs as root (servers that refuse root then run as another user).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program`, run as the `postgres` user when asked (setpriv execs it, so killing the
/// child kills the server).
fn user_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ])
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A private MariaDB server (`mariadb-install-db` and `mariadbd` from `PATH` or
/// `/usr/sbin`), with a database `tandem` for the test; grant tables are skipped, so `root`
/// connects over TCP without a password.
pub struct PrivateMariadb {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateMariadb {
    /// Creates a data directory, starts the server on a free port and creates `tandem`.
    pub fn start() -> PrivateMariadb {
        let dir = temp_dir("mariadb");
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args([
                "--user=root",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
            ]));
        for _ in 0..10 {
            let mut db = PrivateMariadb {
                port: free_port(),
                dir: dir.clone(),
                child: None,
            };
            if db.spawn() {
                run(Command::new("mariadb")
                    .args(["--protocol=tcp", "-h", "127.0.0.1", "-u", "root"])
                    .args(["-P", &db.port.to_string()])
                    .args(["-e", "CREATE DATABASE IF NOT EXISTS tandem"]));
                return db;
            }
        }
        panic!("could not start a private mariadbd");
    }

    /// `mysql://root@127.0.0.1:<port>/tandem`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/tandem", self.port)
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        kill(&mut self.child);
        wait_port_free(self.port);
    }

    /// Starts the server again on the same port (InnoDB recovers what was committed),
    /// waiting until it answers.
    pub fn restart(&mut self) {
        self.stop();
        spawn_again("mariadbd", || self.spawn());
    }

    fn spawn(&mut self) -> bool {
        let socket = self.dir.join("mariadb.sock");
        let child = Command::new(mariadbd())
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mariadb.pid").display()
            ))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
            ])
            .args(["--skip-log-bin", "--innodb-flush-log-at-trx-commit=2"])
            .arg("--innodb-log-file-size=16M")
            .arg(format!("--port={}", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let (port, pid_file) = (self.port, self.dir.join("mariadb.pid"));
        started(&mut self.child, child, |pid| {
            let ours = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
                == Some(pid);
            ours && TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        kill(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mariadbd() -> PathBuf {
    ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("mariadbd"))
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a setup command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
