//! Grafana Live across real `tandem-server` processes, once per HA engine: Redis (on a
//! SQLite database shared by the processes) and PostgreSQL's own (on PostgreSQL).
//!
//! - A publication made on any of three instances reaches every subscriber on all three,
//!   exactly once, in order; SIGKILL the instance running the testdata stream producer and
//!   its subscribers reconnect to another instance and recover what they missed
//!   (`recovered: true`), while the producer moves to a survivor.
//! - The engine itself (a private `redis-server`, or a private PostgreSQL cluster holding
//!   Tandem's database) is killed and started again under a steady publish load: both
//!   instances report `"live":"degraded"`, keep serving their own subscribers, and resume
//!   by themselves, telling their subscribers to recover (unsubscribe 2500); no process is
//!   restarted and no client connection is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tandem::http::testkit::http::{self, ADMIN};
use tandem::http::testkit::ws::LiveClient;
use tandem::http::testkit::{ServerProcess, database_env, eventually};
use tandem::storage::Backend;
use tandem::storage::testkit::{REDIS_URL_ENV, TestDatabase, service_url};
use tandem_live::testkit::{PrivatePostgres, PrivateRedis};

/// How long a process may take to become healthy: a liveness bound, not a target.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// The bound on every other wait.
const WAIT: Duration = Duration::from_secs(20);
const BROADCAST: &str = "1/grafana/broadcast/ha";
const STREAM: &str = "1/plugin/testdata/random-2s-stream";

#[derive(Clone, Copy, Debug)]
enum Engine {
    Redis,
    Postgres,
}

/// Spawns instance `id` with `env` plus short Live timers (producer leases of 1 s).
fn spawn(id: &str, env: &[(String, String)]) -> ServerProcess {
    let mut env = env.to_vec();
    for (key, value) in [
        ("GF_CLUSTER_INSTANCE_ID", id),
        ("GF_CLUSTER_LIVE_PRODUCER_LEASE_TTL", "1s"),
        ("GF_LIVE_MAX_CONNECTIONS", "-1"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    ServerProcess::spawn(&env)
}

async fn start(ids: &[&str], env: &[(String, String)]) -> Vec<ServerProcess> {
    let mut processes: Vec<ServerProcess> = ids.iter().map(|id| spawn(id, env)).collect();
    for process in &mut processes {
        process.wait_healthy(START_DEADLINE).await;
    }
    processes
}

fn engine_env(engine: Engine, redis_address: &str, prefix: &str) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "GF_LIVE_HA_ENGINE".to_owned(),
            match engine {
                Engine::Redis => "redis",
                Engine::Postgres => "postgres",
            }
            .to_owned(),
        ),
        ("GF_LIVE_HA_PREFIX".to_owned(), prefix.to_owned()),
    ];
    if let Engine::Redis = engine {
        env.push((
            "GF_LIVE_HA_ENGINE_ADDRESS".to_owned(),
            redis_address.to_owned(),
        ));
    }
    env
}

/// A prefix no other test run shares.
fn prefix() -> String {
    format!("liveha{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
}

async fn connect(url: &str) -> LiveClient {
    LiveClient::connect(url, &[ADMIN]).await
}

/// A subscriber of [`BROADCAST`] and the stream position it has seen.
struct Subscriber {
    client: LiveClient,
    instance: usize,
    offset: u64,
    epoch: String,
}

impl Subscriber {
    async fn subscribe(url: &str, instance: usize) -> Subscriber {
        let mut client = connect(url).await;
        let reply = client.subscribe(BROADCAST).await;
        let result = &reply["subscribe"];
        assert_eq!(result["recoverable"], true, "{reply}");
        Subscriber {
            instance,
            offset: result["offset"].as_u64().unwrap_or(0),
            epoch: result["epoch"].as_str().expect("an epoch").to_owned(),
            client,
        }
    }

    /// The next publication must be `{"n": n}` at the next offset.
    async fn expect(&mut self, n: u64) {
        let publication = self.client.publication(BROADCAST).await;
        self.check(&publication, n);
    }

    fn check(&mut self, publication: &Value, n: u64) {
        assert_eq!(
            publication["data"],
            json!({"n": n}),
            "a subscriber on instance {} expected n={n} next, got {publication}",
            self.instance
        );
        assert_eq!(
            publication["offset"].as_u64(),
            Some(self.offset + 1),
            "offset of n={n} on instance {}: {publication}",
            self.instance
        );
        self.offset += 1;
    }
}

/// Publishes `{"n": n}` on [`BROADCAST`]: over the WebSocket of `publisher` when `ws`,
/// through `POST /api/live/publish` of `url` otherwise.
async fn publish(publisher: &mut LiveClient, url: &str, n: u64, ws: bool) {
    if ws {
        let reply = publisher
            .command("publish", json!({"channel": BROADCAST, "data": {"n": n}}))
            .await;
        assert_eq!(reply["publish"], json!({}), "{reply}");
    } else {
        let body = json!({"channel": "grafana/broadcast/ha", "data": {"n": n}}).to_string();
        let headers = [ADMIN, ("content-type", "application/json")];
        let response = http::request("POST", &format!("{url}/api/live/publish"), &headers, body)
            .await
            .expect("POST /api/live/publish");
        assert_eq!(response.status, 200, "{}", response.text());
    }
}

/// `tandem_live_producers` of one instance.
async fn producers(url: &str) -> Option<u64> {
    let response = http::request("GET", &format!("{url}/metrics"), &[], "")
        .await
        .ok()?;
    response
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("tandem_live_producers "))
        .and_then(|value| value.trim().parse().ok())
}

