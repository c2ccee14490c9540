//! Load generator for Grafana Live against real release `tandem-server` processes, over
//! WebSockets (tokio-tungstenite) speaking Centrifuge's JSON protocol.
//!
//! ```sh
//! scripts/bench-live.sh        # raises `ulimit -n`, builds, sets the service URLs
//! ```
//!
//! Needs `TANDEM_TEST_REDIS_URL` and `TANDEM_TEST_POSTGRES_URL` (the PostgreSQL engine
//! runs on a fresh database there); `[live] max_connections = -1` and `[server]
//! max_connections = 15000` on every instance.
//!
//! 1. Memory: RSS of one instance (local engine) before and after 10 000 idle connections
//!    (upgraded and `connect`ed), per connection.
//! 2. Latency: a subscriber on instance B, a publisher on A, one publication at a time;
//!    send to delivery, p50/p99, through Redis and through PostgreSQL; interleaved with a
//!    raw Redis `PUBLISH` → `SUBSCRIBE` round trip (and a raw `NOTIFY` → `LISTEN` one) in
//!    the same run.
//! 3. Fan-out: 10 000 subscribers spread over 3 instances (Redis), one publication; time
//!    from sending it to its last delivery.
//! 4. Throughput: publishers on one instance (Redis, a history channel) as fast as the
//!    replies come, with a subscriber on another instance counting deliveries.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a benchmark prints its results and stops at the first failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tandem::http::testkit::{ServerProcess, database_env};
use tandem::storage::Backend;
use tandem::storage::testkit::TestDatabase;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const AUTH: &str = "Basic YWRtaW46YWRtaW4=";
const IDLE: usize = 10_000;
const FAN_OUT: usize = 10_000;
const SAMPLES: usize = 1_000;
const THROUGHPUT_SECONDS: u64 = 10;

#[tokio::main]
async fn main() {
    let redis = std::env::var("TANDEM_TEST_REDIS_URL").expect("TANDEM_TEST_REDIS_URL");
    // Sections to run (memory, latency, fanout, throughput); all by default.
    let only: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run("memory") {
        println!("== memory per idle connection ({IDLE}, one instance, local engine)");
        memory().await;
    }
    if run("latency") {
        println!("\n== cross-instance latency, {SAMPLES} publications one at a time");
        latency_redis(&redis).await;
        latency_postgres().await;
    }
    if run("fanout") {
        println!(
            "\n== fan-out of one publication to {FAN_OUT} subscribers over 3 instances (redis)"
        );
        fan_out(&redis).await;
    }
    if run("throughput") {
        println!("\n== publications per second on one instance (redis, history channel)");
        throughput(&redis).await;
    }
}

