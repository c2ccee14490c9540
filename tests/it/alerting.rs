//! Sharded alert evaluation with real `tandem-server` processes: SIGKILL the instance that
//! evaluates a rule, and the survivors evaluate it within `peer_timeout` plus one
//! interval, with no slot evaluated twice across all three processes and each state change
//! recorded as one annotation.
//!
//! Evaluations are read from each process's debug log line `evaluated alert rule`
//! (`rule_uid`, `slot`). The test runs with `min_interval = 1s`, 1 s group intervals and a
//! 2 s peer timeout, so the 10 s timeline takes seconds.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use tandem::http::testkit::http::{self, ADMIN};
use tandem::http::testkit::{ServerProcess, database_env};
use tandem::storage::testkit::TestDatabase;

const START_DEADLINE: Duration = Duration::from_secs(60);

fn spawn(test: &TestDatabase, id: &str) -> ServerProcess {
    let mut env = database_env(&test.settings());
    for (key, value) in [
        ("GF_CLUSTER_INSTANCE_ID", id),
        ("GF_CLUSTER_ALERTING_EVALUATION", "sharded"),
        ("GF_UNIFIED_ALERTING_MIN_INTERVAL", "1s"),
        ("GF_LOG_LEVEL", "debug"),
    ] {
        env.push((key.to_owned(), value.to_owned()));
    }
    ServerProcess::spawn(&env)
}

async fn post(url: &str, path: &str, body: serde_json::Value) -> http::HttpResponse {
    let headers = [ADMIN, ("content-type", "application/json")];
    http::request("POST", &format!("{url}{path}"), &headers, body.to_string())
        .await
        .expect("a request")
}

/// (rule uid, slot) of every evaluation in a process's log.
fn evaluations(logs: &str) -> Vec<(String, i64)> {
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        let rest = line.get(at..)?;
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '\u{1b}')
            .unwrap_or(rest.len());
        Some(rest.get(..end)?.to_owned())
    };
    logs.lines()
        .filter(|line| line.contains("evaluated alert rule"))
        .map(strip)
        .filter_map(|line| {
            let slot = field(&line, "slot")?.parse().ok()?;
            Some((field(&line, "rule_uid")?, slot))
        })
        .collect()
}

