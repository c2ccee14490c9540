use std::time::Duration;

use tandem::http::testkit::http;
use tandem::http::testkit::{ServerProcess, database_env, eventually, server_binary};
use tandem::storage::sea_orm::{ConnectionTrait, Statement};
use tandem::storage::testkit::TestDatabase;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a process may take to become healthy before the test gives up. This is a
/// liveness bound, not a performance target (those are in docs/BENCHMARKS.md).
const START_DEADLINE: Duration = Duration::from_secs(60);

async fn peer_ids(url: &str) -> Vec<String> {
    let response = http::get_as_admin(&format!("{url}/api/cluster")).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let mut ids: Vec<String> = response.json()["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|peer| peer["instanceId"].as_str().expect("instanceId").to_owned())
        .collect();
    ids.sort();
    ids
}

fn spawn(test: &TestDatabase, id: &str) -> ServerProcess {
    spawn_with(test, id, &[])
}

fn spawn_with(test: &TestDatabase, id: &str, extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = database_env(&test.settings());
    env.push(("GF_CLUSTER_INSTANCE_ID".to_owned(), id.to_owned()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ServerProcess::spawn(&env)
}

async fn migration_count(test: &TestDatabase) -> usize {
    let db = test.connect().await;
    let backend = db.connection().get_database_backend();
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations",
        ))
        .await
        .expect("the migration table exists");
    db.close().await;
    rows.len()
}

fn known_migrations() -> usize {
    use tandem::migrations::sea_orm_migration::MigratorTrait;
    tandem::migrations::Migrator::migrations().len()
}

// Five server processes start at the same moment on an empty database: all become
// healthy, each migration is recorded once, and every instance sees all five.
tandem::storage::backend_tests!(
    five_processes_cold_start_together,
    |test: TestDatabase| async move {
        let mut processes: Vec<_> = (0..5).map(|i| spawn(&test, &format!("p{i}"))).collect();
        for process in &mut processes {
            process.wait_healthy(START_DEADLINE).await;
        }
        assert_eq!(migration_count(&test).await, known_migrations());
        let expected: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        for process in &processes {
            let url = process.url();
            eventually(
                "every instance sees all five",
                Duration::from_secs(10),
                || {
                    let (url, expected) = (url.clone(), expected.clone());
                    async move { peer_ids(&url).await == expected }
                },
            )
            .await;
        }
    }
);

// An instance killed with SIGKILL runs no shutdown code: its peers keep listing it until
// its heartbeat is older than the peer timeout (5 s here), then drop it.
tandem::storage::backend_tests!(
    a_killed_instance_drops_out_after_the_peer_timeout,
    |test: TestDatabase| async move {
        let timeout = [("GF_CLUSTER_PEER_TIMEOUT", "5s")];
        let mut processes: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|id| spawn_with(&test, id, &timeout))
            .collect();
        for process in &mut processes {
            process.wait_healthy(START_DEADLINE).await;
        }
        let survivor = processes[0].url();
        eventually("all three are listed", Duration::from_secs(10), || {
            let url = survivor.clone();
            async move { peer_ids(&url).await == ["a", "b", "c"] }
        })
        .await;
        processes[2].kill().await;
        assert_eq!(
            peer_ids(&survivor).await,
            ["a", "b", "c"],
            "not dropped before the timeout"
        );
        eventually(
            "the killed instance drops out",
            Duration::from_secs(20),
            || {
                let url = survivor.clone();
                async move { peer_ids(&url).await == ["a", "b"] }
            },
        )
        .await;
        assert_eq!(
            http::get(&format!("{}/api/health", processes[1].url()))
                .await
                .status,
            200
        );
    }
);

// SIGTERM: the process finishes, removes its membership row and exits 0, so its peers stop
// listing it at once rather than after the peer timeout.
tandem::storage::backend_tests!(
    sigterm_leaves_at_once_and_exits_0,
    |test: TestDatabase| async move {
        let mut a = spawn(&test, "a");
        let mut b = spawn(&test, "b");
        a.wait_healthy(START_DEADLINE).await;
        b.wait_healthy(START_DEADLINE).await;
        let url = a.url();
        eventually("both are listed", Duration::from_secs(10), || {
            let url = url.clone();
            async move { peer_ids(&url).await == ["a", "b"] }
        })
        .await;
        // An idle keep-alive connection (one request served, then silence) must not hold
        // the shutdown up.
        let mut idle = tokio::net::TcpStream::connect(b.url().trim_start_matches("http://"))
            .await
            .unwrap();
        idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: tandem\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let read = idle.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let code = b.terminate(Duration::from_secs(30)).await;
        assert_eq!(code, Some(0), "exit status after SIGTERM:\n{}", b.logs());
        assert_eq!(
            peer_ids(&url).await,
            ["a"],
            "the leaver's row is gone before it exits"
        );
        drop(idle);
    }
);

