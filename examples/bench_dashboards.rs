//! Benchmark of dashboard search latency and save throughput through one in-process
//! Tandem instance, on SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! ```sh
//! cargo run --release --example bench_dashboards                       # SQLite
//! cargo run --release --example bench_dashboards -- postgres://postgres@127.0.0.1:5432/test
//! cargo run --release --example bench_dashboards -- mysql://root@127.0.0.1:3306/test 10
//! ```
//!
//! A given PostgreSQL or MySQL URL names a server on which a scratch database is created and
//! dropped; the optional second argument is the length of each save run in seconds, and
//! `--keep` keeps the scratch database (or SQLite file) for `EXPLAIN`. After seeding, the
//! planner statistics are refreshed as autovacuum would (`VACUUM ANALYZE` on PostgreSQL,
//! `ANALYZE TABLE` on MySQL) unless `--no-analyze` is given.
//!
//! 1. Seeds 10 000 dashboards in 100 folders (each with two to four tags from a vocabulary
//!    of 20, titles built from word lists) through the `Dashboards` service, and stars 50.
//! 2. Search: sequential `GET /api/search` requests from one keep-alive connection with a
//!    session cookie, the query kinds interleaved round by round, after warm-up rounds;
//!    prints p50, p99 and max per kind. Then the same queries as a Viewer whose access
//!    comes through a team given View on half of the folders (the other half keep no item),
//!    so the permission filter is in every query.
//! 3. Saves: 16 concurrent writers, each updating its own dashboard with the version it
//!    last read (compare-and-swap), first through `POST /api/dashboards/db`, then through
//!    the `Dashboards` service, then a raw transaction of one `UPDATE` and one `INSERT` of
//!    the same JSON through the same connection pool; prints saves/s and the ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tandem::dashboards::{
    BasicRole, CreateFolder, DashboardSettings, DashboardUid, Dashboards, FolderRef, FolderUid,
    HitKind, NoEvents, OrgId, Permissions, SaveDashboard, SearchAccess, SearchQuery,
    SqlDashboardStore, Subject, TeamId, UserId, Version,
};
use tandem::http::{RunningServer, Server, Settings};
use tandem::storage::sea_orm::{ConnectionTrait, DbBackend, Statement, Value as SqlValue};
use tandem::storage::{Backend, Database, DatabaseSettings};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const DASHBOARDS: usize = 10_000;
const FOLDERS: usize = 100;
const STARS: usize = 50;
/// Concurrent seeding tasks; SQLite serialises them anyway.
const SEEDERS: usize = 8;
const WARMUP_ROUNDS: usize = 20;
const ROUNDS: usize = 300;
const WRITERS: usize = 16;
const DEFAULT_SAVE_SECONDS: u64 = 10;
const ORG: OrgId = OrgId(1);