fn strip(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

tandem::storage::backend_tests!(
    a_killed_owners_rules_are_taken_over_without_a_slot_twice,
    |test: TestDatabase| async move {
        let mut processes: Vec<_> = (0..3).map(|i| spawn(&test, &format!("a{i}"))).collect();
        for process in &mut processes {
            process.wait_healthy(START_DEADLINE).await;
        }
        let url = processes[0].url();
        let folder = post(
            &url,
            "/api/folders",
            json!({"uid": "alerts", "title": "Alerts"}),
        )
        .await;
        assert_eq!(folder.status, 200, "{}", folder.text());
        let source = post(
            &url,
            "/api/datasources",
            json!({"uid": "td", "name": "TestData", "type": "grafana-testdata-datasource", "access": "proxy"}),
        )
        .await;
        assert_eq!(source.status, 200, "{}", source.text());
        // 30 rules, so that each of the 3 instances owns some whatever the rules' uids hash
        // to (with 12, one instance owned none in about 2 % of runs). Each fires for 2 s
        // and is normal for 2 s, so that its state changes while its owner is killed.
        let rules: Vec<serde_json::Value> = (0..30)
            .map(|i| {
                json!({"grafana_alert": {"title": format!("Rule {i}"), "condition": "C", "data": [
                    {"refId": "A", "relativeTimeRange": {"from": 10, "to": 0}, "datasourceUid": "td",
                     "model": {"scenarioId": "predictable_pulse", "pulseWave":
                        {"timeStep": 1, "onCount": 2, "offCount": 2, "onValue": 10, "offValue": 1}}},
                    {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                     "model": {"type": "reduce", "expression": "A", "reducer": "last"}},
                    {"refId": "C", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
                     "model": {"type": "threshold", "expression": "B",
                               "conditions": [{"evaluator": {"type": "gt", "params": [5]}}]}}]},
                       "for": "0s"})
            })
            .collect();
        let posted = post(
            &url,
            "/api/ruler/grafana/api/v1/rules/alerts",
            json!({"name": "many", "interval": "1s", "rules": rules}),
        )
        .await;
        assert_eq!(posted.status, 202, "{}", posted.text());
        let uids: Vec<String> = posted.json()["created"]
            .as_array()
            .expect("created")
            .iter()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(uids.len(), 30);

        // Until every instance evaluates some of the rules.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let counts: Vec<usize> = processes
                .iter()
                .map(|p| evaluations(&p.logs()).len())
                .collect();
            if counts.iter().all(|&n| n > 0) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "every instance evaluates some rules; evaluations per instance: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        // SIGKILL the instance evaluating the most rules recently.
        let recent = |p: &ServerProcess| {
            let now = tandem::storage::now_ms();
            evaluations(&p.logs())
                .into_iter()
                .filter(|(_, slot)| now - slot < 2_000)
                .map(|(uid, _)| uid)
                .collect::<HashSet<_>>()
        };
        let victim = (0..3)
            .max_by_key(|i| recent(&processes[*i]).len())
            .unwrap_or(0);
        let owned = recent(&processes[victim]);
        assert!(!owned.is_empty());
        let killed_logs_before = processes[victim].logs();
        processes[victim].kill().await;
        let killed_at = tandem::storage::now_ms();
        tokio::time::sleep(Duration::from_secs(7)).await;

        let mut all: Vec<(String, i64)> = evaluations(&killed_logs_before);
        let mut survivors: Vec<(String, i64)> = Vec::new();
        for (i, process) in processes.iter().enumerate() {
            if i != victim {
                survivors.extend(evaluations(&process.logs()));
            }
        }
        all.extend(survivors.iter().cloned());
        let mut seen = HashSet::new();
        for (uid, slot) in &all {
            assert!(
                seen.insert((uid.clone(), *slot)),
                "slot {slot} of {uid} evaluated twice"
            );
        }
        // peer_timeout 2 s + interval 1 s, plus an ownership tick and slack for a loaded machine.
        let mut resumed: HashMap<&String, i64> = HashMap::new();
        for (uid, slot) in &survivors {
            if owned.contains(uid) && *slot > killed_at {
                let entry = resumed.entry(uid).or_insert(*slot);
                *entry = (*entry).min(*slot);
            }
        }
        for uid in &owned {
            let first = resumed.get(uid).copied().unwrap_or(i64::MAX);
            assert!(
                first - killed_at <= 4_000,
                "{uid} was evaluated again {} ms after its instance was killed",
                first.saturating_sub(killed_at)
            );
        }
        // Every state change, before, during and after the take-over, is recorded once:
        // each rule's changes form one chain, each starting where the previous ended.
        let survivor = &processes[(victim + 1) % 3];
        let found = http::request(
            "GET",
            &format!("{}/api/annotations?type=alert&limit=5000", survivor.url()),
            &[ADMIN],
            "",
        )
        .await
        .expect("a request");
        assert_eq!(found.status, 200, "{}", found.text());
        let mut chains: HashMap<i64, Vec<(i64, String, String)>> = HashMap::new();
        for item in found.json().as_array().expect("a list") {
            chains
                .entry(item["alertId"].as_i64().unwrap_or(0))
                .or_default()
                .push((
                    item["time"].as_i64().unwrap_or(0),
                    item["prevState"].as_str().unwrap_or("").to_owned(),
                    item["newState"].as_str().unwrap_or("").to_owned(),
                ));
        }
        assert_eq!(chains.len(), 30, "every rule changed state");
        for (rule, chain) in &mut chains {
            chain.sort();
            assert!(
                chain.len() >= 2,
                "rule {rule} fired and resolved: {chain:?}"
            );
            for pair in chain.windows(2) {
                assert!(
                    pair[1].1 == pair[0].2 && pair[1].0 > pair[0].0,
                    "rule {rule}'s changes are recorded once each: {chain:?}"
                );
            }
        }
    }
);
