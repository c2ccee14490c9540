//! Queries against a real Prometheus over backfilled data, so every value is known: range
//! and instant queries, the step, legends, GET and POST, expressions over the answers,
//! basic auth and custom headers reaching the server, errors and timeouts per refId, and
//! health checks.

use std::time::Duration;

use serde_json::{Value, json};
use tandem_datasources::testkit::prometheus::{
    BASIC_AUTH_PASSWORD, BASIC_AUTH_USER, PrometheusOptions, TestPrometheus,
};
use tandem_datasources::{DataSourceKey, HealthStatus, OrgId};

use crate::common::{create, json_of, query, reference, sqlite_instance};

/// The first sample, in seconds: a multiple of 60, so steps of 15 s and 1 min align on it.
const T0: i64 = 1_700_000_040;

/// `tandem_value{instance="a"}` is k and `{instance="b"}` is 2k at T0 + 15k s, for an hour.
fn data() -> String {
    let mut text =
        String::from("# HELP tandem_value A value known in advance.\n# TYPE tandem_value gauge\n");
    for k in 0..=240 {
        let t = T0 + 15 * k;
        text.push_str(&format!(
            "tandem_value{{job=\"api\",instance=\"a\"}} {k} {t}\n"
        ));
        text.push_str(&format!(
            "tandem_value{{job=\"api\",instance=\"b\"}} {} {t}\n",
            2 * k
        ));
    }
    text
}