const TAGS: [&str; 20] = [
    "prod",
    "staging",
    "dev",
    "kubernetes",
    "postgres",
    "mysql",
    "redis",
    "kafka",
    "nginx",
    "api",
    "frontend",
    "backend",
    "billing",
    "auth",
    "network",
    "storage",
    "slo",
    "alerts",
    "team-a",
    "team-b",
];
const ADJECTIVES: [&str; 12] = [
    "Production",
    "Staging",
    "Regional",
    "Global",
    "Internal",
    "Public",
    "Legacy",
    "Edge",
    "Core",
    "Batch",
    "Realtime",
    "Customer",
];
const SUBJECTS: [&str; 16] = [
    "API",
    "Checkout",
    "Search",
    "Payments",
    "Ingest",
    "Gateway",
    "Database",
    "Cache",
    "Queue",
    "Scheduler",
    "Storage",
    "Identity",
    "Billing",
    "Frontend",
    "Mobile",
    "Network",
];
const ASPECTS: [&str; 10] = [
    "latency",
    "errors",
    "throughput",
    "saturation",
    "overview",
    "capacity",
    "availability",
    "costs",
    "traffic",
    "health",
];
/// Title words searched for with `?query=`: common, rare and mid-title substrings.
const QUERIES: [&str; 6] = ["latency", "checkout", "edge", "api", "gateway err", "ost"];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let keep = args.iter().any(|arg| arg == "--keep");
    let analyze = !args.iter().any(|arg| arg == "--no-analyze");
    let mut positional = args.iter().filter(|arg| !arg.starts_with("--"));
    let target = positional.next().filter(|arg| *arg != "sqlite").cloned();
    let save_seconds = match positional.next() {
        Some(seconds) => seconds.parse().context("seconds must be a number")?,
        None => DEFAULT_SAVE_SECONDS,
    };
    let scratch = format!("tandem_bench_dash_{}", std::process::id());
    let database = match &target {
        Some(url) => {
            let admin = Database::connect(&DatabaseSettings::from_url(url)?).await?;
            admin
                .connection()
                .execute_unprepared(&format!("CREATE DATABASE {scratch}"))
                .await?;
            admin.close().await;
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            DatabaseSettings::from_url(&format!("{base}/{scratch}"))?
        }
        None => DatabaseSettings::sqlite(std::env::temp_dir().join(&scratch).join("tandem.db")),
    };
    let mut settings = Settings {
        database,
        ..Settings::default()
    };
    settings.server.http_addr = "127.0.0.1".to_owned();
    settings.server.http_port = 0;
    let server = Server::start(settings).await?;
    let outcome = run(&server, save_seconds, analyze).await;
    server.shutdown().await?;
    if keep {
        report(format_args!("kept the scratch database {scratch}"));
    } else {
        drop_scratch(target.as_deref(), &scratch).await?;
    }
    outcome
}

async fn run(server: &RunningServer, save_seconds: u64, analyze: bool) -> anyhow::Result<()> {
    let db = server.database().clone();
    let backend = match db.backend() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
        Backend::Mysql => "MySQL/MariaDB",
    };
    let authority = server.local_addr().to_string();
    let cookie = login(&authority).await?;
    let mut client = Client::connect(&authority, &cookie).await?;
    let me = client.get_json("/api/user").await?;
    let user = UserId(me["id"].as_i64().context("GET /api/user has no id")?);
    let dashboards = Dashboards::new(
        Arc::new(SqlDashboardStore::new(db.clone())),
        Arc::new(NoEvents),
        DashboardSettings::default(),
    );

    let started = Instant::now();
    let seeded = seed(&dashboards, user).await?;
    report(format_args!(
        "seeded {DASHBOARDS} dashboards in {FOLDERS} folders on {backend} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    if analyze {
        refresh_statistics(&db).await?;
    }

    // Seeding takes minutes: a connection idle that long may have been closed.
    let mut client = Client::connect(&authority, &cookie).await?;
    let load = load_average();
    let search = search_latency(&mut client, &dashboards, user, None, &seeded).await?;
    print_search(backend, "an org Admin", &load, &search);

    // The same queries as a Viewer whose access comes through a team: the team may view
    // half of the folders, the other half have no item for them at all.
    let reader = team_reader(&mut client, &seeded).await?;
    let reader_cookie = login_as(&authority, "reader", "reader password").await?;
    let mut reader_client = Client::connect(&authority, &reader_cookie).await?;
    let permissions = Permissions::new(
        Arc::new(SqlDashboardStore::new(db.clone())),
        Arc::new(SqlDashboardStore::new(db.clone())),
    );
    let folders = permissions
        .viewable_folders(&reader, ORG)
        .await?
        .context("a Viewer has a list of folders")?;
    ensure!(
        folders.len() == FOLDERS / 2,
        "{} viewable folders",
        folders.len()
    );
    let access = SearchAccess {
        folders,
        subject: reader.clone(),
    };
    let load = load_average();
    let search = search_latency(
        &mut reader_client,
        &dashboards,
        reader.user,
        Some(&access),
        &seeded,
    )
    .await?;
    print_search(
        backend,
        "a Viewer seeing half of the folders through a team",
        &load,
        &search,
    );

    let writers = save_targets(&dashboards, &seeded, user).await?;
    let load = load_average();
    let http = saves_over_http(&authority, &cookie, &writers, save_seconds).await?;
    let service = saves_through_service(&dashboards, &writers, user, save_seconds).await?;
    let raw = raw_transactions(&db, save_seconds).await?;
    print_saves(backend, &load, save_seconds, &[http, service, raw]);
    Ok(())
}

