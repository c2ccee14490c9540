//! What must hold after each fault, computed from what the load recorded, the database and
//! the webhook receiver; one row of the table per fault.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tandem::storage::sea_orm::{ConnectionTrait, Statement};
use tandem::storage::{Database, DatabaseSettings};

use crate::load::{Ack, BROADCAST, Published, Records, Stats, WATCHED};
use crate::receiver::Log;

/// One fault's outcome.
#[derive(Default)]
pub(crate) struct Row {
    pub(crate) fault: String,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    pub(crate) logouts: u64,
    pub(crate) max_latency: Duration,
    /// How long the fault lasted (from the kill to the restart, the stop to SIGCONT…).
    pub(crate) lasted: Duration,
    /// From the fault's end until every instance was healthy and no request failed.
    pub(crate) recovered: Duration,
    pub(crate) saves_acked: usize,
    pub(crate) saves_lost: usize,
    pub(crate) versions_twice: usize,
    pub(crate) published: usize,
    pub(crate) live_lost: usize,
    pub(crate) told_to_recover: usize,
    pub(crate) recovered_subscriptions: u64,
    pub(crate) groups: usize,
    pub(crate) duplicates: usize,
    pub(crate) missing: usize,
    pub(crate) failures: Vec<String>,
    /// What was lost, for the report.
    pub(crate) lost: Vec<String>,
}

impl Row {
    /// Whether every promise held.
    pub(crate) fn held(&self) -> bool {
        self.logouts == 0
            && self.saves_lost == 0
            && self.versions_twice == 0
            && self.live_lost == 0
            && self.duplicates == 0
            && self.missing == 0
    }
}

pub(crate) fn request_stats(
    row: &mut Row,
    stats: &Stats,
    fault: (Instant, Instant),
    healthy_at: Instant,
) {
    let (fault_start, fault_end) = fault;
    row.lasted = fault_end.saturating_duration_since(fault_start);
    row.requests = stats.requests;
    row.failed = stats.failed;
    row.logouts = stats.logouts;
    row.max_latency = stats.max_latency;
    let last = stats
        .last_failure
        .map_or(healthy_at, |at| at.max(healthy_at));
    row.recovered = last.saturating_duration_since(fault_end);
    row.failures = stats
        .kinds
        .iter()
        .map(|(kind, n)| format!("{n} × {kind}"))
        .collect();
}

/// Every acknowledged save is in the database with its version and title, and no version of
/// a dashboard appears twice. `acks` are all saves acknowledged so far; `phase` how many of
/// them are this phase's.
pub(crate) async fn saves(row: &mut Row, database_url: &str, acks: &[Ack], phase: usize) {
    row.saves_acked = phase;
    let settings = DatabaseSettings::from_url(database_url).expect("the database URL");
    let db = Database::connect(&settings)
        .await
        .expect("connect for the checks");
    let conn = db.connection();
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT d.uid AS uid, v.version AS version, v.data AS data FROM dashboard_version v \
             JOIN dashboard d ON d.id = v.dashboard_id WHERE d.uid LIKE 'fault-w%'",
        ))
        .await
        .expect("read the dashboards' versions");
    let mut stored: HashMap<(String, i64), Vec<String>> = HashMap::new();
    for r in &rows {
        let uid: String = r.try_get("", "uid").expect("uid");
        let version: i64 = r.try_get("", "version").expect("version");
        let data: String = r.try_get("", "data").expect("data");
        let json: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        let title = json["title"].as_str().unwrap_or_default().to_owned();
        stored.entry((uid, version)).or_default().push(title);
    }
    row.versions_twice = stored.values().filter(|titles| titles.len() > 1).count();
    row.saves_lost = acks
        .iter()
        .filter(|ack| {
            stored
                .get(&(ack.uid.clone(), ack.version))
                .is_none_or(|titles| !titles.contains(&ack.title))
        })
        .count();
    db.close().await;
}