fn spawn(db: &TestDatabase, id: &str, extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = database_env(&db.settings());
    env.push(("GF_CLUSTER_INSTANCE_ID".into(), id.into()));
    env.push(("GF_LIVE_MAX_CONNECTIONS".into(), "-1".into()));
    // HTTP connections served at once (4096 by default): every WebSocket holds one.
    env.push(("GF_SERVER_MAX_CONNECTIONS".into(), "15000".into()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    ServerProcess::spawn(&env)
}

async fn start(db: &TestDatabase, n: usize, extra: &[(&str, &str)]) -> Vec<ServerProcess> {
    let mut processes: Vec<_> = (0..n)
        .map(|i| spawn(db, &format!("bench-{i}"), extra))
        .collect();
    for process in &mut processes {
        process.wait_healthy(Duration::from_secs(60)).await;
    }
    processes
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Opens a connection and sends `connect`, waiting for its reply.
async fn open(url: &str) -> Ws {
    let mut request = format!("{}/api/live/ws", url.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", AUTH.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    command(&mut ws, 1, "connect", json!({})).await;
    ws
}

/// Sends a command and reads until its reply.
async fn command(ws: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    let mut cmd = json!({ "id": id });
    cmd[method] = params;
    ws.send(Message::Text(cmd.to_string().into()))
        .await
        .unwrap();
    loop {
        for value in read(ws).await {
            if value["id"] == id {
                return value;
            }
        }
    }
}

/// The JSON objects of the next text frame (pings answered).
async fn read(ws: &mut Ws) -> Vec<Value> {
    loop {
        match ws.next().await.expect("open").expect("a frame") {
            Message::Text(text) => {
                let values: Vec<Value> = text
                    .as_str()
                    .split('\n')
                    .filter(|line| !line.trim().is_empty())
                    .map(|line| serde_json::from_str(line).unwrap())
                    .collect();
                if values.iter().any(|v| *v == json!({})) {
                    ws.send(Message::Text("{}".into())).await.unwrap();
                }
                return values;
            }
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

async fn subscribed(url: &str, channel: &str) -> Ws {
    let mut ws = open(url).await;
    let reply = command(&mut ws, 2, "subscribe", json!({ "channel": channel })).await;
    assert!(reply["subscribe"].is_object(), "{reply}");
    ws
}

/// Waits for the next publication on `ws`; its data.
async fn next_publication(ws: &mut Ws) -> Value {
    loop {
        for value in read(ws).await {
            if value["push"]["pub"].is_object() {
                return value["push"]["pub"]["data"].clone();
            }
        }
    }
}

/// Opens `n` connections, `concurrency` at a time, each made by `make`.
async fn many<F, Fut>(n: usize, concurrency: usize, make: F) -> Vec<Ws>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Ws>,
{
    futures_util::stream::iter(0..n)
        .map(make)
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn memory() {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let process = start(&db, 1, &[]).await.pop().unwrap();
    let url = process.url();
    // Warm up: the runtime's workers, the allocator's arenas, the first buffers.
    let warm = many(200, 50, |_| open(&url)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(process.pid());
    let started = Instant::now();
    let idle = many(IDLE, 100, |_| open(&url)).await;
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(process.pid());
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / IDLE as f64;
    println!(
        "RSS before {before} KiB, after {IDLE} connections {after} KiB: {:.1} KB per connection (target <= 10 KB); opened in {:.1} s",
        per / 1000.0,
        opened.as_secs_f64()
    );
    drop(idle);
    drop(warm);
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

/// One publication from `publisher` to `subscriber`, timed.
async fn one(publisher: &mut Ws, subscriber: &mut Ws, id: u64, channel: &str) -> Duration {
    let started = Instant::now();
    let cmd = json!({"id": id, "publish": {"channel": channel, "data": {"i": id}}});
    publisher
        .send(Message::Text(cmd.to_string().into()))
        .await
        .unwrap();
    let data = next_publication(subscriber).await;
    let elapsed = started.elapsed();
    assert_eq!(data["i"], id);
    // The publish reply.
    loop {
        if read(publisher).await.iter().any(|v| v["id"] == id) {
            break;
        }
    }
    elapsed
}

fn report(name: &str, samples: &mut [Duration]) -> (f64, f64) {
    let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
    println!("{name}: p50 {p50:.3} ms, p99 {p99:.3} ms");
    (p50, p99)
}

async fn latency_redis(redis_url: &str) {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let prefix = format!("benchlive{}", std::process::id());
    let extra = [
        ("GF_LIVE_HA_ENGINE", "redis"),
        ("GF_LIVE_HA_ENGINE_ADDRESS", redis_url),
        ("GF_LIVE_HA_PREFIX", prefix.as_str()),
    ];
    let processes = start(&db, 2, &extra).await;
    let channel = "1/grafana/broadcast/latency";
    let mut subscriber = subscribed(&processes[1].url(), channel).await;
    let mut publisher = open(&processes[0].url()).await;

    let client = redis::Client::open(redis_url).unwrap();
    let mut commands = client.get_multiplexed_async_connection().await.unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    let raw_channel = format!("{prefix}.raw");
    pubsub.subscribe(&raw_channel).await.unwrap();
    let mut messages = pubsub.on_message();

    let mut tandem = Vec::with_capacity(SAMPLES);
    let mut raw = Vec::with_capacity(SAMPLES);
    for i in 0..(SAMPLES + 50) as u64 {
        let t = one(&mut publisher, &mut subscriber, 100 + i, channel).await;
        let started = Instant::now();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&raw_channel)
            .arg(format!("{{\"i\":{i}}}"))
            .query_async(&mut commands)
            .await
            .unwrap();
        messages.next().await.unwrap();
        let r = started.elapsed();
        if i >= 50 {
            tandem.push(t);
            raw.push(r);
        }
    }
    let (_, tandem_p99) = report(
        "tandem through redis (A -> redis -> B, 2 WebSocket hops)",
        &mut tandem,
    );
    let (_, raw_p99) = report("raw redis PUBLISH -> SUBSCRIBE", &mut raw);
    println!(
        "p99 ratio {:.2}; target p99 <= 2 x raw + 1 ms = {:.3} ms: {}",
        tandem_p99 / raw_p99,
        2.0 * raw_p99 + 1.0,
        if tandem_p99 <= 2.0 * raw_p99 + 1.0 {
            "met"
        } else {
            "missed"
        }
    );
    drop(messages);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}.*"))
        .query_async(&mut commands)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query_async(&mut commands).await;
    }
}

async fn latency_postgres() {
    let Some(db) = TestDatabase::create(Backend::Postgres).await else {
        println!("postgres: skipped (TANDEM_TEST_POSTGRES_URL unset)");
        return;
    };
    let processes = start(&db, 2, &[("GF_LIVE_HA_ENGINE", "postgres")]).await;
    let channel = "1/grafana/broadcast/latency";
    let mut subscriber = subscribed(&processes[1].url(), channel).await;
    let mut publisher = open(&processes[0].url()).await;

    let url = match &db.settings().location {
        tandem::storage::Location::Url(url) => url.clone(),
        tandem::storage::Location::SqliteFile(_) => unreachable!(),
    };
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("bench_raw").await.unwrap();
    let pool = sqlx::postgres::PgPool::connect(&url).await.unwrap();

    let mut tandem = Vec::with_capacity(SAMPLES);
    let mut raw = Vec::with_capacity(SAMPLES);
    for i in 0..(SAMPLES + 50) as u64 {
        let t = one(&mut publisher, &mut subscriber, 100 + i, channel).await;
        let started = Instant::now();
        sqlx::query("SELECT pg_notify('bench_raw', $1)")
            .bind(format!("{{\"i\":{i}}}"))
            .execute(&pool)
            .await
            .unwrap();
        listener.recv().await.unwrap();
        let r = started.elapsed();
        if i >= 50 {
            tandem.push(t);
            raw.push(r);
        }
    }
    let (_, tandem_p99) = report(
        "tandem through postgres (history row + NOTIFY in one transaction)",
        &mut tandem,
    );
    let (_, raw_p99) = report("raw postgres NOTIFY -> LISTEN", &mut raw);
    println!("p99 ratio {:.2}", tandem_p99 / raw_p99);
    pool.close().await;
}

async fn fan_out(redis_url: &str) {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let prefix = format!("benchfan{}", std::process::id());
    let extra = [
        ("GF_LIVE_HA_ENGINE", "redis"),
        ("GF_LIVE_HA_ENGINE_ADDRESS", redis_url),
        ("GF_LIVE_HA_PREFIX", prefix.as_str()),
    ];
    let processes = start(&db, 3, &extra).await;
    let urls: Vec<String> = processes.iter().map(ServerProcess::url).collect();
    let channel = "1/grafana/broadcast/fan";
    let subscribers = many(FAN_OUT, 100, |i| {
        let url = urls[i % 3].clone();
        async move { subscribed(&url, channel).await }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut publisher = open(&urls[0]).await;
    let started = Instant::now();
    let waiting: Vec<_> = subscribers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                next_publication(&mut ws).await;
                let at = Instant::now();
                (at, ws)
            })
        })
        .collect();
    let cmd = json!({"id": 7, "publish": {"channel": channel, "data": {"fan": true}}});
    publisher
        .send(Message::Text(cmd.to_string().into()))
        .await
        .unwrap();
    let mut deliveries = Vec::with_capacity(FAN_OUT);
    for task in waiting {
        let (at, ws) = task.await.unwrap();
        deliveries.push(at.duration_since(started));
        drop(ws);
    }
    deliveries.sort();
    println!(
        "{} deliveries: first {:.1} ms, median {:.1} ms, last {:.1} ms after the publish was sent",
        deliveries.len(),
        deliveries[0].as_secs_f64() * 1000.0,
        deliveries[deliveries.len() / 2].as_secs_f64() * 1000.0,
        deliveries[deliveries.len() - 1].as_secs_f64() * 1000.0
    );
}

async fn throughput(redis_url: &str) {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let prefix = format!("benchthr{}", std::process::id());
    let extra = [
        ("GF_LIVE_HA_ENGINE", "redis"),
        ("GF_LIVE_HA_ENGINE_ADDRESS", redis_url),
        ("GF_LIVE_HA_PREFIX", prefix.as_str()),
    ];
    let processes = start(&db, 2, &extra).await;
    let (a, b) = (processes[0].url(), processes[1].url());
    let channel = "1/grafana/broadcast/throughput";
    let received = Arc::new(AtomicU64::new(0));
    let mut subscriber = subscribed(&b, channel).await;
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        loop {
            let values = read(&mut subscriber).await;
            let n = values
                .iter()
                .filter(|v| v["push"]["pub"].is_object())
                .count();
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    const PUBLISHERS: usize = 8;
    const WINDOW: u64 = 16;
    let deadline = Instant::now() + Duration::from_secs(THROUGHPUT_SECONDS);
    let mut tasks = Vec::new();
    for _ in 0..PUBLISHERS {
        let url = a.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = open(&url).await;
            let (mut sent, mut answered, mut errors) = (0u64, 0u64, 0u64);
            let count = |values: Vec<Value>, answered: &mut u64, errors: &mut u64| {
                for value in values.iter().filter(|v| v.get("id").is_some()) {
                    *answered += 1;
                    if value.get("error").is_some() {
                        if *errors == 0 {
                            eprintln!("a publish failed: {value}");
                        }
                        *errors += 1;
                    }
                }
            };
            while Instant::now() < deadline {
                while sent - answered < WINDOW {
                    sent += 1;
                    let cmd = json!({"id": 10 + sent, "publish": {"channel": channel, "data": {"n": sent}}});
                    ws.send(Message::Text(cmd.to_string().into())).await.unwrap();
                }
                let values = read(&mut ws).await;
                count(values, &mut answered, &mut errors);
            }
            while answered < sent {
                let values = read(&mut ws).await;
                count(values, &mut answered, &mut errors);
            }
            (answered - errors, errors)
        }));
    }
    let started = Instant::now();
    let (mut acked, mut failed) = (0, 0);
    for task in tasks {
        let (ok, errors) = task.await.unwrap();
        acked += ok;
        failed += errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = received.load(Ordering::Relaxed);
    reader.abort();
    println!(
        "{acked} publications accepted in {elapsed:.1} s ({failed} refused): {:.0} per second on one instance ({PUBLISHERS} connections, {WINDOW} in flight each); {delivered} delivered to the subscriber on the other instance",
        acked as f64 / elapsed
    );
}