// ---- seeding

/// What the search queries pick from.
struct Seeded {
    folder_uids: Vec<String>,
}

async fn seed(dashboards: &Dashboards, user: UserId) -> anyhow::Result<Seeded> {
    let mut folder_uids = Vec::with_capacity(FOLDERS);
    for i in 0..FOLDERS {
        let folder = dashboards
            .create_folder(CreateFolder {
                org_id: ORG,
                uid: None,
                title: format!("{} {} {i:03}", ADJECTIVES[i % 12], SUBJECTS[i % 16]),
                parent_uid: None,
                user_id: user,
            })
            .await?;
        folder_uids.push(folder.uid.into_string());
    }
    let folder_uids = Arc::new(folder_uids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut seeders = Vec::new();
    for _ in 0..SEEDERS {
        let (dashboards, folder_uids, next) =
            (dashboards.clone(), folder_uids.clone(), next.clone());
        seeders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= DASHBOARDS {
                    return anyhow::Ok(());
                }
                let mut rng = Rng::new(i as u64 + 1);
                let title = format!(
                    "{} {} {} {i:05}",
                    ADJECTIVES[rng.below(ADJECTIVES.len())],
                    SUBJECTS[rng.below(SUBJECTS.len())],
                    ASPECTS[rng.below(ASPECTS.len())],
                );
                let mut tags: Vec<&str> = (0..2 + rng.below(3))
                    .map(|_| TAGS[rng.below(TAGS.len())])
                    .collect();
                tags.sort_unstable();
                tags.dedup();
                dashboards
                    .save(SaveDashboard {
                        org_id: ORG,
                        dashboard: dashboard_json(&format!("seed{i:05}"), &title, &tags, 0),
                        folder: FolderRef::Uid(FolderUid::from(folder_uids[i % FOLDERS].as_str())),
                        overwrite: false,
                        message: String::new(),
                        user_id: user,
                    })
                    .await?;
                if (i + 1) % 1000 == 0 {
                    report(format_args!("seeded {} dashboards", i + 1));
                }
            }
        }));
    }
    for seeder in seeders {
        seeder.await??;
    }
    for i in 0..STARS {
        let uid = DashboardUid::from(format!("seed{:05}", i * (DASHBOARDS / STARS)));
        dashboards.star(user, ORG, &uid).await?;
    }
    Ok(Seeded {
        folder_uids: Arc::unwrap_or_clone(folder_uids),
    })
}

/// Gives the planner the statistics a server would have by now. PostgreSQL's autovacuum
/// analyses a table a while after a bulk load (never, where it is off); InnoDB recomputes
/// them in the background after 10 % of a table changed. SQLite keeps none unless `ANALYZE`
/// runs, which Tandem never does, so it is left as a real instance has it.
async fn refresh_statistics(db: &Database) -> anyhow::Result<()> {
    let statement = match db.backend() {
        Backend::Sqlite => return Ok(()),
        Backend::Postgres => "VACUUM ANALYZE",
        Backend::Mysql => "ANALYZE TABLE folder, dashboard, dashboard_tag, star",
    };
    db.connection().execute_unprepared(statement).await?;
    report(format_args!("ran {statement}"));
    Ok(())
}

/// A dashboard of six panels with targets, thresholds and templating: about 4 KB, the
/// order of a small real dashboard.
fn dashboard_json(uid: &str, title: &str, tags: &[&str], version: i64) -> Value {
    let panels: Vec<Value> = (0..6)
        .map(|p| {
            json!({
                "id": p + 1,
                "type": "timeseries",
                "title": format!("{} panel {p}", ASPECTS[p % ASPECTS.len()]),
                "gridPos": {"h": 8, "w": 12, "x": (p % 2) * 12, "y": (p / 2) * 8},
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "targets": [{
                    "refId": "A",
                    "expr": format!("sum(rate(http_requests_total{{job=\"$job\",code=~\"5..\",panel=\"{p}\"}}[$__rate_interval])) by (instance)"),
                    "legendFormat": "{{instance}}",
                }],
                "fieldConfig": {
                    "defaults": {
                        "unit": "reqps",
                        "thresholds": {"mode": "absolute", "steps": [
                            {"color": "green", "value": null},
                            {"color": "red", "value": 80},
                        ]},
                    },
                    "overrides": [],
                },
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            })
        })
        .collect();
    json!({
        "uid": uid,
        "title": title,
        "tags": tags,
        "version": version,
        "schemaVersion": 39,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "job",
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "query": "label_values(up, job)",
        }]},
        "panels": panels,
    })
}