fn ms(seconds: i64) -> String {
    (seconds * 1000).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_and_instant_queries_answer_the_backfilled_values() {
    let Some(prometheus) = TestPrometheus::start(&data(), PrometheusOptions::default()).await
    else {
        return;
    };
    assert!(
        prometheus.version().starts_with("prometheus"),
        "{}",
        prometheus.version()
    );
    let (_db, service) = sqlite_instance().await;
    let org = OrgId(1);
    let post = create(
        &service,
        org,
        json!({"name": "Prom", "type": "prometheus", "url": prometheus.url(),
        "jsonData": {"httpMethod": "POST"}}),
    )
    .await;
    let get = create(
        &service,
        org,
        json!({"name": "Prom GET", "type": "prometheus", "url": format!("{}/", prometheus.url()),
        "jsonData": {"httpMethod": "GET", "timeInterval": "1m"}}),
    )
    .await;
    let expr = json!({"type": "__expr__", "uid": "__expr__"});
    let body = json!({"from": ms(T0), "to": ms(T0 + 3600), "queries": [
        {"refId": "A", "datasource": reference(&post), "expr": "tandem_value", "range": true,
         "intervalMs": 15000, "maxDataPoints": 1000, "legendFormat": "{{instance}}"},
        {"refId": "I", "datasource": reference(&post), "expr": "sum(tandem_value)", "instant": true,
         "range": false, "timeRange": {"from": ms(T0), "to": ms(T0 + 600)}},
        {"refId": "G", "datasource": reference(&get), "expr": "tandem_value{instance=\"b\"}", "range": true,
         "maxDataPoints": 100000},
        {"refId": "V", "datasource": reference(&post), "expr": "count_over_time(tandem_value{instance=\"a\"}[$__range])",
         "instant": true},
        {"refId": "B", "datasource": expr, "type": "reduce", "expression": "A", "reducer": "last"},
        {"refId": "C", "datasource": expr, "type": "math", "expression": "$B / 2"},
        {"refId": "D", "datasource": expr, "type": "threshold", "expression": "C",
         "conditions": [{"evaluator": {"type": "gt", "params": [200]}}]},
    ]});
    let answer = json_of(&query(&service, org, body).await);
    let results = &answer["results"];
    for ref_id in ["A", "I", "G", "V", "B", "C", "D"] {
        assert_eq!(
            results[ref_id]["status"], 200,
            "{ref_id}: {}",
            results[ref_id]
        );
    }

    // One frame per series, every 15 s, exactly the values written.
    let frames = results["A"]["frames"].as_array().expect("frames");
    assert_eq!(frames.len(), 2);
    for (frame, factor) in frames.iter().zip([1.0, 2.0]) {
        let times: Vec<i64> = (0..=240).map(|k| (T0 + 15 * k) * 1000).collect();
        let values: Vec<f64> = (0..=240).map(|k| factor * k as f64).collect();
        assert_eq!(frame["data"]["values"], json!([times, values]));
        let fields = &frame["schema"]["fields"];
        assert_eq!(fields[0]["config"]["interval"], 15000);
        assert_eq!(fields[1]["labels"]["__name__"], "tandem_value");
        assert_eq!(
            fields[1]["config"]["displayNameFromDS"],
            fields[1]["labels"]["instance"]
        );
        assert_eq!(frame["schema"]["refId"], "A");
        assert_eq!(frame["schema"]["meta"]["type"], "timeseries-multi");
    }
    // The instant query runs at the end of its own range: k = 40 on both series.
    assert_eq!(
        results["I"]["frames"][0]["data"]["values"],
        json!([[(T0 + 600) * 1000], [120.0]])
    );
    // GET with the data source's 1 m minimum interval: one point a minute.
    let g = &results["G"]["frames"][0]["data"]["values"];
    assert_eq!(g[0].as_array().map(Vec::len), Some(61));
    assert_eq!(g[1][1], json!(8.0), "the second minute is k = 4, doubled");
    assert_eq!(
        results["G"]["frames"][0]["schema"]["fields"][1]["config"]["displayNameFromDS"],
        "tandem_value{instance=\"b\", job=\"api\"}"
    );
    // $__range became 3600s: the hour's samples are counted (241 with Prometheus 2's
    // closed range selectors, 240 with Prometheus 3's left-open ones).
    let counted = results["V"]["frames"][0]["data"]["values"][1][0].as_f64();
    assert!(matches!(counted, Some(240.0 | 241.0)), "{counted:?}");
    // Expressions over the answer keep the series' labels.
    let mut reduced: Vec<(Value, Value)> = results["D"]["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            (
                f["schema"]["fields"][0]["labels"]["instance"].clone(),
                f["data"]["values"][0][0].clone(),
            )
        })
        .collect();
    reduced.sort_by_key(|(instance, _)| instance.to_string());
    assert_eq!(
        reduced,
        [(json!("a"), json!(0.0)), (json!("b"), json!(1.0))]
    );

    let health = service
        .health(org, &DataSourceKey::Uid(post.uid.clone()))
        .await
        .expect("health");
    assert_eq!(health.status, HealthStatus::Ok);
    assert_eq!(health.message, "Successfully queried the Prometheus API.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_answered_per_query() {
    let Some(prometheus) = TestPrometheus::start(&data(), PrometheusOptions::default()).await
    else {
        return;
    };
    let (_db, service) = sqlite_instance().await;
    let org = OrgId(1);
    let good = create(
        &service,
        org,
        json!({"name": "Prom", "type": "prometheus", "url": prometheus.url()}),
    )
    .await;
    // A port nobody listens on, and a server that accepts connections and never answers.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let unreachable = create(
        &service,
        org,
        json!({"name": "Down", "type": "prometheus",
        "url": format!("http://127.0.0.1:{closed}")}),
    )
    .await;
    let slow = create(
        &service,
        org,
        json!({"name": "Slow", "type": "prometheus",
        "url": format!("http://127.0.0.1:{silent_port}"), "jsonData": {"timeout": 1}}),
    )
    .await;
    let body = json!({"from": ms(T0), "to": ms(T0 + 3600), "queries": [
        {"refId": "OK", "datasource": reference(&good), "expr": "tandem_value", "instant": true},
        {"refId": "BAD", "datasource": reference(&good), "expr": "sum(", "instant": true},
        {"refId": "DOWN", "datasource": reference(&unreachable), "expr": "up", "instant": true},
        {"refId": "SLOW", "datasource": reference(&slow), "expr": "up", "instant": true},
        {"refId": "EMPTY", "datasource": reference(&good), "expr": "", "instant": true},
    ]});
    let started = tokio::time::Instant::now();
    let answer = json_of(&query(&service, org, body).await);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout bounds the request"
    );
    let results = &answer["results"];
    assert_eq!(results["OK"]["status"], 200);
    assert_eq!(results["OK"]["frames"].as_array().map(Vec::len), Some(2));
    assert_eq!(results["BAD"]["status"], 400);
    assert!(
        results["BAD"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("bad_data:")),
        "{}",
        results["BAD"]
    );
    assert_eq!(results["DOWN"]["status"], 502);
    assert_eq!(results["SLOW"]["status"], 504);
    assert_eq!(results["EMPTY"]["status"], 400);

    let health = service
        .health(org, &DataSourceKey::Uid(unreachable.uid.clone()))
        .await
        .expect("health");
    assert_eq!(health.status, HealthStatus::Error);
    assert!(
        health
            .message
            .ends_with("There was an error returned querying the Prometheus API.")
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_custom_headers_reach_the_server() {
    let options = PrometheusOptions {
        basic_auth: true,
        ..PrometheusOptions::default()
    };
    let Some(prometheus) = TestPrometheus::start(&data(), options).await else {
        return;
    };
    let (_db, service) = sqlite_instance().await;
    let org = OrgId(1);
    let basic = create(
        &service,
        org,
        json!({"name": "Basic", "type": "prometheus", "url": prometheus.url(),
        "basicAuth": true, "basicAuthUser": BASIC_AUTH_USER,
        "secureJsonData": {"basicAuthPassword": BASIC_AUTH_PASSWORD}}),
    )
    .await;
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{BASIC_AUTH_USER}:{BASIC_AUTH_PASSWORD}"),
    );
    let header = create(
        &service,
        org,
        json!({"name": "Header", "type": "prometheus", "url": prometheus.url(),
        "jsonData": {"httpHeaderName1": "Authorization"},
        "secureJsonData": {"httpHeaderValue1": format!("Basic {token}")}}),
    )
    .await;
    let wrong = create(
        &service,
        org,
        json!({"name": "Wrong", "type": "prometheus", "url": prometheus.url(),
        "basicAuth": true, "basicAuthUser": BASIC_AUTH_USER,
        "secureJsonData": {"basicAuthPassword": "not the password"}}),
    )
    .await;
    let none = create(
        &service,
        org,
        json!({"name": "None", "type": "prometheus", "url": prometheus.url()}),
    )
    .await;
    let instant = |ds: &tandem_datasources::DataSource, ref_id: &str| json!({"refId": ref_id, "datasource": reference(ds), "expr": "tandem_value{instance=\"a\"}", "instant": true});
    let body = json!({"from": ms(T0), "to": ms(T0 + 600), "queries": [
        instant(&basic, "BASIC"), instant(&header, "HEADER"), instant(&wrong, "WRONG"), instant(&none, "NONE"),
    ]});
    let answer = json_of(&query(&service, org, body).await);
    let results = &answer["results"];
    for ref_id in ["BASIC", "HEADER"] {
        assert_eq!(
            results[ref_id]["status"], 200,
            "{ref_id}: {}",
            results[ref_id]
        );
        assert_eq!(
            results[ref_id]["frames"][0]["data"]["values"][1][0],
            json!(40.0)
        );
    }
    for ref_id in ["WRONG", "NONE"] {
        assert_eq!(
            results[ref_id]["status"], 401,
            "{ref_id}: {}",
            results[ref_id]
        );
    }
    let healthy = service
        .health(org, &DataSourceKey::Uid(basic.uid.clone()))
        .await
        .expect("health");
    assert_eq!(healthy.status, HealthStatus::Ok);
    let refused = service
        .health(org, &DataSourceKey::Uid(wrong.uid.clone()))
        .await
        .expect("health");
    assert_eq!(refused.status, HealthStatus::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_skipped_for_another() {
    // Something else listens on the first port offered (and never answers).
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = squatter.local_addr().expect("addr").port();
    let free = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let Some(prometheus) =
        TestPrometheus::start_on_ports(&data(), PrometheusOptions::default(), [taken, free]).await
    else {
        return;
    };
    assert_eq!(prometheus.url(), format!("http://127.0.0.1:{free}"));
    let answer = reqwest::get(format!(
        "{}/api/v1/query?query=tandem_value&time={}",
        prometheus.url(),
        T0 + 600
    ))
    .await
    .expect("query");
    assert!(answer.status().is_success());
    drop(squatter);
}
