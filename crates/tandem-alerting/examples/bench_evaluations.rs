//! Rule evaluations per CPU-second: testdata `predictable_pulse` → `reduce` → `threshold`,
//! through the real query path (`DataSourceService`, which looks the data source up in the
//! database for every query), the state machine and the change detection, on SQLite.
//!
//! `cargo run --release -p tandem-alerting --example bench_evaluations [rules] [rounds]`
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tandem_alerting::eval::{interpret, request};
use tandem_alerting::state::{Evaluation, apply};
use tandem_alerting::{AlertQuery, AlertRule, FolderUid, OrgId, Provenance, RuleSpec, RuleUid};
use tandem_datasources::{
    DataSourceService, DataSourceSettings, DataSourceStore, NewDataSource, QueryService,
    SqlDataSourceStore,
};
use tandem_storage::{Database, DatabaseSettings, MigrationOptions};

/// User plus system CPU time of this process, seconds (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn rule(i: usize) -> AlertRule {
    let query = |ref_id: &str, uid: &str, model: serde_json::Value, from: i64| AlertQuery {
        ref_id: ref_id.to_owned(),
        datasource_uid: uid.to_owned(),
        relative_time_range: tandem_alerting::RelativeTimeRange { from, to: 0 },
        model: model.as_object().cloned().unwrap(),
        ..AlertQuery::default()
    };
    AlertRule {
        id: i as i64,
        org_id: OrgId(1),
        uid: RuleUid::from(format!("bench-{i}")),
        folder_uid: FolderUid::from("f"),
        rule_group: "g".to_owned(),
        group_index: 1,
        interval_seconds: 10,
        version: 1,
        provenance: Provenance::None,
        updated: 0,
        spec: RuleSpec {
            title: format!("Bench {i}"),
            condition: "C".to_owned(),
            data: vec![
                query(
                    "A",
                    "td",
                    json!({"scenarioId": "predictable_pulse",
                    "pulseWave": {"timeStep": 10, "onCount": 3, "offCount": 3, "onValue": 10, "offValue": 1}}),
                    60,
                ),
                query(
                    "B",
                    "__expr__",
                    json!({"type": "reduce", "expression": "A", "reducer": "last"}),
                    0,
                ),
                query(
                    "C",
                    "__expr__",
                    json!({"type": "threshold", "expression": "B",
                    "conditions": [{"evaluator": {"type": "gt", "params": [5]}}]}),
                    0,
                ),
            ],
            for_ms: 20_000,
            labels: [("team".to_owned(), "bench".to_owned())].into(),
            annotations: [("summary".to_owned(), "{{ $values.B.Value }}".to_owned())].into(),
            ..RuleSpec::default()
        },
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rules, rounds) = (
        args.first().copied().unwrap_or(1_000),
        args.get(1).copied().unwrap_or(20),
    );
    let dir = std::env::temp_dir().join(format!("tandem-bench-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Database::connect(&DatabaseSettings::sqlite(dir.join("bench.db")))
        .await
        .unwrap();
    db.migrate(MigrationOptions {
        locking: true,
        lock_timeout: None,
    })
    .await
    .unwrap();
    let store = Arc::new(SqlDataSourceStore::new(db, "bench"));
    let spec = serde_json::from_value(json!({"name": "TestData", "type": "grafana-testdata-datasource",
        "access": "proxy", "url": "", "user": "", "database": "", "basicAuth": false, "basicAuthUser": "",
        "withCredentials": false, "isDefault": false, "jsonData": {}, "secureJsonData": {}})).unwrap();
    store
        .create(NewDataSource {
            org_id: tandem_datasources::OrgId(1),
            uid: Some("td".to_owned().into()),
            spec,
        })
        .await
        .unwrap();
    let service = Arc::new(DataSourceService::new(store, DataSourceSettings::default()));
    let all: Vec<Arc<AlertRule>> = (0..rules).map(|i| Arc::new(rule(i))).collect();
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut writes = 0usize;
    let mut states: Vec<HashMap<String, tandem_alerting::AlertInstance>> =
        vec![HashMap::new(); rules];
    let start_slot = tandem_storage::now_ms();
    for round in 0..rounds {
        let slot = start_slot + (round as i64) * 10_000;
        let mut tasks = tokio::task::JoinSet::new();
        for (index, rule) in all.iter().enumerate() {
            let (service, rule) = (service.clone(), rule.clone());
            tasks.spawn(async move {
                let response = service
                    .query(tandem_datasources::OrgId(1), request(&rule, slot, &[]))
                    .await;
                (index, interpret(&rule, response.map_err(|e| e.to_string())))
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (index, outcome) = done.unwrap();
            let rule = &all[index];
            let evaluation = Evaluation {
                rule,
                folder_title: "F",
                slot,
                evaluated_at: slot,
                refresh_ms: 2_000_000,
            };
            let t = apply(evaluation, &states[index], &outcome);
            writes += t.upserts.len() + t.deletes.len();
            states[index] = t.instances;
        }
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let evaluations = (rules * rounds) as f64;
    println!(
        "{rules} rules x {rounds} rounds = {evaluations} evaluations in {wall:.2} s wall, {cpu:.2} s CPU: \
         {:.0} evaluations per CPU-second; {writes} instance writes ({:.2} % of evaluations; the pulse changes state every 3 rounds)",
        evaluations / cpu.max(0.01),
        100.0 * writes as f64 / evaluations
    );
    let _ = std::fs::remove_dir_all(&dir);
}