// ---- search

struct KindResult {
    name: &'static str,
    /// Through HTTP.
    samples: Vec<Duration>,
    /// The same query through `Dashboards::search`, right after.
    direct: Vec<Duration>,
    hits: usize,
}

/// The query kinds, each as a function from a random number generator to a path.
type Kind = (&'static str, fn(&mut Rng, &Seeded) -> String);

const KINDS: [Kind; 10] = [
    ("limit=100 (page 1)", |_, _| {
        "/api/search?limit=100".to_owned()
    }),
    ("limit=100&page=1..101", |rng, _| {
        format!("/api/search?limit=100&page={}", 1 + rng.below(101))
    }),
    ("no filter (default limit 1000)", |_, _| {
        "/api/search".to_owned()
    }),
    ("query=<substring>", |rng, _| {
        format!(
            "/api/search?query={}",
            QUERIES[rng.below(QUERIES.len())].replace(' ', "%20")
        )
    }),
    ("query=<substring>&limit=100", |rng, _| {
        format!(
            "/api/search?query={}&limit=100",
            QUERIES[rng.below(QUERIES.len())].replace(' ', "%20")
        )
    }),
    ("tag=x", |rng, _| {
        format!("/api/search?tag={}", TAGS[rng.below(TAGS.len())])
    }),
    ("tag=x&tag=y", |rng, _| {
        let x = rng.below(TAGS.len());
        let y = (x + 1 + rng.below(TAGS.len() - 1)) % TAGS.len();
        format!("/api/search?tag={}&tag={}", TAGS[x], TAGS[y])
    }),
    ("folderUIDs=<uid>", |rng, seeded| {
        format!(
            "/api/search?folderUIDs={}",
            seeded.folder_uids[rng.below(seeded.folder_uids.len())]
        )
    }),
    ("starred=true", |_, _| "/api/search?starred=true".to_owned()),
    ("type=dash-folder", |_, _| {
        "/api/search?type=dash-folder".to_owned()
    }),
];

/// A Viewer `reader` in a team that may view every other seeded folder; the rest of the
/// folders keep no item at all (so only Admins see them).
async fn team_reader(admin: &mut Client, seeded: &Seeded) -> anyhow::Result<Subject> {
    let created = admin
        .post_json(
            "/api/admin/users",
            json!({"login": "reader", "email": "reader@example.com", "password": "reader password"}),
        )
        .await?;
    let user = created["id"].as_i64().context("a user id")?;
    let team = admin
        .post_json("/api/teams", json!({"name": "readers"}))
        .await?["teamId"]
        .as_i64()
        .context("a team id")?;
    admin
        .post_json(
            &format!("/api/teams/{team}/members"),
            json!({"userId": user}),
        )
        .await?;
    for (i, uid) in seeded.folder_uids.iter().enumerate() {
        let items = if i % 2 == 0 {
            json!([{"teamId": team, "permission": 1}])
        } else {
            json!([])
        };
        admin
            .post_json(
                &format!("/api/folders/{uid}/permissions"),
                json!({ "items": items }),
            )
            .await?;
    }
    Ok(Subject {
        user: UserId(user),
        role: Some(BasicRole::Viewer),
        teams: vec![TeamId(team)],
    })
}

async fn search_latency(
    client: &mut Client,
    dashboards: &Dashboards,
    user: UserId,
    access: Option<&SearchAccess>,
    seeded: &Seeded,
) -> anyhow::Result<Vec<KindResult>> {
    let mut results: Vec<KindResult> = KINDS
        .iter()
        .map(|(name, _)| KindResult {
            name,
            samples: Vec::with_capacity(ROUNDS),
            direct: Vec::with_capacity(ROUNDS),
            hits: 0,
        })
        .collect();
    let mut rng = Rng::new(42);
    for round in 0..WARMUP_ROUNDS + ROUNDS {
        for (kind, result) in KINDS.iter().zip(results.iter_mut()) {
            let path = (kind.1)(&mut rng, seeded);
            let at = Instant::now();
            let (status, body) = client.request("GET", &path, None).await?;
            let took = at.elapsed();
            ensure!(status == 200, "GET {path}: {status} {}", text(&body));
            let mut query = search_query(&path, user);
            query.access = access.cloned();
            let at = Instant::now();
            let direct = dashboards.search(query).await?;
            let direct_took = at.elapsed();
            let hits: Value = serde_json::from_slice(&body)?;
            let hits = hits.as_array().map_or(0, Vec::len);
            ensure!(
                direct.len() == hits,
                "{path}: {hits} hits over HTTP, {} direct",
                direct.len()
            );
            if round >= WARMUP_ROUNDS {
                result.samples.push(took);
                result.direct.push(direct_took);
                result.hits += hits;
            }
        }
    }
    Ok(results)
}

/// The `SearchQuery` the handler builds from `path`'s parameters (those the kinds use).
fn search_query(path: &str, user: UserId) -> SearchQuery {
    let mut query = SearchQuery::new(ORG);
    query.user_id = Some(user);
    let params = path.split_once('?').map_or("", |(_, params)| params);
    for pair in params.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace("%20", " ");
        match key {
            "query" => query.query = Some(value),
            "tag" => query.tags.push(value),
            "folderUIDs" => query.folder_uids.push(value),
            "starred" => query.starred = value == "true",
            "type" => query.kind = HitKind::from_grafana(&value),
            "limit" => query.limit = value.parse().ok(),
            "page" => query.page = value.parse().ok(),
            _ => {}
        }
    }
    query
}