/// The time (ms) of the newest point of a testdata frame.
fn frame_time(frame: &Value) -> i64 {
    frame["data"]["data"]["values"][0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("not a testdata frame: {frame}"))
}

async fn live_health(url: &str) -> String {
    match http::request("GET", &format!("{url}/api/health"), &[], "").await {
        Ok(response) => response.json()["live"].as_str().unwrap_or("").to_owned(),
        Err(_) => String::new(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn fan_out_kill_and_recover(engine: Engine, test: TestDatabase, redis_address: &str) {
    let prefix = prefix();
    let mut env = database_env(&test.settings());
    env.extend(engine_env(engine, redis_address, &prefix));
    let mut processes = start(&["a", "b", "c"], &env).await;
    let urls: Vec<String> = processes.iter().map(ServerProcess::url).collect();

    let mut subscribers = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        for _ in 0..2 {
            subscribers.push(Subscriber::subscribe(url, i).await);
        }
    }
    let mut streams = Vec::new();
    for url in &urls {
        let mut client = connect(url).await;
        let reply = client.subscribe(STREAM).await;
        assert!(reply["subscribe"].is_object(), "{reply}");
        streams.push(client);
    }
    let mut publishers = Vec::new();
    for url in &urls {
        publishers.push(connect(url).await);
    }

    // 30 publications, each through the next instance in turn, over the WebSocket or HTTP.
    const ROUND: u64 = 30;
    for n in 0..ROUND {
        let i = (n % 3) as usize;
        publish(&mut publishers[i], &urls[i], n, n % 2 == 0).await;
    }
    for subscriber in &mut subscribers {
        for n in 0..ROUND {
            subscriber.expect(n).await;
        }
    }

    // One producer for the whole cluster, and its points reach every instance.
    eventually(
        "exactly one instance runs the testdata producer",
        WAIT,
        || {
            let urls = urls.clone();
            async move {
                let mut counts = Vec::new();
                for url in &urls {
                    counts.push(producers(url).await.unwrap_or(99));
                }
                counts.iter().sum::<u64>() == 1
            }
        },
    )
    .await;
    let mut producer = None;
    for (i, url) in urls.iter().enumerate() {
        if producers(url).await == Some(1) {
            producer = Some(i);
        }
    }
    let producer = producer.expect("a producing instance");
    for stream in &mut streams {
        let frame = stream.publication(STREAM).await;
        frame_time(&frame);
    }

    // SIGKILL the producer's instance: its subscribers lose their connections.
    processes[producer].kill().await;
    let killed_at = now_ms();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != producer).collect();
    let mut moved = Vec::new();
    let mut stayed = Vec::new();
    for subscriber in subscribers {
        if subscriber.instance == producer {
            moved.push(subscriber);
        } else {
            stayed.push(subscriber);
        }
    }
    for subscriber in &mut moved {
        let (code, _) = subscriber.client.closed().await;
        assert_ne!(code, 1000, "a SIGKILL cannot close cleanly");
    }

    // Five publications while they are away, through the survivors.
    for n in ROUND..ROUND + 5 {
        let i = survivors[(n % 2) as usize];
        publish(&mut publishers[i], &urls[i], n, n % 2 == 1).await;
    }
    // They reconnect to a survivor and recover exactly what they missed.
    for (k, subscriber) in moved.iter_mut().enumerate() {
        let target = survivors[k % 2];
        subscriber.client = connect(&urls[target]).await;
        subscriber.instance = target;
        let reply = subscriber
            .client
            .command(
                "subscribe",
                json!({"channel": BROADCAST, "recover": true, "offset": subscriber.offset, "epoch": subscriber.epoch}),
            )
            .await;
        let result = &reply["subscribe"];
        assert_eq!(result["recovered"], true, "{reply}");
        assert_eq!(result["was_recovering"], true, "{reply}");
        let recovered = result["publications"].as_array().expect("publications");
        assert_eq!(recovered.len(), 5, "{reply}");
        for (publication, n) in recovered.iter().zip(ROUND..) {
            subscriber.check(publication, n);
        }
    }
    for subscriber in &mut stayed {
        for n in ROUND..ROUND + 5 {
            subscriber.expect(n).await;
        }
    }
    // The next publication reaches everyone once: nothing was duplicated on the way.
    let last = ROUND + 5;
    let i = survivors[0];
    publish(&mut publishers[i], &urls[i], last, true).await;
    for subscriber in moved.iter_mut().chain(stayed.iter_mut()) {
        subscriber.expect(last).await;
    }

    // The producer moved: points made after the kill reach both survivors' subscribers.
    for &i in &survivors {
        let stream = &mut streams[i];
        tokio::time::timeout(WAIT, async {
            while frame_time(&stream.publication(STREAM).await) <= killed_at {}
        })
        .await
        .unwrap_or_else(|_| panic!("no testdata point after the kill on instance {i}"));
    }
    let mut running = 0;
    for &i in &survivors {
        running += producers(&urls[i]).await.unwrap_or(0);
    }
    assert_eq!(running, 1, "one survivor produces");
    // Stopped before the keys are deleted, so that none is written again afterwards.
    for &i in &survivors {
        processes[i].kill().await;
    }
    if let Engine::Redis = engine {
        forget_keys(redis_address, &prefix).await;
    }
}

/// Deletes the keys this test left in the shared Redis (history and presence expire, but
/// a stream's offset and epoch stay for a day).
async fn forget_keys(redis_url: &str, prefix: &str) {
    let client = redis::Client::open(redis_url).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}.*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fan_out_over_three_processes_and_recovery_after_sigkill() {
    let Some(redis) = service_url(REDIS_URL_ENV, "Redis") else {
        return;
    };
    let test = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    fan_out_kill_and_recover(Engine::Redis, test, &redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fan_out_over_three_processes_and_recovery_after_sigkill() {
    let Some(test) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    fan_out_kill_and_recover(Engine::Postgres, test, "").await;
}

/// The engine (or the database holding it) that the restart test kills and restarts.
enum PrivateEngine {
    Redis(PrivateRedis),
    Postgres(PrivatePostgres),
}

impl PrivateEngine {
    fn stop(&mut self) {
        match self {
            PrivateEngine::Redis(redis) => redis.stop(),
            PrivateEngine::Postgres(pg) => pg.stop(),
        }
    }

    fn restart(&mut self) {
        match self {
            PrivateEngine::Redis(redis) => redis.restart(),
            PrivateEngine::Postgres(pg) => pg.restart(),
        }
    }
}

/// Publishes `{"n": …}` every 50 ms over a connection to `url` until stopped, counting the
/// replies. It runs on a thread and runtime of its own, so the test's blocking calls (the
/// private servers' stop and restart) never hold it up.
fn steady_publisher(
    url: String,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let mut client = connect(&url).await;
            let mut n = 1_000_000u64;
            while !stop.load(Ordering::Acquire) {
                let reply = client
                    .command("publish", json!({"channel": BROADCAST, "data": {"n": n}}))
                    .await;
                assert_eq!(reply["publish"], json!({}), "{reply}");
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    })
}

/// Reads `client`'s pushes until `count` publications on [`BROADCAST`] without a history
/// offset (served locally while the engine is away) have arrived.
async fn local_publications(client: &mut LiveClient, count: usize) {
    tokio::time::timeout(WAIT, async {
        let mut seen = 0;
        while seen < count {
            let publication = client.publication(BROADCAST).await;
            if publication["offset"].as_u64().unwrap_or(0) == 0 {
                seen += 1;
            }
        }
    })
    .await
    .expect("local publications while the engine is down");
}

/// Reads `client`'s pushes until the server unsubscribes it from [`BROADCAST`]; the code.
async fn unsubscribed(client: &mut LiveClient) -> i64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let push = client.push().await;
            if push["channel"] == BROADCAST && push.get("unsubscribe").is_some() {
                return push["unsubscribe"]["code"].as_i64().unwrap_or(0);
            }
        }
    })
    .await
    .expect("an unsubscribe push after the engine came back")
}