// `tandem-server migrate` applies the migrations and exits 0; a second run finds nothing
// to do and exits 0 too.
tandem::storage::backend_tests!(
    the_migrate_command_applies_and_exits,
    |test: TestDatabase| async move {
        for _ in 0..2 {
            let output = tokio::process::Command::new(server_binary())
                .arg("migrate")
                .env_clear()
                .envs(database_env(&test.settings()))
                .output()
                .await
                .expect("run tandem-server migrate");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(migration_count(&test).await, known_migrations());
        }
    }
);

// A bad value stops the server before it does anything, with a message that names the
// section and key, and a non-zero status.
#[tokio::test]
async fn an_invalid_setting_stops_the_server_with_a_clear_message() {
    for (key, value, words) in [
        ("GF_SERVER_HTTP_PORT", "eighty", "[server] http_port"),
        ("GF_CLUSTER_PEER_TIMEOUT", "soon", "[cluster] peer_timeout"),
        ("GF_DATABASE_TYPE", "oracle", "[database] type"),
    ] {
        let output = tokio::process::Command::new(server_binary())
            .env_clear()
            .env(key, value)
            .output()
            .await
            .expect("run tandem-server");
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(words) && stderr.contains(value),
            "{key}={value}: {stderr}"
        );
    }
}

/// Debian's `faketime` library, which shifts the clock of the process it is preloaded in.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// One instance's clock runs 5 s ahead (libfaketime) with a 2 s peer timeout: heartbeats
/// and the peer query take their times from the database's clock, so each instance keeps
/// listing the other, as it would with synchronised clocks; a killed instance still drops
/// out. SQLite is not run: its clock is that of the host running the query, which every
/// instance sharing the file shares (faketime would shift it for one process only).
async fn a_clock_5s_ahead_keeps_its_peers(backend: tandem::storage::Backend) {
    if !tandem::storage::testkit::tool_installed(LIBFAKETIME, "Debian's faketime") {
        return;
    }
    let Some(test) = TestDatabase::create(backend).await else {
        return;
    };
    let mut a = spawn(&test, "a");
    let mut b = spawn_with(
        &test,
        "b",
        &[("LD_PRELOAD", LIBFAKETIME), ("FAKETIME", "+5s")],
    );
    a.wait_healthy(START_DEADLINE).await;
    b.wait_healthy(START_DEADLINE).await;
    // The shift is in effect: b's start time, by its own clock, is in the future.
    let cluster = http::get_as_admin(&format!("{}/api/cluster", a.url()))
        .await
        .json();
    let started = |id: &str| {
        let peer = cluster["peers"]
            .as_array()
            .and_then(|peers| peers.iter().find(|p| p["instanceId"] == id))
            .unwrap_or_else(|| panic!("{id} is listed: {cluster}"));
        time::OffsetDateTime::parse(
            peer["startedAt"].as_str().expect("startedAt"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("an RFC 3339 time")
    };
    assert!(
        started("b") - started("a") > time::Duration::seconds(4),
        "b runs 5 s ahead: {cluster}"
    );
    for process in [&a, &b] {
        let url = process.url();
        eventually("each lists both", Duration::from_secs(10), || {
            let url = url.clone();
            async move { peer_ids(&url).await == ["a", "b"] }
        })
        .await;
    }
    // With the hosts' clocks, b would see a's heartbeats 5 s old and drop it at once.
    for _ in 0..20 {
        for process in [&a, &b] {
            assert_eq!(
                peer_ids(&process.url()).await,
                ["a", "b"],
                "{} keeps both",
                process.instance_id()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    a.kill().await;
    let survivor = b.url();
    eventually("the killed one drops out", Duration::from_secs(20), || {
        let url = survivor.clone();
        async move { peer_ids(&url).await == ["b"] }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_instance_whose_clock_runs_5s_ahead_keeps_its_peers() {
    a_clock_5s_ahead_keeps_its_peers(tandem::storage::Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_an_instance_whose_clock_runs_5s_ahead_keeps_its_peers() {
    a_clock_5s_ahead_keeps_its_peers(tandem::storage::Backend::Mysql).await;
}
