//! The mixed load, all through nginx: signed-in users reading and rotating their session
//! tokens, editors saving dashboards with compare-and-swap on `version`, a publisher on a
//! broadcast channel with Live subscribers on it and on a dashboard's channel. Each part
//! records what was acknowledged, so the checks can prove that nothing acknowledged was lost.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tandem::http::testkit::http::{self, HttpResponse};
use tandem::http::testkit::ws::{LiveClient, Read};
use tokio::task::JoinHandle;

/// A request not answered within this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const BROADCAST: &str = "grafana/broadcast/faults";
/// The dashboard whose Live channel a subscriber watches (the first editor's).
pub(crate) const WATCHED: &str = "fault-w0";

/// What the requests of one phase met.
#[derive(Default, Clone)]
pub(crate) struct Stats {
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    /// Answers 401 to a session that was never logged out: forced logouts.
    pub(crate) logouts: u64,
    pub(crate) max_latency: Duration,
    pub(crate) last_failure: Option<Instant>,
    /// Failures by what they were (`GET /api/search: 502`), for the report.
    pub(crate) kinds: BTreeMap<String, u64>,
}

impl Stats {
    fn record(&mut self, what: &str, outcome: &Result<HttpResponse, String>, took: Duration) {
        self.requests += 1;
        self.max_latency = self.max_latency.max(took);
        let failure = match outcome {
            Ok(response) if response.status < 500 && response.status != 401 => return,
            Ok(response) if response.status == 401 => {
                self.logouts += 1;
                format!("{what}: 401 {}", response.text())
            }
            Ok(response) => format!("{what}: {}", response.status),
            Err(err) => format!("{what}: {err}"),
        };
        self.failed += 1;
        self.last_failure = Some(Instant::now());
        *self.kinds.entry(failure).or_insert(0) += 1;
    }
}

/// A save the server acknowledged with 200.
#[derive(Clone, Debug)]
pub(crate) struct Ack {
    pub(crate) uid: String,
    pub(crate) version: i64,
    /// The title saved, unique per attempt.
    pub(crate) title: String,
    pub(crate) sent: Instant,
    pub(crate) acked: Instant,
}

/// What one Live subscriber saw.
#[derive(Default)]
pub(crate) struct Subscriber {
    pub(crate) channel: String,
    /// Broadcast sequence numbers, or dashboard versions (`rv`), received.
    pub(crate) received: HashSet<i64>,
    /// When a resubscription was answered "not recovered" (the client must reload).
    pub(crate) told_to_recover: Vec<Instant>,
    /// Resubscriptions answered "recovered", with the missed publications.
    pub(crate) recovered: u64,
    /// Subscribed intervals (start, end while it is still open: `None`).
    pub(crate) intervals: Vec<(Instant, Option<Instant>)>,
    pub(crate) reconnects: u64,
}

/// A publication the server acknowledged.
#[derive(Clone, Copy)]
pub(crate) struct Published {
    pub(crate) seq: i64,
    pub(crate) sent: Instant,
}

#[derive(Default)]
pub(crate) struct Records {
    pub(crate) stats: Stats,
    pub(crate) acks: Vec<Ack>,
    pub(crate) published: Vec<Published>,
    pub(crate) subscribers: Vec<Subscriber>,
}

pub(crate) type Shared = Arc<Mutex<Records>>;

/// A signed-in user with a session cookie that follows rotations.
pub(crate) struct Session {
    base: String,
    pub(crate) login: String,
    password: String,
    cookie: Mutex<String>,
}

