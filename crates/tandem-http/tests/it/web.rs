//! The pages at the front door: the status page at `/` and the login form at `GET /login`.

use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};
use tandem_storage::Backend;

use crate::common::{basic, get_with_session, login, send};

/// The admin's password and the secret key of the status page's cluster, which no page may
/// show.
const PASSWORD: &str = "page-test-password-7f3a";
const SECRET_KEY: &str = "page-test-secret-key-91c2";

/// Checks what every page answer carries: 200, HTML, a script policy by nonce that matches
/// the page's one inline script and style and nothing else, and no sniffing or framing
/// (the framing header comes from the edge, with `[security] allow_embedding` off).
#[track_caller]
fn check_page(response: &HttpResponse) -> String {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-frame-options"), Some("deny"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let policy = response
        .header("content-security-policy")
        .expect("a Content-Security-Policy");
    let nonce = policy
        .split(';')
        .map(str::trim)
        .find_map(|directive| directive.strip_prefix("script-src 'nonce-"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("script-src allows one nonce and nothing else: {policy}"));
    assert!(nonce.len() >= 16, "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    let page = response.text();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert_eq!(
        page.matches("<script").count(),
        1,
        "one inline script: {page}"
    );
    assert!(
        page.contains(&format!("<script nonce=\"{nonce}\">")),
        "the script carries the policy's nonce: {page}"
    );
    assert!(
        page.contains(&format!("<style nonce=\"{nonce}\">")),
        "{page}"
    );
    assert!(
        !page.contains(" src="),
        "no external script or image: {page}"
    );
    assert!(!page.contains("<link"), "no external stylesheet: {page}");
    assert!(
        !page.contains(" style="),
        "no inline style attribute: {page}"
    );
    page
}

/// What must never reach a page: the cluster's addresses and ids (for signed-in users only,
/// and then only through `/api/cluster`), passwords, the secret key, session tokens.
#[track_caller]
fn check_nothing_secret(page: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !page.contains(secret.as_str()),
            "the page shows {secret:?}: {page}"
        );
    }
}

