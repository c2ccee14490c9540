//! The fault suite: a cluster of three `tandem-server` processes behind nginx, on a private
//! PostgreSQL or MariaDB server and a private Redis, under a mixed load (signed-in readers
//! rotating their tokens, editors saving dashboards with compare-and-swap, a Live publisher
//! and subscribers, posted alerts notified through a recording webhook receiver), broken one
//! fault at a time while the load runs:
//!
//! - SIGKILL of each instance in turn, then a restart;
//! - a restart of the database server, and of Redis;
//! - SIGSTOP of an instance for 10 s, then SIGCONT;
//! - one instance cut off from the database for 10 s (its TCP proxy) while the others keep it;
//! - one instance restarted with its clock 5 s ahead (Debian's libfaketime).
//!
//! After each fault it checks, and prints as a table: no forced logout, every acknowledged
//! save in the database with its version and no version twice, every acknowledged Live
//! publication received (or the subscriber told to recover), every alert group notified
//! firing once and resolved once, every instance healthy again without a restart; with the
//! share of requests that failed and the time to recover. The stalled provisioner (SIGSTOP
//! between a file's read and its write) is `tests/it/provisioning.rs`.
//!
//! It needs Debian's `postgresql` server binaries, `mariadb-server`, `redis-server`, `nginx`
//! and `faketime`; without them it skips, unless `TANDEM_TEST_REQUIRE_SERVICES=1`.

mod checks;
mod load;
#[path = "../common/receiver.rs"]
mod receiver;
mod rig;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tandem::http::testkit::http::HttpResponse;
use tandem::storage::testkit::conformance::eventually;

use crate::checks::Row;
use crate::load::{BROADCAST, Load, Session, WATCHED, send};
use crate::rig::{ADMIN_PASSWORD, Backend, LIBFAKETIME, Rig};

const INSTANCES: usize = 3;
/// Alert groups posted (firing, then resolved) during each fault.
const GROUPS: usize = 8;
const USER_PASSWORD: &str = "fault-suite-user";
const V2: &str = "/api/alertmanager/grafana/api/v2";

/// One at a time: each run is a cluster and its load, which the machine's two cores carry
/// once, not twice.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill(usize),
    RestartDatabase,
    RestartRedis,
    Stop(usize),
    CutDatabase(usize),
    ClockAhead(usize),
}

impl Fault {
    fn name(self) -> String {
        match self {
            Fault::Kill(i) => format!("SIGKILL tandem-{}, restart", i + 1),
            Fault::RestartDatabase => "database restart".to_owned(),
            Fault::RestartRedis => "Redis restart".to_owned(),
            Fault::Stop(i) => format!("SIGSTOP tandem-{} 10 s", i + 1),
            Fault::CutDatabase(i) => format!("tandem-{} cut from the database 10 s", i + 1),
            Fault::ClockAhead(i) => format!("tandem-{} clock 5 s ahead", i + 1),
        }
    }
}

const FAULTS: &[Fault] = &[
    Fault::Kill(0),
    Fault::Kill(1),
    Fault::Kill(2),
    Fault::RestartDatabase,
    Fault::RestartRedis,
    Fault::Stop(1),
    Fault::CutDatabase(2),
    Fault::ClockAhead(0),
];

