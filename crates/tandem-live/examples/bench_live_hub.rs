//! In-process measurements of the Live hub: heap per idle connection, fan-out of one
//! publication to 10 000 subscribers spread over 3 hubs, and publications per second.
//!
//! ```text
//! cargo run --release -p tandem-live --features testkit --example bench_live_hub
//! ```
//!
//! Always runs on the local engine; also on Redis and PostgreSQL when
//! `TANDEM_TEST_REDIS_URL` / `TANDEM_TEST_POSTGRES_URL` are set (hubs on one process,
//! each with its own engine connections). The WebSocket itself (tokio-tungstenite's
//! buffers, the HTTP layer's tasks) is not part of these numbers. RSS deltas are only
//! meaningful for the first engine measured: later ones reuse memory freed before.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark prints its results and stops at the first failure"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_live::testkit::{EngineKind, TestEnv};
use tandem_live::{Channel, ClientInfo, Connection, Hub, OrgId, Outbox, Outgoing, Role};

/// Counts live heap bytes.
struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: usize = 10_000;

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

fn rss_bytes() -> isize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<isize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn client(user_id: i64) -> ClientInfo {
    ClientInfo {
        user_id,
        org_id: OrgId(1),
        role: Role::Viewer,
    }
}

/// Connects, sends `connect` (and a subscribe), and reads the replies.
async fn open(hub: &Hub, user: i64, channel: Option<&str>) -> (Connection, Outbox) {
    let (mut conn, mut outbox) = hub.connect(client(user)).unwrap();
    conn.handle_frame(r#"{"id":1,"connect":{}}"#).await;
    outbox.recv().await.unwrap();
    if let Some(channel) = channel {
        conn.handle_frame(&format!(
            r#"{{"id":2,"subscribe":{{"channel":"{channel}"}}}}"#
        ))
        .await;
        outbox.recv().await.unwrap();
    }
    (conn, outbox)
}

async fn memory(env: &TestEnv) {
    let mut settings = env.settings();
    settings.ping_interval = Duration::from_secs(3600);
    let hub = env.hub_with("mem", settings).await;
    // Warm up the maps so their first growth is not counted against the connections.
    drop(open(&hub, 0, Some("1/grafana/broadcast/warm")).await);
    let (heap0, rss0) = (heap(), rss_bytes());
    let mut idle = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        idle.push(open(&hub, i as i64, None).await);
    }
    let (heap1, rss1) = (heap(), rss_bytes());
    println!(
        "  idle connections: {} B heap/connection, {} B RSS/connection ({} connections)",
        (heap1 - heap0) / CONNECTIONS as isize,
        (rss1 - rss0) / CONNECTIONS as isize,
        CONNECTIONS
    );
    drop(idle);
    let (heap0, rss0) = (heap(), rss_bytes());
    let mut subscribed = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        subscribed.push(open(&hub, i as i64, Some("1/grafana/broadcast/mem")).await);
    }
    let (heap1, rss1) = (heap(), rss_bytes());
    println!(
        "  connections with one subscription (history channel): {} B heap/connection, {} B RSS/connection",
        (heap1 - heap0) / CONNECTIONS as isize,
        (rss1 - rss0) / CONNECTIONS as isize
    );
    drop(subscribed);
    hub.shutdown().await;
}

async fn fan_out(env: &TestEnv) {
    let hubs = [
        env.hub("f1").await,
        env.hub("f2").await,
        env.hub("f3").await,
    ];
    let channel = "1/grafana/broadcast/fanout";
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        clients.push(open(&hubs[i % 3], i as i64, Some(channel)).await);
    }
    let target = Channel::parse_wire(channel).unwrap();
    let mut times = Vec::new();
    for round in 0..5 {
        let data = serde_json::value::to_raw_value(&json!({"round": round})).unwrap();
        let start = Instant::now();
        hubs[round % 3].publish(&target, &data).await.unwrap();
        for (_, outbox) in &mut clients {
            match outbox.recv().await {
                Some(Outgoing::Text(_)) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "  fan-out of one publication to {CONNECTIONS} subscribers on 3 hubs: median {:?}, max {:?} (to the last delivery)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    drop(clients);
    for hub in hubs {
        hub.shutdown().await;
    }
}

async fn throughput(env: &TestEnv) {
    // Readers that keep up, but may lag the publisher by a burst.
    let mut settings = env.settings();
    settings.client_queue_size = 10_000;
    settings.client_queue_max_bytes = 64 * 1024 * 1024;
    let hubs = [
        env.hub_with("t1", settings.clone()).await,
        env.hub_with("t2", settings.clone()).await,
        env.hub_with("t3", settings).await,
    ];
    for (channel, label) in [
        ("1/grafana/dashboard/uid/rate", "without history"),
        ("1/grafana/broadcast/rate", "with history"),
    ] {
        let mut readers = Vec::new();
        for (i, hub) in hubs.iter().enumerate() {
            readers.push(open(hub, i as i64, Some(channel)).await);
        }
        let target = Channel::parse_wire(channel).unwrap();
        let data =
            serde_json::value::to_raw_value(&json!({"uid": "rate", "action": "saved"})).unwrap();
        let total = 5_000;
        let start = Instant::now();
        // One publisher on one hub; each hub's reader drains as it goes.
        let drain = readers
            .into_iter()
            .map(|(conn, mut outbox)| {
                tokio::spawn(async move {
                    let _conn = conn;
                    let mut seen = 0;
                    while seen < total {
                        match outbox.recv().await {
                            Some(Outgoing::Text(text)) => {
                                seen += text.matches("\"pub\"").count();
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                })
            })
            .collect::<Vec<_>>();
        for _ in 0..total {
            hubs[0].publish(&target, &data).await.unwrap();
        }
        let published = start.elapsed();
        for task in drain {
            task.await.unwrap();
        }
        let delivered = start.elapsed();
        println!(
            "  publications/s from one hub ({label}): {:.0} published, {:.0} delivered to all 3 hubs",
            total as f64 / published.as_secs_f64(),
            total as f64 / delivered.as_secs_f64()
        );
    }
    for hub in hubs {
        hub.shutdown().await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for kind in [EngineKind::Local, EngineKind::Redis, EngineKind::Postgres] {
        let Some(env) = TestEnv::create(kind).await else {
            continue;
        };
        println!("engine {kind:?}:");
        memory(&env).await;
        fan_out(&env).await;
        throughput(&env).await;
    }
}