tandem_http::cluster_tests!(
    the_status_page_shows_health_and_version_and_no_secrets,
    2,
    |_, settings| {
        settings.identity.admin_password = PASSWORD.to_owned();
        settings.identity.secret_key = SECRET_KEY.to_owned();
    },
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let anonymous = http::get(&format!("{url}/")).await;
        let page = check_page(&anonymous);
        assert!(page.contains("<title>Tandem</title>"), "{page}");
        assert!(
            page.contains(r#"<dd id="database" class="ok">ok</dd>"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<dd id="live" class="ok">ok</dd>"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<span id="version">12.1.0</span>"#),
            "{page}"
        );
        assert!(page.contains(r#"<a href="/login">"#), "{page}");
        assert!(page.contains(r#"<a href="/api/health">"#), "{page}");
        assert!(page.contains(r#"<a href="/metrics">"#), "{page}");
        // The page links the OpenAPI document only when the server has one.
        let openapi = http::get(&format!("{url}/api/openapi.json")).await.status;
        assert_eq!(page.contains("/api/openapi.json"), openapi == 200, "{page}");
        // The cluster view comes from /api/cluster, which needs a signed-in caller.
        assert!(page.contains(r#"<section id="cluster" hidden>"#), "{page}");
        assert_eq!(http::get(&format!("{url}/api/cluster")).await.status, 401);

        let token = login(&cluster.url(1), "admin", PASSWORD).await;
        let signed_in = get_with_session(&url, "/", &token).await;
        let signed_in_page = check_page(&signed_in);
        let admin = basic("admin", PASSWORD);
        let view = send("GET", &url, "/api/cluster", &admin, serde_json::Value::Null)
            .await
            .json();
        let peers = view["peers"].as_array().expect("peers");
        assert_eq!(peers.len(), 2, "{view}");
        let mut secrets = vec![
            PASSWORD.to_owned(),
            SECRET_KEY.to_owned(),
            token.clone(),
            cluster.server(0).local_addr().to_string(),
        ];
        for peer in peers {
            secrets.push(peer["instanceId"].as_str().expect("an id").to_owned());
            secrets.push(peer["address"].as_str().expect("an address").to_owned());
        }
        // The page itself is the same for everyone; the script fills the cluster view in
        // from /api/cluster with the visitor's own cookie.
        check_nothing_secret(&page, &secrets);
        check_nothing_secret(&signed_in_page, &secrets);
        assert_eq!(
            get_with_session(&url, "/api/cluster", &token).await.status,
            200
        );
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    the_login_form_posts_grafanas_fields_to_post_login,
    1,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let response = http::get(&format!("{url}/login")).await;
        let page = check_page(&response);
        assert!(
            page.contains(r#"<form id="login" method="post" action="/login">"#),
            "{page}"
        );
        assert!(
            page.contains(r#"<input id="user" name="user" type="text""#),
            "{page}"
        );
        assert!(
            page.contains(r#"<input id="password" name="password" type="password""#),
            "{page}"
        );
        assert!(
            page.contains(r#"<button id="submit" type="submit">"#),
            "{page}"
        );
        // The script posts Grafana's JSON body to POST /login.
        assert!(
            page.contains(r#"body: JSON.stringify({ user: form.elements.user.value, password: form.elements.password.value })"#),
            "{page}"
        );
        assert!(
            page.contains(r#""Content-Type": "application/json""#),
            "{page}"
        );
        assert!(
            !page.contains("value=\"admin\""),
            "no credential is prefilled: {page}"
        );
        // What it posts logs in, and the answer names the status page.
        let body = serde_json::json!({"user": "admin", "password": "admin"}).to_string();
        let answer = http::request(
            "POST",
            &format!("{url}/login"),
            &[("content-type", "application/json")],
            body,
        )
        .await
        .expect("POST /login");
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["redirectUrl"], "/");
        // A second GET draws a new nonce.
        let again = http::get(&format!("{url}/login")).await;
        assert_ne!(
            response.header("content-security-policy"),
            again.header("content-security-policy")
        );
        cluster.shutdown().await;
    }
);

#[tokio::test]
async fn the_pages_follow_the_sub_path_of_root_url() {
    let cluster = TestCluster::start_with(Backend::Sqlite, 1, |_, settings| {
        settings.server.root_url = "https://example.com/grafana/".to_owned();
    })
    .await
    .expect("sqlite needs no service");
    let url = cluster.url(0);
    let status = check_page(&http::get(&format!("{url}/")).await);
    assert!(
        status.contains(r#"<body data-base="/grafana">"#),
        "{status}"
    );
    assert!(status.contains(r#"<a href="/grafana/login">"#), "{status}");
    let form = check_page(&http::get(&format!("{url}/login")).await);
    assert!(form.contains(r#"action="/grafana/login""#), "{form}");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_root_url_with_markup_is_escaped() {
    let cluster = TestCluster::start_with(Backend::Sqlite, 1, |_, settings| {
        settings.server.root_url = r#"https://example.com/a"<b>'/"#.to_owned();
    })
    .await
    .expect("sqlite needs no service");
    let url = cluster.url(0);
    for path in ["/", "/login"] {
        let page = check_page(&http::get(&format!("{url}{path}")).await);
        assert!(!page.contains("<b>"), "{page}");
        assert!(!page.contains(r#"a"<"#), "{page}");
        assert!(
            page.contains(r#"data-base="/a&quot;&lt;b&gt;&#39;""#),
            "{page}"
        );
    }
    cluster.shutdown().await;
}

/// Every answer, API and errors included, carries Grafana's security headers; with
/// `[security] allow_embedding` pages may be framed.
#[tokio::test]
async fn every_answer_carries_grafanas_security_headers() {
    let cluster = TestCluster::start_with(Backend::Sqlite, 1, |_, _| {})
        .await
        .expect("sqlite needs no service");
    let url = cluster.url(0);
    for path in ["/", "/api/health", "/api/search", "/api/nope", "/login"] {
        let response = http::get(&format!("{url}{path}")).await;
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(response.header("x-frame-options"), Some("deny"), "{path}");
        assert_eq!(
            response.header("x-xss-protection"),
            Some("1; mode=block"),
            "{path}"
        );
    }
    cluster.shutdown().await;
    let embedding = TestCluster::start_with(Backend::Sqlite, 1, |_, settings| {
        settings.server.allow_embedding = true;
    })
    .await
    .expect("sqlite needs no service");
    for path in ["/", "/api/health"] {
        let response = http::get(&format!("{}{path}", embedding.url(0))).await;
        assert_eq!(response.header("x-frame-options"), None, "{path}");
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    embedding.shutdown().await;
}