// ---- saves

/// One writer's dashboard.
#[derive(Clone)]
struct Target {
    uid: String,
    folder_uid: String,
    version: i64,
}

/// Creates one dashboard per writer, in the seeded folders.
async fn save_targets(
    dashboards: &Dashboards,
    seeded: &Seeded,
    user: UserId,
) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(WRITERS);
    for w in 0..WRITERS {
        let uid = format!("writer{w:02}");
        let folder_uid = seeded.folder_uids[w % FOLDERS].clone();
        let saved = dashboards
            .save(SaveDashboard {
                org_id: ORG,
                dashboard: dashboard_json(&uid, &title_of(w, 0), &["bench", "writer"], 0),
                folder: FolderRef::Uid(FolderUid::from(folder_uid.as_str())),
                overwrite: false,
                message: String::new(),
                user_id: user,
            })
            .await?;
        targets.push(Target {
            uid,
            folder_uid,
            version: saved.version.0,
        });
    }
    Ok(targets)
}

fn title_of(writer: usize, save: u64) -> String {
    format!("Writer {writer:02} dashboard, save {save}")
}

struct SaveResult {
    name: &'static str,
    saves: usize,
    errors: usize,
    elapsed: Duration,
    samples: Vec<Duration>,
}

/// Runs `WRITERS` loops of `save` until `seconds` have passed; each loop gets its writer
/// index and returns its latencies and its error count.
async fn concurrently<F, Fut>(name: &'static str, seconds: u64, save: F) -> SaveResult
where
    F: Fn(usize, Instant) -> Fut,
    Fut: Future<Output = (Vec<Duration>, usize)> + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let writers: Vec<JoinHandle<(Vec<Duration>, usize)>> = (0..WRITERS)
        .map(|w| tokio::spawn(save(w, deadline)))
        .collect();
    let mut samples = Vec::new();
    let mut errors = 0;
    for writer in writers {
        match writer.await {
            Ok((latencies, failed)) => {
                samples.extend(latencies);
                errors += failed;
            }
            Err(_) => errors += 1,
        }
    }
    SaveResult {
        name,
        saves: samples.len(),
        errors,
        elapsed: started.elapsed(),
        samples,
    }
}