fn tools_installed() -> bool {
    use tandem::storage::testkit::tool_installed;
    let postgres = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("bin/initdb"))
                .find(|p| p.exists())
        })
        .map_or_else(
            || "/usr/lib/postgresql/*/bin/initdb".to_owned(),
            |p| p.display().to_string(),
        );
    tool_installed(&postgres, "PostgreSQL's server binaries")
        && tool_installed(
            "/usr/bin/mariadb-install-db",
            "MariaDB's server (mariadb-install-db)",
        )
        && tool_installed("/usr/bin/redis-server", "redis-server")
        && tool_installed(rig::nginx_binary(), "Debian's nginx")
        && tool_installed(LIBFAKETIME, "Debian's faketime")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cluster_loses_nothing_through_every_fault() {
    if tools_installed() {
        suite(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_cluster_loses_nothing_through_every_fault() {
    if tools_installed() {
        suite(Backend::Mariadb).await;
    }
}

fn admin() -> String {
    let credentials = format!("admin:{ADMIN_PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

async fn as_admin(base: &str, method: &str, path: &str, body: &Value) -> HttpResponse {
    let auth = admin();
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    send(method, &format!("{base}{path}"), &headers, body.to_string())
        .await
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

async fn suite(backend: Backend) {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let mut rig = Rig::start(backend, INSTANCES).await;
    let base = rig.url();
    say(&format!(
        "fault suite on {}: cluster up in {:.0?}",
        backend.name(),
        started.elapsed()
    ));

    // Users: three readers, three editors, a publisher, three subscribers.
    let mut sessions = Vec::new();
    for k in 1..=10 {
        let login = format!("user-{k}");
        let r = as_admin(
            &base,
            "POST",
            "/api/admin/users",
            &json!({"name": login, "login": login, "password": USER_PASSWORD}),
        )
        .await;
        assert_eq!(r.status, 200, "create {login}: {}", r.text());
        let id = r.json()["id"].as_i64().expect("a user id");
        if (4..=6).contains(&k) {
            let r = as_admin(
                &base,
                "PATCH",
                &format!("/api/org/users/{id}"),
                &json!({"role": "Editor"}),
            )
            .await;
            assert_eq!(r.status, 200, "make {login} an Editor: {}", r.text());
        }
        sessions.push(Session::login(&base, &login, USER_PASSWORD).await);
    }
    let r = as_admin(
        &base,
        "POST",
        "/api/v1/provisioning/contact-points",
        &json!({"name": "hook", "type": "webhook", "settings": {"url": rig.hook}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let policy = json!({"receiver": "hook", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"});
    let r = as_admin(&base, "PUT", "/api/v1/provisioning/policies", &policy).await;
    assert_eq!(r.status, 202, "{}", r.text());

    let mut sessions = sessions.into_iter();
    let readers: Vec<Session> = sessions.by_ref().take(3).collect();
    let writers: Vec<Session> = sessions.by_ref().take(3).collect();
    let publisher = sessions.next().expect("a publisher");
    let subscribers: Vec<(Session, String)> = sessions
        .zip([
            BROADCAST.to_owned(),
            BROADCAST.to_owned(),
            format!("grafana/dashboard/uid/{WATCHED}"),
        ])
        .collect();
    let load = Load::start(readers, writers, publisher, subscribers);
    let records = &load.records;
    eventually(
        "every Live subscriber is subscribed",
        Duration::from_secs(30),
        || async {
            records
                .lock()
                .unwrap()
                .subscribers
                .iter()
                .all(|s| !s.intervals.is_empty())
        },
    )
    .await;
    let mut rows = Vec::new();
    let mut acks_checked = 0;
    let mut published_checked = 0;
    for (n, fault) in FAULTS.iter().enumerate() {
        let row = phase(
            &mut rig,
            &load,
            n,
            *fault,
            &mut acks_checked,
            &mut published_checked,
        )
        .await;
        say(&checks::table(backend.name(), std::slice::from_ref(&row)));
        rows.push(row);
    }
    drop(load);
    let table = checks::table(backend.name(), &rows);
    say(&format!(
        "{table}\nfault suite on {} took {:.0?}",
        backend.name(),
        started.elapsed()
    ));
    assert!(
        rows.iter().all(Row::held),
        "a promise broke:{table}\n{}",
        rig.logs()
    );
}

async fn phase(
    rig: &mut Rig,
    load: &Load,
    n: usize,
    fault: Fault,
    acks_checked: &mut usize,
    published_checked: &mut usize,
) -> Row {
    let base = rig.url();
    {
        let mut records = load.records.lock().unwrap();
        for sub in &mut records.subscribers {
            sub.recovered = 0;
        }
    }
    load.take_stats();
    let names: Vec<String> = (0..GROUPS).map(|g| format!("fault-{n}-{g}")).collect();
    let poster = tokio::spawn(post_alerts(base.clone(), names.clone(), true));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let fault_start = Instant::now();
    inject(rig, fault).await;
    let fault_end = Instant::now();
    let healthy_at = wait_healthy(rig).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    poster.abort();
    post_alerts(base.clone(), names.clone(), false).await;
    let log = rig.log.clone();
    eventually(
        "every alert group notified firing and resolved",
        Duration::from_secs(45),
        || async { checks::all_notified(&log, &names) },
    )
    .await;
    // Live publications acknowledged last reach their subscribers within a moment.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let stats = load.take_stats();
    let mut row = Row {
        fault: fault.name(),
        ..Row::default()
    };
    checks::request_stats(&mut row, &stats, (fault_start, fault_end), healthy_at);
    let (acks, published) = {
        let records = load.records.lock().unwrap();
        (records.acks.clone(), records.published.clone())
    };
    let phase_acks = acks.len() - *acks_checked;
    checks::saves(&mut row, &rig.database_url(), &acks, phase_acks).await;
    {
        let records = load.records.lock().unwrap();
        checks::live(
            &mut row,
            &records,
            &published[*published_checked..],
            &acks[*acks_checked..],
        );
    }
    checks::notifications(&mut row, &rig.log, &names);
    *acks_checked = acks.len();
    *published_checked = published.len();
    row
}

async fn inject(rig: &mut Rig, fault: Fault) {
    match fault {
        Fault::Kill(i) => {
            rig.kill(i).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            rig.spawn(i, false);
        }
        Fault::RestartDatabase => rig.restart_database(Duration::from_secs(3)).await,
        Fault::RestartRedis => rig.restart_redis(Duration::from_secs(3)).await,
        Fault::Stop(i) => {
            rig.instances[i].process().pause();
            tokio::time::sleep(Duration::from_secs(10)).await;
            rig.instances[i].process().resume();
        }
        Fault::CutDatabase(i) => {
            rig.instances[i].proxy.set_up(false);
            tokio::time::sleep(Duration::from_secs(10)).await;
            rig.instances[i].proxy.set_up(true);
        }
        Fault::ClockAhead(i) => {
            // A restart (SIGKILL, then a new process) under libfaketime, then 10 s of load
            // with the skew.
            rig.kill(i).await;
            rig.spawn(i, true);
            rig.wait_healthy(i).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
}

/// Waits until every instance answers `/api/health` with 200 and lists all the others as
/// live peers; returns when. Instances restarted by the fault are waited for first.
async fn wait_healthy(rig: &mut Rig) -> Instant {
    for i in 0..rig.instances.len() {
        rig.wait_healthy(i).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all = true;
        for instance in &rig.instances {
            let health = send(
                "GET",
                &format!("{}/api/health", instance.url()),
                &[],
                String::new(),
            )
            .await;
            let auth = admin();
            let cluster = send(
                "GET",
                &format!("{}/api/cluster", instance.url()),
                &[("authorization", auth.as_str())],
                String::new(),
            )
            .await;
            let peers = cluster
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| r.json()["peers"].as_array().map(Vec::len))
                .unwrap_or(0);
            if !health.is_ok_and(|r| r.status == 200) || peers != rig.instances.len() {
                all = false;
            }
        }
        if all {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the cluster is not healthy again after 60 s:\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts the phase's alerts as Prometheus does: firing every second until aborted (`firing`),
/// or resolved twice.
async fn post_alerts(base: String, names: Vec<String>, firing: bool) {
    let format = &time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let starts = now.format(format).expect("a timestamp");
    let rounds = if firing { usize::MAX } else { 2 };
    for _ in 0..rounds {
        let ends = if firing {
            (time::OffsetDateTime::now_utc() + time::Duration::minutes(5))
                .format(format)
                .expect("a timestamp")
        } else {
            time::OffsetDateTime::now_utc()
                .format(format)
                .expect("a timestamp")
        };
        let alerts: Vec<Value> = names
            .iter()
            .map(|name| json!({"labels": {"alertname": name, "suite": "faults"}, "annotations": {}, "startsAt": starts, "endsAt": ends}))
            .collect();
        let auth = admin();
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let _ = send(
            "POST",
            &format!("{base}{V2}/alerts"),
            &headers,
            Value::Array(alerts).to_string(),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Writes past the test harness's capture, so the table shows in a passing run too.
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