/// Resubscribes with recovery and returns the reply; then waits for a publication with an
/// offset (one that crossed the engine again).
async fn resubscribe_and_resume(client: &mut LiveClient) -> Value {
    let reply = client
        .command(
            "subscribe",
            json!({"channel": BROADCAST, "recover": true, "offset": 1, "epoch": "stale"}),
        )
        .await;
    assert!(reply["subscribe"].is_object(), "{reply}");
    tokio::time::timeout(WAIT, async {
        loop {
            let publication = client.publication(BROADCAST).await;
            if publication["offset"].as_u64().unwrap_or(0) > 0 {
                return;
            }
        }
    })
    .await
    .expect("publications through the engine again");
    reply
}

async fn engine_restart_under_load(engine: Engine) {
    let (mut private, env) = match engine {
        Engine::Redis => {
            let redis = PrivateRedis::start();
            let test = TestDatabase::create(Backend::Sqlite)
                .await
                .expect("SQLite is always available");
            let mut env = database_env(&test.settings());
            env.extend(engine_env(engine, &redis.address(), &prefix()));
            // The SQLite file outlives the processes: keep the guard until the end.
            (PrivateEngine::Redis(redis), (env, Some(test)))
        }
        Engine::Postgres => {
            let pg = PrivatePostgres::start();
            let mut env = vec![
                ("GF_DATABASE_TYPE".to_owned(), "postgres".to_owned()),
                ("GF_DATABASE_URL".to_owned(), pg.url()),
            ];
            env.extend(engine_env(engine, "", &prefix()));
            (PrivateEngine::Postgres(pg), (env, None))
        }
    };
    let (env, _sqlite) = env;
    let processes = start(&["a", "b"], &env).await;
    let (a, b) = (processes[0].url(), processes[1].url());
    let mut on_a = connect(&a).await;
    on_a.subscribe(BROADCAST).await;
    let mut on_b = connect(&b).await;
    on_b.subscribe(BROADCAST).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let publisher = steady_publisher(a.clone(), stop.clone(), sent.clone());
    // Flowing across instances before the outage.
    let first = on_b.publication(BROADCAST).await;
    assert!(first["offset"].as_u64().unwrap_or(0) > 0, "{first}");

    private.stop();
    for url in [&a, &b] {
        eventually("live reports degraded", WAIT, || {
            let url = url.clone();
            async move { live_health(&url).await == "degraded" }
        })
        .await;
    }
    // Still serving its own subscribers, under the steady load.
    local_publications(&mut on_a, 10).await;

    private.restart();
    for url in [&a, &b] {
        eventually("live reports ok again", WAIT, || {
            let url = url.clone();
            async move { live_health(&url).await == "ok" }
        })
        .await;
    }
    // Both subscribers are told that their stream has a gap, and resume after a resubscribe.
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(unsubscribed(client).await, 2500, "insufficient state");
        let reply = resubscribe_and_resume(client).await;
        assert_eq!(reply["subscribe"]["was_recovering"], true, "{reply}");
    }
    stop.store(true, Ordering::Release);
    tokio::task::spawn_blocking(move || publisher.join())
        .await
        .expect("join the publisher")
        .expect("every publication was answered, the connection kept throughout");
    assert!(
        sent.load(Ordering::Relaxed) >= 12,
        "published before, during and after"
    );
    for url in [&a, &b] {
        let metrics = http::request("GET", &format!("{url}/metrics"), &[], "")
            .await
            .expect("GET /metrics")
            .text();
        let losses = metrics
            .lines()
            .find_map(|line| line.strip_prefix("tandem_live_engine_losses_total "))
            .and_then(|value| value.trim().parse::<u64>().ok());
        assert!(losses >= Some(1), "{url}: engine losses {losses:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_degrades_and_resumes_without_a_restart() {
    engine_restart_under_load(Engine::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load_degrades_and_resumes_without_a_restart() {
    engine_restart_under_load(Engine::Postgres).await;
}
