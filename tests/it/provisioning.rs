//! A dashboard provisioner stopped (SIGSTOP) between reading its files and writing them,
//! while the file changes and another instance writes the new content: when it runs
//! again, it must not write what it read back over the newer content.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tandem::http::testkit::http;
use tandem::http::testkit::{ServerProcess, TcpProxy, database_env, eventually};
use tandem::storage::Location;
use tandem::storage::testkit::TestDatabase;

const START_DEADLINE: Duration = Duration::from_secs(60);
const UID: &str = "stalled-board";

/// The provisioning directory and the dashboard files it names; removed when dropped.
struct Files {
    root: PathBuf,
}

impl Files {
    fn new() -> Files {
        let root = std::env::temp_dir().join(format!(
            "tandem-stalled-provisioner-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(root.join("provisioning/dashboards")).expect("provisioning dir");
        std::fs::create_dir_all(root.join("files")).expect("files dir");
        std::fs::write(
            root.join("provisioning/dashboards/files.yaml"),
            format!(
                "apiVersion: 1\nproviders:\n  - name: files\n    orgId: 1\n    updateIntervalSeconds: 1\n    options:\n      path: {}\n",
                root.join("files").display()
            ),
        )
        .expect("write the provider");
        Files { root }
    }

    fn provisioning(&self) -> String {
        self.root.join("provisioning").display().to_string()
    }

    /// Replaces the dashboard file in one rename, so a reader sees the old or the new
    /// content, never a mix; returns the content's SHA-256 as the server logs it.
    fn write_board(&self, title: &str) -> String {
        let content = serde_json::json!({"uid": UID, "title": title}).to_string();
        let staged = self.root.join("board.json.new");
        std::fs::write(&staged, &content).expect("write the dashboard file");
        std::fs::rename(&staged, self.root.join("files/board.json")).expect("rename it");
        Sha256::digest(content.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What keeps the stopped instance's write from reaching the database until the test
/// lets it: on SQLite a test connection holding the write lock (the instance waits in its
/// own busy handler, holding no lock, so it can be stopped there); on PostgreSQL and
/// MariaDB a paused TCP proxy between the instance and its database (a lock wait would be
/// queued in the server, which would grant it to the stopped instance).
enum Barrier {
    Lock {
        path: PathBuf,
        holder: Option<sqlx::SqliteConnection>,
    },
    Proxy(TcpProxy),
}

impl Barrier {
    async fn new(test: &TestDatabase) -> Barrier {
        match test.settings().location {
            Location::SqliteFile(path) => Barrier::Lock { path, holder: None },
            Location::Url(url) => {
                let server = url
                    .split_once("://")
                    .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, host)| host))
                    .and_then(|rest| rest.split('/').next())
                    .expect("a server in the URL")
                    .to_owned();
                Barrier::Proxy(TcpProxy::start(&server).await)
            }
        }
    }

    /// The stopped instance's database variables: through the proxy on a server.
    fn env(&self, test: &TestDatabase) -> Vec<(String, String)> {
        let mut env = database_env(&test.settings());
        if let Barrier::Proxy(proxy) = self {
            for (key, value) in &mut env {
                if key == "GF_DATABASE_URL" {
                    let (scheme, rest) = value.split_once("://").expect("a URL");
                    let (authority, path) = rest.split_once('/').expect("a database name");
                    let user = authority
                        .rsplit_once('@')
                        .map(|(user, _)| format!("{user}@"))
                        .unwrap_or_default();
                    *value = format!("{scheme}://{user}{}/{path}", proxy.addr());
                }
            }
        }
        env
    }

    async fn hold(&mut self) {
        match self {
            Barrier::Lock { path, holder } => {
                use sqlx::Connection;
                let mut connection =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("open the SQLite file");
                sqlx::Executor::execute(&mut connection, "BEGIN IMMEDIATE")
                    .await
                    .expect("take the write lock");
                *holder = Some(connection);
            }
            Barrier::Proxy(proxy) => proxy.set_paused(true),
        }
    }

    /// Lets the other instances write again (SQLite); a paused proxy stays paused.
    async fn release_others(&mut self) {
        if let Barrier::Lock { holder, .. } = self
            && let Some(mut connection) = holder.take()
        {
            sqlx::Executor::execute(&mut connection, "ROLLBACK")
                .await
                .expect("release the write lock");
        }
    }

    fn release_all(&mut self) {
        if let Barrier::Proxy(proxy) = self {
            proxy.set_paused(false);
        }
    }
}

fn spawn(env: &[(String, String)], id: &str, files: &Files) -> ServerProcess {
    let mut env = env.to_vec();
    env.extend([
        ("GF_CLUSTER_INSTANCE_ID".to_owned(), id.to_owned()),
        ("GF_PATHS_PROVISIONING".to_owned(), files.provisioning()),
        ("GF_LOG_LEVEL".to_owned(), "debug".to_owned()),
    ]);
    ServerProcess::spawn(&env)
}

/// The dashboard's (version, title), newest first, as `url` answers them.
async fn versions(url: &str) -> Vec<(i64, String)> {
    let listed = http::get_as_admin(&format!("{url}/api/dashboards/uid/{UID}/versions")).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let mut out = Vec::new();
    for version in listed.json()["versions"].as_array().expect("versions") {
        let n = version["version"].as_i64().expect("a version number");
        let one = http::get_as_admin(&format!("{url}/api/dashboards/uid/{UID}/versions/{n}")).await;
        assert_eq!(one.status, 200, "{}", one.text());
        let title = one.json()["data"]["title"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        out.push((n, title));
    }
    out
}

/// Waits until `process` has logged `needle` after byte `from` of its log; returns where
/// it was found.
async fn logged_after(process: &ServerProcess, needle: &str, from: usize, what: &str) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = process.logs();
        if let Some(at) = logs.get(from..).and_then(|tail| tail.find(needle)) {
            return from + at;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {needle:?} not logged within 30 s:\n{}",
            logs.get(from..).unwrap_or("")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn stalled_provisioner(test: TestDatabase) {
    let files = Files::new();
    files.write_board("Content X");
    let mut barrier = Barrier::new(&test).await;
    let mut a = spawn(&barrier.env(&test), "a", &files);
    a.wait_healthy(START_DEADLINE).await;
    let a_url = a.url();
    eventually("A provisions the file", Duration::from_secs(30), || {
        let url = a_url.clone();
        async move {
            http::get_as_admin(&format!("{url}/api/dashboards/uid/{UID}"))
                .await
                .status
                == 200
        }
    })
    .await;

    // Right after one of A's runs ends (the next starts a second later), the barrier goes
    // up and the file changes: A's next run reads the new content and its write waits.
    let idle = "dashboard provisioning found no change";
    let end_of_run = logged_after(&a, idle, a.logs().len(), "A finishes a run").await;
    barrier.hold().await;
    let y = files.write_board("Content Y");
    logged_after(&a, &y, end_of_run, "A reads the changed file").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.pause();
    barrier.release_others().await;

    // While A is stopped, the file changes again and B writes that content.
    let z = files.write_board("Content Z");
    let mut b = spawn(&database_env(&test.settings()), "b", &files);
    b.wait_healthy(START_DEADLINE).await;
    let b_url = b.url();
    eventually(
        "B provisions the newest content",
        Duration::from_secs(30),
        || {
            let url = b_url.clone();
            async move {
                let got = http::get_as_admin(&format!("{url}/api/dashboards/uid/{UID}")).await;
                got.status == 200 && got.json()["dashboard"]["title"] == "Content Z"
            }
        },
    )
    .await;

    // A runs again: its write of Y reaches the database after B's write of Z.
    let resumed_at = a.logs().len();
    a.resume();
    barrier.release_all();
    let read_z = logged_after(&a, &z, resumed_at, "A reads the newest file").await;
    logged_after(&a, idle, read_z, "A's next run finds nothing to do").await;

    let expected = [(2, "Content Z".to_owned()), (1, "Content X".to_owned())];
    assert_eq!(versions(&b_url).await, expected, "no version of Y after Z");
    assert_eq!(versions(&a.url()).await, expected, "A serves the same");
    // A did try: its write of Y found the file changed (the test's stop was in between).
    assert!(
        a.logs()[resumed_at..].contains("the file changed after it was read"),
        "A's stalled write was not refused as stale:\n{}",
        &a.logs()[resumed_at..]
    );
}

tandem::storage::backend_tests!(
    a_provisioner_stopped_between_read_and_write_never_writes_old_content_back,
    |test: TestDatabase| async move { stalled_provisioner(test).await }
);