impl Session {
    pub(crate) async fn login(base: &str, login: &str, password: &str) -> Session {
        let session = Session {
            base: base.to_owned(),
            login: login.to_owned(),
            password: password.to_owned(),
            cookie: Mutex::new(String::new()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if session.sign_in().await {
                return session;
            }
            assert!(Instant::now() < deadline, "{login} could not log in");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn sign_in(&self) -> bool {
        let body = json!({"user": self.login, "password": self.password}).to_string();
        let url = format!("{}/login", self.base);
        let headers = [("content-type", "application/json")];
        match send("POST", &url, &headers, body).await {
            Ok(response) if response.status == 200 => {
                self.take_cookie(&response);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn cookie(&self) -> String {
        format!("grafana_session={}", self.cookie.lock().unwrap())
    }

    fn take_cookie(&self, response: &HttpResponse) {
        for value in response.headers.get_all("set-cookie") {
            let Ok(value) = value.to_str() else { continue };
            if let Some(rest) = value.strip_prefix("grafana_session=") {
                let token = rest.split(';').next().unwrap_or_default();
                if !token.is_empty() {
                    *self.cookie.lock().unwrap() = token.to_owned();
                }
            }
        }
    }

    /// One request with the session cookie; rotated cookies are kept.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<HttpResponse, String> {
        let cookie = self.cookie();
        let url = format!("{}{path}", self.base);
        let mut headers = vec![("cookie", cookie.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        let outcome = send(method, &url, &headers, body).await;
        if let Ok(response) = &outcome {
            self.take_cookie(response);
        }
        outcome
    }
}

pub(crate) async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Result<HttpResponse, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, http::request(method, url, headers, body)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(format!("{err}")),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// The running load; stopped when dropped.
pub(crate) struct Load {
    pub(crate) records: Shared,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(
        readers: Vec<Session>,
        writers: Vec<Session>,
        publisher: Session,
        subscribers: Vec<(Session, String)>,
    ) -> Load {
        let records: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for reader in readers {
            tasks.push(tokio::spawn(read_loop(
                reader,
                records.clone(),
                stop.clone(),
            )));
        }
        for (k, writer) in writers.into_iter().enumerate() {
            tasks.push(tokio::spawn(save_loop(
                writer,
                format!("fault-w{k}"),
                records.clone(),
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(publish_loop(
            publisher,
            records.clone(),
            stop.clone(),
        )));
        for (session, channel) in subscribers {
            let index = {
                let mut records = records.lock().unwrap();
                records.subscribers.push(Subscriber {
                    channel: channel.clone(),
                    ..Subscriber::default()
                });
                records.subscribers.len() - 1
            };
            tasks.push(tokio::spawn(subscribe_loop(
                session,
                channel,
                index,
                records.clone(),
                stop.clone(),
            )));
        }
        Load {
            records,
            stop,
            tasks,
        }
    }

    /// This phase's request statistics, reset for the next.
    pub(crate) fn take_stats(&self) -> Stats {
        std::mem::take(&mut self.records.lock().unwrap().stats)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn record(records: &Shared, what: &str, outcome: &Result<HttpResponse, String>, took: Duration) {
    records.lock().unwrap().stats.record(what, outcome, took);
}

/// Authenticated reads every 100 ms, and a token rotation every 3 s.
async fn read_loop(session: Session, records: Shared, stop: Arc<AtomicBool>) {
    let mut last_rotation = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let (what, method, path) = if last_rotation.elapsed() > Duration::from_secs(3) {
            last_rotation = Instant::now();
            (
                "POST /api/user/auth-tokens/rotate",
                "POST",
                "/api/user/auth-tokens/rotate",
            )
        } else {
            ("GET /api/search", "GET", "/api/search?query=fault")
        };
        let start = Instant::now();
        let outcome = session.call(method, path, None).await;
        record(&records, what, &outcome, start.elapsed());
        if outcome.as_ref().is_ok_and(|r| r.status == 401) {
            // Counted as a forced logout; sign in again to go on.
            let _ = session.sign_in().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves `uid` again and again with the version last read (compare-and-swap), each attempt
/// with a title of its own; a 412 (someone else's save, or an earlier attempt whose answer
/// was lost) reads the version again.
async fn save_loop(session: Session, uid: String, records: Shared, stop: Arc<AtomicBool>) {
    let mut version: Option<i64> = None;
    let mut attempt = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if version.is_none() {
            let start = Instant::now();
            let outcome = session
                .call("GET", &format!("/api/dashboards/uid/{uid}"), None)
                .await;
            record(
                &records,
                "GET /api/dashboards/uid",
                &outcome,
                start.elapsed(),
            );
            match outcome {
                Ok(r) if r.status == 200 => version = r.json()["dashboard"]["version"].as_i64(),
                Ok(r) if r.status == 404 => version = Some(0),
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        attempt += 1;
        let title = format!("{uid} save {attempt}");
        let mut dashboard = json!({"uid": uid, "title": title, "panels": [], "schemaVersion": 39});
        if let Some(v) = version.filter(|v| *v > 0) {
            dashboard["version"] = json!(v);
        }
        let body = json!({"dashboard": dashboard, "overwrite": false, "message": title});
        let sent = Instant::now();
        let outcome = session
            .call("POST", "/api/dashboards/db", Some(&body))
            .await;
        let acked = Instant::now();
        record(&records, "POST /api/dashboards/db", &outcome, acked - sent);
        match outcome {
            Ok(r) if r.status == 200 => {
                let saved = r.json()["version"]
                    .as_i64()
                    .expect("a save answers its version");
                version = Some(saved);
                records.lock().unwrap().acks.push(Ack {
                    uid: uid.clone(),
                    version: saved,
                    title,
                    sent,
                    acked,
                });
            }
            // A conflict, or an outcome unknown: read the version again.
            _ => version = None,
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Publishes `{"seq": n}` on the broadcast channel every 200 ms.
async fn publish_loop(session: Session, records: Shared, stop: Arc<AtomicBool>) {
    let mut seq = 0i64;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let body = json!({"channel": BROADCAST, "data": {"seq": seq}});
        let sent = Instant::now();
        let outcome = session.call("POST", "/api/live/publish", Some(&body)).await;
        record(&records, "POST /api/live/publish", &outcome, sent.elapsed());
        if outcome.is_ok_and(|r| r.status == 200) {
            records
                .lock()
                .unwrap()
                .published
                .push(Published { seq, sent });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where a subscription stands in its channel's stream.
#[derive(Default)]
struct Position {
    epoch: String,
    offset: u64,
}

/// Stays subscribed to `channel` through nginx: on a closed or silent connection it opens a
/// new one and resubscribes asking to recover from its last position, as Centrifuge's SDKs do.
async fn subscribe_loop(
    session: Session,
    channel: String,
    index: usize,
    records: Shared,
    stop: Arc<AtomicBool>,
) {
    let wire = format!("1/{channel}");
    let mut position: Option<Position> = None;
    let mut first = true;
    while !stop.load(Ordering::SeqCst) {
        if !first {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let cookie = session.cookie();
        let Ok(mut client) = LiveClient::open(&session.base, &[("cookie", cookie.as_str())]).await
        else {
            continue;
        };
        let wait = Duration::from_secs(10);
        let connected = client.try_command("connect", json!({}), wait).await;
        if !connected.is_some_and(|r| r["connect"]["client"].is_string()) {
            continue;
        }
        let mut params = json!({"channel": wire});
        if let Some(p) = &position {
            params["recover"] = json!(true);
            params["epoch"] = json!(p.epoch);
            params["offset"] = json!(p.offset);
        }
        let Some(reply) = client.try_command("subscribe", params, wait).await else {
            continue;
        };
        let Some(result) = reply.get("subscribe") else {
            continue;
        };
        {
            let mut records = records.lock().unwrap();
            let sub = &mut records.subscribers[index];
            if !first {
                sub.reconnects += 1;
            }
            if position.is_some() {
                if result["recovered"] == json!(true) {
                    sub.recovered += 1;
                } else {
                    sub.told_to_recover.push(Instant::now());
                }
            }
            for publication in result["publications"].as_array().into_iter().flatten() {
                if let Some(n) = number(&channel, &publication["data"]) {
                    sub.received.insert(n);
                }
            }
            sub.intervals.push((Instant::now(), None));
        }
        first = false;
        if let Some(epoch) = result["epoch"].as_str() {
            let offset = result["publications"]
                .as_array()
                .and_then(|pubs| pubs.last())
                .and_then(|p| p["offset"].as_u64())
                .or_else(|| result["offset"].as_u64())
                .unwrap_or(0);
            position = Some(Position {
                epoch: epoch.to_owned(),
                offset,
            });
        } else {
            position = Some(Position::default());
        }
        // Read pushes until the connection closes or goes silent past two ping intervals.
        let mut silent_since = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            match client.read(Duration::from_secs(1)).await {
                Read::Message(message) => {
                    silent_since = Instant::now();
                    let push = &message["push"];
                    if push["channel"] != json!(wire) {
                        continue;
                    }
                    if push.get("unsubscribe").is_some() {
                        // The server dropped the subscription (2500 after an engine outage):
                        // subscribe again, asking to recover, as the SDKs do.
                        break;
                    }
                    let publication = &push["pub"];
                    if publication.is_null() {
                        continue;
                    }
                    if let (Some(p), Some(offset)) =
                        (position.as_mut(), publication["offset"].as_u64())
                    {
                        p.offset = offset;
                    }
                    if let Some(n) = number(&channel, &publication["data"]) {
                        records.lock().unwrap().subscribers[index]
                            .received
                            .insert(n);
                    }
                }
                Read::Idle if silent_since.elapsed() < Duration::from_secs(60) => {}
                Read::Idle | Read::Closed(..) => break,
            }
        }
        let mut records = records.lock().unwrap();
        if let Some(last) = records.subscribers[index].intervals.last_mut() {
            last.1 = Some(Instant::now());
        }
    }
}

/// The number a publication carries: `seq` on the broadcast channel, the saved version
/// (`rv`) on a dashboard's.
fn number(channel: &str, data: &Value) -> Option<i64> {
    if channel == BROADCAST {
        data["seq"].as_i64()
    } else if data["action"] == "saved" {
        data["rv"].as_i64()
    } else {
        None
    }
}