/// Every acknowledged publication reached every subscriber of its channel, or the
/// subscriber was told after it was sent that it must recover (resubscribed with "not
/// recovered"). On the dashboard channel, which keeps no history, a save counts for a
/// subscriber subscribed from before the save was sent until it was answered.
pub(crate) fn live(row: &mut Row, records: &Records, published: &[Published], acks: &[Ack]) {
    row.published = published.len();
    for (i, sub) in records.subscribers.iter().enumerate() {
        row.recovered_subscriptions += sub.recovered;
        if sub.channel == BROADCAST {
            let since = sub.intervals.first().map(|(from, _)| *from);
            for p in published
                .iter()
                .filter(|p| since.is_some_and(|since| p.sent >= since))
            {
                let told = sub.told_to_recover.iter().any(|at| *at >= p.sent);
                if !sub.received.contains(&p.seq) && !told {
                    row.live_lost += 1;
                    row.lost.push(format!(
                        "subscriber {i} ({}, {} reconnects): publication {}",
                        sub.channel, sub.reconnects, p.seq
                    ));
                }
            }
            row.told_to_recover += sub
                .told_to_recover
                .iter()
                .filter(|at| published.first().is_some_and(|p| **at >= p.sent))
                .count();
        } else {
            for ack in acks.iter().filter(|ack| ack.uid == WATCHED) {
                let watched = sub
                    .intervals
                    .iter()
                    .any(|(from, to)| *from <= ack.sent && to.is_none_or(|to| to >= ack.acked));
                let told = sub.told_to_recover.iter().any(|at| *at >= ack.sent);
                if watched && !told && !sub.received.contains(&ack.version) {
                    row.live_lost += 1;
                    row.lost.push(format!(
                        "subscriber {i} ({}, {} reconnects): version {}",
                        sub.channel, sub.reconnects, ack.version
                    ));
                }
            }
        }
    }
}

/// Each posted alert group of the phase was notified firing exactly once and resolved
/// exactly once.
pub(crate) fn notifications(row: &mut Row, log: &Log, names: &[String]) {
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for (_, status, _, body) in log.lock().unwrap().iter() {
        if *status != 200 {
            continue;
        }
        for alert in body["alerts"].as_array().into_iter().flatten() {
            let name = alert["labels"]["alertname"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let state = body["status"].as_str().unwrap_or_default().to_owned();
            *counts.entry((name, state)).or_insert(0) += 1;
        }
    }
    row.groups = names.len();
    for name in names {
        for state in ["firing", "resolved"] {
            match counts
                .get(&(name.clone(), state.to_owned()))
                .copied()
                .unwrap_or(0)
            {
                0 => row.missing += 1,
                1 => {}
                n => row.duplicates += n - 1,
            }
        }
    }
}

/// Whether every group of the phase has been notified firing and resolved.
pub(crate) fn all_notified(log: &Log, names: &[String]) -> bool {
    let mut row = Row::default();
    notifications(&mut row, log, names);
    row.missing == 0
}

pub(crate) fn table(backend: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "\nfault suite on {backend}: three instances behind nginx, private database and Redis\n\
         | fault | lasted | requests | failed | max latency | recovered after it | forced logouts | saves acked | saves lost | versions twice | published | Live lost | told to recover / recovered | alert groups | duplicate | missing | held |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.1} s | {} | {} ({:.1} %) | {:.1} s | {:.1} s | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} |\n",
            r.fault,
            r.lasted.as_secs_f64(),
            r.requests,
            r.failed,
            100.0 * r.failed as f64 / r.requests.max(1) as f64,
            r.max_latency.as_secs_f64(),
            r.recovered.as_secs_f64(),
            r.logouts,
            r.saves_acked,
            r.saves_lost,
            r.versions_twice,
            r.published,
            r.live_lost,
            r.told_to_recover,
            r.recovered_subscriptions,
            r.groups,
            r.duplicates,
            r.missing,
            if r.held() { "yes" } else { "NO" },
        ));
    }
    for r in rows.iter().filter(|r| !r.lost.is_empty()) {
        let shown: Vec<&str> = r.lost.iter().take(12).map(String::as_str).collect();
        out.push_str(&format!(
            "lost during {} ({} in all): {}\n",
            r.fault,
            r.lost.len(),
            shown.join("; ")
        ));
    }
    for r in rows.iter().filter(|r| !r.failures.is_empty()) {
        out.push_str(&format!(
            "failed requests during {}: {}\n",
            r.fault,
            r.failures.join("; ")
        ));
    }
    out
}