async fn saves_over_http(
    authority: &str,
    cookie: &str,
    targets: &[Target],
    seconds: u64,
) -> anyhow::Result<SaveResult> {
    let mut clients = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        clients.push(Client::connect(authority, cookie).await?);
    }
    let clients: Vec<_> = clients.into_iter().map(tokio::sync::Mutex::new).collect();
    let clients = Arc::new(clients);
    let targets = Arc::new(targets.to_vec());
    let result = concurrently("POST /api/dashboards/db", seconds, |w, deadline| {
        let (clients, targets) = (clients.clone(), targets.clone());
        async move {
            let mut client = clients[w].lock().await;
            let target = &targets[w];
            let mut version = target.version;
            let (mut latencies, mut errors) = (Vec::new(), 0);
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let body = json!({
                    "dashboard": dashboard_json(&target.uid, &title_of(w, n), &["bench", "writer"], version),
                    "folderUid": target.folder_uid,
                    "message": format!("save {n}"),
                });
                let at = Instant::now();
                match client
                    .request("POST", "/api/dashboards/db", Some(body.to_string()))
                    .await
                {
                    Ok((200, answer)) => {
                        latencies.push(at.elapsed());
                        let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
                        version = answer["version"].as_i64().unwrap_or(version + 1);
                    }
                    Ok((status, answer)) => {
                        errors += 1;
                        report(format_args!("save over HTTP: {status} {}", text(&answer)));
                    }
                    Err(err) => {
                        errors += 1;
                        report(format_args!("save over HTTP: {err}"));
                    }
                }
            }
            (latencies, errors)
        }
    })
    .await;
    Ok(result)
}

async fn saves_through_service(
    dashboards: &Dashboards,
    targets: &[Target],
    user: UserId,
    seconds: u64,
) -> anyhow::Result<SaveResult> {
    // The HTTP run moved every version on; read them back.
    let mut current = Vec::with_capacity(targets.len());
    for target in targets {
        let dashboard = dashboards
            .get(ORG, &DashboardUid::from(target.uid.as_str()))
            .await?;
        current.push(Target {
            version: dashboard.version.0,
            ..target.clone()
        });
    }
    let targets = Arc::new(current);
    let result = concurrently("Dashboards::save", seconds, |w, deadline| {
        let (dashboards, targets) = (dashboards.clone(), targets.clone());
        async move {
            let target = &targets[w];
            let mut version = Version(target.version);
            let (mut latencies, mut errors) = (Vec::new(), 0);
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let save = SaveDashboard {
                    org_id: ORG,
                    dashboard: dashboard_json(
                        &target.uid,
                        &title_of(w, n),
                        &["bench", "writer"],
                        version.0,
                    ),
                    folder: FolderRef::Uid(FolderUid::from(target.folder_uid.as_str())),
                    overwrite: false,
                    message: format!("save {n}"),
                    user_id: user,
                };
                let at = Instant::now();
                match dashboards.save(save).await {
                    Ok(saved) => {
                        latencies.push(at.elapsed());
                        version = saved.version;
                    }
                    Err(err) => {
                        errors += 1;
                        report(format_args!("Dashboards::save: {err}"));
                    }
                }
            }
            (latencies, errors)
        }
    })
    .await;
    Ok(result)
}

