use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};
use tandem_storage::Backend;

async fn one_instance() -> TestCluster {
    TestCluster::start(Backend::Sqlite, 1)
        .await
        .expect("sqlite needs no service")
}

#[track_caller]
fn check_json_error(response: &HttpResponse, status: u16, message: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "error bodies are JSON: {:?}",
        response.headers
    );
    assert_eq!(response.json()["message"], message, "{}", response.text());
}

tandem_http::cluster_tests!(
    health_reports_the_database_and_version,
    1,
    |cluster: TestCluster| async move {
        let response = http::get(&format!("{}/api/health", cluster.url(0))).await;
        assert_eq!(response.status, 200);
        let body = response.json();
        assert_eq!(body["database"], "ok");
        assert_eq!(body["version"], "12.1.0");
        assert!(body["commit"].as_str().is_some_and(|c| !c.is_empty()));
        assert_eq!(response.header("cache-control"), Some("no-store"));
        cluster.shutdown().await;
    }
);

#[tokio::test]
async fn frontend_settings_carry_the_build_info_clients_read() {
    let cluster = one_instance().await;
    let response = http::get_as_admin(&format!("{}/api/frontend/settings", cluster.url(0))).await;
    assert_eq!(response.status, 200);
    let build = &response.json()["buildInfo"];
    assert_eq!(build["version"], "12.1.0");
    for key in ["commit", "edition", "env"] {
        assert!(
            build[key].as_str().is_some_and(|v| !v.is_empty()),
            "buildInfo.{key}: {build}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let cluster = one_instance().await;
    let base = cluster.url(0);
    for path in [
        "/api/nope",
        "/api/dashboards/uid/x/unknown",
        "/not-an-api-path",
    ] {
        check_json_error(&http::get(&format!("{base}{path}")).await, 404, "Not found");
    }
    let response = http::request("POST", &format!("{base}/api/health"), &[], "{}")
        .await
        .unwrap();
    check_json_error(&response, 405, "Method Not Allowed");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_trailing_slash_reaches_the_same_route() {
    let cluster = one_instance().await;
    let response = http::get(&format!("{}/api/health/", cluster.url(0))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["database"], "ok");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let cluster = TestCluster::start_with(Backend::Sqlite, 1, |_, settings| {
        settings.server.max_request_body_bytes = 1024;
    })
    .await
    .unwrap();
    let base = cluster.url(0);
    let big = vec![b'x'; 4096];
    for path in ["/api/health", "/api/anything"] {
        let response = http::request("POST", &format!("{base}{path}"), &[], big.clone())
            .await
            .unwrap();
        assert_eq!(response.status, 413, "{}", response.text());
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("1024")
        );
    }
    // The default limit is 10 MB: 11 MB is refused, the server stays up.
    let default = one_instance().await;
    let huge = vec![b'x'; 11 * 1024 * 1024];
    let response = http::request("POST", &format!("{}/api/x", default.url(0)), &[], huge)
        .await
        .unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(
        http::get(&format!("{}/api/health", default.url(0)))
            .await
            .status,
        200
    );
    cluster.shutdown().await;
    default.shutdown().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let cluster = one_instance().await;
    let base = cluster.url(0);
    for _ in 0..3 {
        assert_eq!(http::get(&format!("{base}/api/health")).await.status, 200);
    }
    assert_eq!(http::get(&format!("{base}/api/missing")).await.status, 404);
    let response = http::get(&format!("{base}/metrics")).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text();
    let line = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .map(str::to_owned)
    };
    let health = line(
        r#"grafana_http_request_duration_seconds_count{handler="/api/health",method="GET",status_code="200"}"#,
    )
    .unwrap_or_else(|| panic!("no health histogram in:\n{text}"));
    assert!(health.ends_with(" 3"), "{health}");
    let unmatched = line(
        r#"grafana_http_request_duration_seconds_count{handler="unknown",method="GET",status_code="404"}"#,
    );
    assert!(
        unmatched.is_some_and(|l| l.ends_with(" 1")),
        "unknown paths share one label:\n{text}"
    );
    assert!(
        text.contains(r#"grafana_http_request_duration_seconds_bucket{handler="/api/health",method="GET",status_code="200",le="0.005"}"#),
        "latency histogram:\n{text}"
    );
    assert!(
        line(r#"grafana_api_response_status_total{code="200"}"#).is_some_and(|l| l.ends_with(" 3")),
        "/api answers by status:\n{text}"
    );
    assert!(
        line(r#"grafana_api_response_status_total{code="404"}"#).is_some_and(|l| l.ends_with(" 1")),
        "/api answers by status:\n{text}"
    );
    for metric in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "grafana_build_info{",
        "grafana_http_request_in_flight 0",
    ] {
        assert!(text.contains(metric), "{metric} missing:\n{text}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_backup_tools_walk_answer_in_grafanas_shape() {
    let cluster = one_instance().await;
    let url = cluster.url(0);
    for (path, expected) in [
        ("/api/auth/keys", serde_json::json!([])),
        ("/api/annotations?limit=100", serde_json::json!([])),
        ("/api/dashboard/snapshots", serde_json::json!([])),
        ("/api/plugins?embedded=0", serde_json::json!([])),
        ("/api/alert-notifications", serde_json::json!([])),
        (
            "/api/library-elements?perPage=100&page=1",
            serde_json::json!({"result": {"totalCount": 0, "elements": [], "page": 1, "perPage": 100}}),
        ),
    ] {
        let response = http::get_as_admin(&format!("{url}{path}")).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(response.json(), expected, "{path}");
        let anonymous = http::get(&format!("{url}{path}")).await;
        check_json_error(&anonymous, 401, "Unauthorized");
    }
    cluster.shutdown().await;
}
