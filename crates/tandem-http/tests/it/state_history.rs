//! Alert state changes as annotations (Grafana's state history, `type=alert`): three
//! in-process instances evaluate a pulse through Normal, Pending, Alerting and back twice,
//! in both evaluation modes, and every change is recorded exactly once cluster-wide,
//! readable from every instance, on the rule's dashboard and panel, and only by those who
//! may view the rule's folder.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;

use crate::alerting::{fast, fixtures, pulse_rule, set_interval, sharded};
use crate::common::{as_admin_ok, basic, create_user, send};

/// The rule's state changes as `url` answers them, oldest first.
async fn history(url: &str, authorization: &str, query: &str) -> Vec<Value> {
    let response = send(
        "GET",
        url,
        &format!("/api/annotations?{query}"),
        authorization,
        Value::Null,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let mut items = response.json().as_array().cloned().expect("a list");
    items.reverse();
    items
}

/// `prev → new` of each item.
fn steps(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| format!("{} -> {}", i["prevState"], i["newState"]))
        .collect()
}

/// How many full cycles Normal → Pending → Alerting → Normal the steps hold.
fn cycles(steps: &[String]) -> usize {
    let cycle = [
        r#""Normal" -> "Pending""#,
        r#""Pending" -> "Alerting""#,
        r#""Alerting" -> "Normal""#,
    ];
    steps
        .windows(3)
        .filter(|w| w.iter().zip(cycle).all(|(s, c)| s == c))
        .count()
}

/// Each change starts from the state the previous one ended in, at a later time: a change
/// recorded twice, or one missing, breaks the chain.
fn assert_chained(items: &[Value]) {
    for pair in items.windows(2) {
        assert_eq!(
            pair[1]["prevState"],
            pair[0]["newState"],
            "each change starts where the previous ended: {:?}",
            steps(items)
        );
        assert!(
            pair[1]["time"].as_i64() > pair[0]["time"].as_i64(),
            "changes are recorded at increasing times: {:?}",
            steps(items)
        );
    }
}

async fn changes_are_recorded_once(cluster: TestCluster) {
    fixtures(&cluster).await;
    let (a, b) = (cluster.url(0), cluster.url(1));
    let admin = tandem_http::testkit::http::ADMIN.1;
    as_admin_ok(
        "POST",
        &a,
        "/api/dashboards/db",
        json!({"dashboard": {"uid": "hist", "title": "History", "panels": [{"id": 3}]},
               "folderUid": "alerts"}),
    )
    .await;
    // On for 6 s, off for 6 s; `for` 2 s: Normal, Pending, Alerting, Normal every 12 s.
    let mut rule = pulse_rule(
        "Pulse",
        "pulse",
        json!({"timeStep": 2, "onCount": 3, "offCount": 3, "onValue": 10, "offValue": 1}),
        "2s",
    );
    rule["annotations"]["__dashboardUid__"] = json!("hist");
    rule["annotations"]["__panelId__"] = json!("3");
    let created = as_admin_ok("POST", &a, "/api/v1/provisioning/alert-rules", rule)
        .await
        .json();
    let (rule_id, rule_uid) = (
        created["id"].as_i64().expect("the rule's id"),
        created["uid"].as_str().expect("the rule's uid").to_owned(),
    );
    set_interval(&a, "pulse", 1).await;

    let by_id = format!("type=alert&alertId={rule_id}&limit=1000");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let items = history(&b, admin, &by_id).await;
        if cycles(&steps(&items)) >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "two cycles recorded within 90 s: {:?}",
            steps(&items)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Changes up to a moment well past are settled: every instance reads the same list.
    let cutoff = tandem_storage::now_ms() - 2_000;
    let by_id = format!("{by_id}&to={cutoff}");
    let items = history(&a, admin, &by_id).await;
    assert_chained(&items);
    assert_eq!(items[0]["prevState"], "Normal", "{:?}", steps(&items));
    for url in cluster.urls() {
        assert_eq!(
            history(&url, admin, &by_id).await,
            items,
            "every instance answers the same"
        );
    }
    let first = &items[0];
    assert_eq!(first["alertId"], rule_id);
    assert_eq!(first["dashboardUID"], "hist");
    assert_eq!(first["panelId"], 3);
    assert_eq!(first["userId"], 0);
    let text = first["text"].as_str().expect("text");
    assert!(
        text.starts_with("Pulse {alertname=Pulse, grafana_folder=Alerts, team=ops} - B="),
        "{text}"
    );
    assert!(first["data"]["values"]["B"].is_number(), "{first}");
    // The other filters find the same changes, and users' annotations are apart.
    assert_eq!(
        history(
            &b,
            admin,
            &format!("alertUID={rule_uid}&limit=1000&to={cutoff}")
        )
        .await,
        items
    );
    assert_eq!(
        history(
            &b,
            admin,
            &format!("dashboardUID=hist&panelId=3&limit=1000&to={cutoff}")
        )
        .await,
        items
    );
    assert!(history(&b, admin, "type=annotation").await.is_empty());
    assert!(history(&b, admin, "alertUID=nope").await.is_empty());

    // A Viewer without access to the rule's folder reads none of it, until granted View.
    let viewer = create_user(&a, "vic", "secret-vic").await;
    let vic = basic("vic", "secret-vic");
    as_admin_ok(
        "POST",
        &a,
        "/api/folders/alerts/permissions",
        json!({"items": [{"role": "Editor", "permission": 2}]}),
    )
    .await;
    assert!(history(&b, &vic, &by_id).await.is_empty());
    as_admin_ok(
        "POST",
        &a,
        "/api/folders/alerts/permissions",
        json!({"items": [{"role": "Editor", "permission": 2}, {"userId": viewer, "permission": 1}]}),
    )
    .await;
    assert_eq!(history(&b, &vic, &by_id).await, items);
    cluster.shutdown().await;
}

tandem_http::cluster_tests!(
    every_instance_evaluating_records_each_state_change_once,
    3,
    fast,
    |cluster: TestCluster| changes_are_recorded_once(cluster)
);

tandem_http::cluster_tests!(
    sharded_evaluation_records_each_state_change_once,
    3,
    sharded,
    |cluster: TestCluster| changes_are_recorded_once(cluster)
);