/// One `UPDATE` of a dashboard-like row and one `INSERT` of a version-like row carrying the
/// same JSON, in one transaction through the same pool: what a save cannot do with less.
async fn raw_transactions(db: &Database, seconds: u64) -> anyhow::Result<SaveResult> {
    let (backend, id_column, text_type) = match db.backend() {
        Backend::Sqlite => (
            DbBackend::Sqlite,
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "TEXT",
        ),
        Backend::Postgres => (DbBackend::Postgres, "BIGSERIAL PRIMARY KEY", "TEXT"),
        Backend::Mysql => (
            DbBackend::MySql,
            "BIGINT AUTO_INCREMENT PRIMARY KEY",
            "LONGTEXT",
        ),
    };
    let conn = db.connection();
    conn.execute_unprepared(&format!(
        "CREATE TABLE bench_raw_row (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, \
         updated BIGINT NOT NULL, data {text_type} NOT NULL)"
    ))
    .await?;
    conn.execute_unprepared(&format!(
        "CREATE TABLE bench_raw_version (id {id_column}, row_id BIGINT NOT NULL, \
         version BIGINT NOT NULL, created BIGINT NOT NULL, data {text_type} NOT NULL)"
    ))
    .await?;
    for w in 0..WRITERS {
        conn.execute_unprepared(&format!(
            "INSERT INTO bench_raw_row (id, version, updated, data) VALUES ({w}, 1, 0, '{{}}')"
        ))
        .await?;
    }
    let (update, insert) = if backend == DbBackend::Postgres {
        (
            "UPDATE bench_raw_row SET data = $1, version = $2, updated = $3 WHERE id = $4 AND version = $5",
            "INSERT INTO bench_raw_version (row_id, version, created, data) VALUES ($1, $2, $3, $4)",
        )
    } else {
        (
            "UPDATE bench_raw_row SET data = ?, version = ?, updated = ? WHERE id = ? AND version = ?",
            "INSERT INTO bench_raw_version (row_id, version, created, data) VALUES (?, ?, ?, ?)",
        )
    };
    let result = concurrently("raw UPDATE + INSERT", seconds, |w, deadline| {
        let db = db.clone();
        async move {
            let mut version: i64 = 1;
            let (mut latencies, mut errors) = (Vec::new(), 0);
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let data = dashboard_json(
                    &format!("writer{w:02}"),
                    &title_of(w, n),
                    &["bench", "writer"],
                    version + 1,
                )
                .to_string();
                let at = Instant::now();
                let outcome = db
                    .transaction(|tx| {
                        let data = data.clone();
                        async move {
                            let now = tandem::storage::now_ms();
                            let updated = tx
                                .execute_raw(Statement::from_sql_and_values(
                                    backend,
                                    update,
                                    [
                                        SqlValue::from(data.clone()),
                                        SqlValue::from(version + 1),
                                        SqlValue::from(now),
                                        SqlValue::from(w as i64),
                                        SqlValue::from(version),
                                    ],
                                ))
                                .await
                                .map_err(tandem::storage::Error::from)?;
                            if updated.rows_affected() != 1 {
                                return Err(tandem::storage::Error::InvalidArgument(
                                    "version moved".to_owned(),
                                ));
                            }
                            tx.execute_raw(Statement::from_sql_and_values(
                                backend,
                                insert,
                                [
                                    SqlValue::from(w as i64),
                                    SqlValue::from(version + 1),
                                    SqlValue::from(now),
                                    SqlValue::from(data),
                                ],
                            ))
                            .await
                            .map_err(tandem::storage::Error::from)?;
                            Ok(())
                        }
                    })
                    .await;
                match outcome {
                    Ok(()) => {
                        latencies.push(at.elapsed());
                        version += 1;
                    }
                    Err(err) => {
                        errors += 1;
                        report(format_args!("raw transaction: {err}"));
                    }
                }
            }
            (latencies, errors)
        }
    })
    .await;
    Ok(result)
}

// ---- output

fn print_search(backend: &str, caller: &str, load: &str, results: &[KindResult]) {
    let mut out = format!(
        "\n{backend}: GET /api/search as {caller}, {DASHBOARDS} dashboards in {FOLDERS} folders, \
         {ROUNDS} sequential samples per kind after {WARMUP_ROUNDS} warm-up rounds; \
         the last column is the same query through `Dashboards::search` (no HTTP, no JSON) \
         (load average before: {load})\n\n\
         | query kind | hits (mean) | p50 | p99 | max | p99 ≤ 20 ms | direct p50 / p99 |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for result in results {
        let mut samples = result.samples.clone();
        samples.sort_unstable();
        let p99 = percentile(&samples, 0.99);
        let mut direct = result.direct.clone();
        direct.sort_unstable();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} / {} |\n",
            result.name,
            result.hits / samples.len().max(1),
            ms(percentile(&samples, 0.50)),
            ms(p99),
            ms(samples.last().copied().unwrap_or_default()),
            if p99 <= Duration::from_millis(20) {
                "yes"
            } else {
                "**no**"
            },
            ms(percentile(&direct, 0.50)),
            ms(percentile(&direct, 0.99)),
        ));
    }
    emit(&out);
}

fn print_saves(backend: &str, load: &str, seconds: u64, results: &[SaveResult]) {
    let raw = results
        .last()
        .map_or(1.0, |raw| rate(raw).max(f64::MIN_POSITIVE));
    let mut out = format!(
        "\n{backend}: saves, {WRITERS} concurrent writers each updating its own dashboard \
         (version CAS) for {seconds} s per row (load average before: {load})\n\n\
         | path | saves/s | p50 | p99 | errors | ratio to raw |\n\
         |---|---|---|---|---|---|\n"
    );
    for result in results {
        let mut samples = result.samples.clone();
        samples.sort_unstable();
        out.push_str(&format!(
            "| {} | {:.0} | {} | {} | {} | {:.2} |\n",
            result.name,
            rate(result),
            ms(percentile(&samples, 0.50)),
            ms(percentile(&samples, 0.99)),
            result.errors,
            rate(result) / raw,
        ));
    }
    emit(&out);
}

fn rate(result: &SaveResult) -> f64 {
    result.saves as f64 / result.elapsed.as_secs_f64()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// `/proc/loadavg`'s first three fields, or `?` where there is none.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// Results go to stdout, the only output a script should parse.
#[allow(clippy::print_stdout)]
fn emit(text: &str) {
    println!("{text}");
}

/// Progress goes to stderr.
#[allow(clippy::print_stderr)]
fn report(args: std::fmt::Arguments<'_>) {
    eprintln!("{args}");
}

// ---- plumbing

async fn drop_scratch(target: Option<&str>, scratch: &str) -> anyhow::Result<()> {
    match target {
        Some(url) => {
            let admin = Database::connect(&DatabaseSettings::from_url(url)?).await?;
            let force = if url.starts_with("postgres") {
                " WITH (FORCE)"
            } else {
                ""
            };
            admin
                .connection()
                .execute_unprepared(&format!("DROP DATABASE {scratch}{force}"))
                .await?;
            admin.close().await;
        }
        None => std::fs::remove_dir_all(std::env::temp_dir().join(scratch))?,
    }
    Ok(())
}

/// Logs in as the admin every new instance has and returns the session cookie.
async fn login(authority: &str) -> anyhow::Result<String> {
    login_as(authority, "admin", "admin").await
}

/// Logs in and returns the session cookie.
async fn login_as(authority: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let mut client = Client::connect(authority, "").await?;
    let body = json!({"user": user, "password": password}).to_string();
    let (status, headers, answer) = client.send("POST", "/login", Some(body)).await?;
    ensure!(status == 200, "login: {status} {}", text(&answer));
    for value in headers.get_all("set-cookie") {
        let value = value.to_str()?;
        if value.starts_with("grafana_session=") {
            return Ok(value.split(';').next().unwrap_or_default().to_owned());
        }
    }
    bail!("login set no grafana_session cookie")
}

/// One keep-alive HTTP/1.1 connection that sends a session cookie.
struct Client {
    authority: String,
    cookie: String,
    sender: SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
}

impl Client {
    async fn connect(authority: &str, cookie: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Client {
            authority: authority.to_owned(),
            cookie: cookie.to_owned(),
            sender,
            connection,
        })
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let (status, _, body) = self.send(method, path, body).await?;
        Ok((status, body))
    }

    async fn post_json(&mut self, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, answer) = self.request("POST", path, Some(body.to_string())).await?;
        ensure!(status == 200, "POST {path}: {status} {}", text(&answer));
        Ok(serde_json::from_slice(&answer)?)
    }

    async fn get_json(&mut self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.request("GET", path, None).await?;
        ensure!(status == 200, "GET {path}: {status} {}", text(&body));
        Ok(serde_json::from_slice(&body)?)
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<(u16, hyper::HeaderMap, Bytes)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority);
        if !self.cookie.is_empty() {
            request = request.header("cookie", &self.cookie);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, headers, body))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}
