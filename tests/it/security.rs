//! Secrets stay secret: session tokens, passwords, their hashes, service-account keys and
//! the secrets of data sources and contact points never appear in the server's logs (at
//! debug level) or in its answers, except a new service-account key, once, in the answer
//! that creates it.

use tandem::http::testkit::ServerProcess;
use tandem::http::testkit::http::{self, HttpResponse};
use tandem::storage::Backend;
use tandem::storage::testkit::TestDatabase;

async fn call(method: &str, url: &str, auth: &str, body: serde_json::Value) -> HttpResponse {
    let headers = [
        ("authorization", auth),
        ("content-type", "application/json"),
    ];
    http::request(method, url, &headers, body.to_string())
        .await
        .expect("request")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_logs_or_answers() {
    let test = TestDatabase::create(Backend::Sqlite).await.expect("sqlite");
    let admin_password = "Adm1n-S3cret-Pw";
    let secret_key = "k3y-Never-Logged-0123456789";
    let smtp_password = "Smtp-Pa55-Qrs";
    let mut env = tandem::http::testkit::database_env(&test.settings());
    env.extend([
        ("GF_LOG_LEVEL".to_owned(), "debug".to_owned()),
        ("GF_SERVER_ROUTER_LOGGING".to_owned(), "true".to_owned()),
        (
            "GF_SECURITY_ADMIN_PASSWORD".to_owned(),
            admin_password.to_owned(),
        ),
        ("GF_SECURITY_SECRET_KEY".to_owned(), secret_key.to_owned()),
        ("GF_SMTP_PASSWORD".to_owned(), smtp_password.to_owned()),
    ]);
    let mut server = ServerProcess::spawn(&env);
    server
        .wait_healthy(std::time::Duration::from_secs(60))
        .await;
    let url = server.url();
    let admin = basic("admin", admin_password);

    let login = http::request(
        "POST",
        &format!("{url}/login"),
        &[("content-type", "application/json")],
        serde_json::json!({"user": "admin", "password": admin_password}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(login.status, 200);
    let cookie = login
        .headers
        .get_all("set-cookie")
        .iter()
        .find_map(|v| {
            v.to_str()
                .ok()?
                .strip_prefix("grafana_session=")
                .map(|rest| rest.split(';').next().unwrap().to_owned())
        })
        .expect("session cookie");
    let token_hash = tandem::sessions::hash_session_token(&cookie, secret_key);

    let user_password = "Us3r-Pa55word-Xyz";
    let created = call("POST", &format!("{url}/api/admin/users"), &admin, serde_json::json!({"login": "erin", "email": "erin@example.com", "password": user_password})).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let new_password = "N3w-Pa55word-Abc";
    let changed = call(
        "PUT",
        &format!("{url}/api/user/password"),
        &basic("erin", user_password),
        serde_json::json!({"oldPassword": user_password, "newPassword": new_password}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    let failed = call(
        "GET",
        &format!("{url}/api/user"),
        &basic("erin", "wrong-Guess-123"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(failed.status, 401);

    let account = call(
        "POST",
        &format!("{url}/api/serviceaccounts"),
        &admin,
        serde_json::json!({"name": "robot", "role": "Editor"}),
    )
    .await;
    assert_eq!(account.status, 201, "{}", account.text());
    let account_id = account.json()["id"].as_i64().unwrap();
    let token = call(
        "POST",
        &format!("{url}/api/serviceaccounts/{account_id}/tokens"),
        &admin,
        serde_json::json!({"name": "ci"}),
    )
    .await;
    assert_eq!(token.status, 200, "{}", token.text());
    let key = token.json()["key"]
        .as_str()
        .expect("the key, shown once")
        .to_owned();
    let used = call(
        "GET",
        &format!("{url}/api/org"),
        &format!("Bearer {key}"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(used.status, 200, "{}", used.text());

    // A data source's and a contact point's secrets, each sent once to a port where
    // nothing listens, so they pass through the code that uses them and its error logs.
    let ds_password = "Ds-Ba5ic-Pw-Lmn";
    let ds_header = "Ds-H3ader-Value-Opq";
    let source = call(
        "POST",
        &format!("{url}/api/datasources"),
        &admin,
        serde_json::json!({
            "name": "secret-prom", "type": "prometheus", "access": "proxy",
            "url": "http://127.0.0.1:9/prom", "basicAuth": true, "basicAuthUser": "prom",
            "jsonData": {"httpHeaderName1": "X-Scope-OrgID"},
            "secureJsonData": {"basicAuthPassword": ds_password, "httpHeaderValue1": ds_header},
        }),
    )
    .await;
    assert_eq!(source.status, 200, "{}", source.text());
    let ds_uid = source.json()["datasource"]["uid"]
        .as_str()
        .expect("uid")
        .to_owned();
    let checked = call(
        "GET",
        &format!("{url}/api/datasources/uid/{ds_uid}/health"),
        &admin,
        serde_json::json!({}),
    )
    .await;
    assert!(checked.status < 500, "{}", checked.text());
    let queried = call(
        "POST",
        &format!("{url}/api/ds/query"),
        &admin,
        serde_json::json!({"from": "now-5m", "to": "now", "queries": [
            {"refId": "A", "datasource": {"uid": ds_uid, "type": "prometheus"}, "expr": "up"}]}),
    )
    .await;
    // Grafana answers 400 when a query failed, with the error inside `results`.
    assert_eq!(queried.status, 400, "{}", queried.text());
    assert!(queried.json()["results"]["A"]["error"].is_string());
    let hook_password = "H00k-Pa55-Rst";
    let hook_credentials = "H00k-B3arer-Uvw";
    let point = call(
        "POST",
        &format!("{url}/api/v1/provisioning/contact-points"),
        &admin,
        serde_json::json!({"name": "secret-hook", "type": "webhook", "settings": {
            "url": "http://127.0.0.1:9/hook", "username": "hook", "password": hook_password}}),
    )
    .await;
    assert_eq!(point.status, 202, "{}", point.text());
    let tested = call(
        "POST",
        &format!("{url}/api/alertmanager/grafana/config/api/v1/receivers/test"),
        &admin,
        serde_json::json!({"receivers": [{"name": "secret-hook", "grafana_managed_receiver_configs": [
            {"name": "secret-hook", "type": "webhook", "settings": {
                "url": "http://127.0.0.1:9/hook", "authorization_scheme": "Bearer",
                "authorization_credentials": hook_credentials}}]}]}),
    )
    .await;
    assert!(tested.status < 500, "{}", tested.text());

    // Everything a client can read back afterwards.
    let cookie_header = format!("grafana_session={cookie}");
    let mut answers = Vec::new();
    for path in [
        "/api/user".to_owned(),
        "/api/user/auth-tokens".to_owned(),
        "/api/users/search".to_owned(),
        "/api/org/users".to_owned(),
        format!("/api/serviceaccounts/{account_id}"),
        format!("/api/serviceaccounts/{account_id}/tokens"),
        "/api/serviceaccounts/search".to_owned(),
        "/api/admin/users/1/auth-tokens".to_owned(),
        "/api/admin/settings".to_owned(),
        "/api/datasources".to_owned(),
        format!("/api/datasources/uid/{ds_uid}"),
        "/api/v1/provisioning/contact-points".to_owned(),
    ] {
        let response = http::request(
            "GET",
            &format!("{url}{path}"),
            &[("cookie", &cookie_header)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        answers.push((path, response.text()));
    }
    let secrets = [
        ("the admin password", admin_password),
        ("a user password", user_password),
        ("a changed password", new_password),
        ("a wrong password", "wrong-Guess-123"),
        ("the secret key", secret_key),
        ("the SMTP password", smtp_password),
        ("the session token", cookie.as_str()),
        ("the session token hash", token_hash.as_str()),
        ("the service-account key", key.as_str()),
        ("the service-account secret", &key[5..37]),
        ("a data source's password", ds_password),
        ("a data source's header value", ds_header),
        ("a contact point's password", hook_password),
        ("a contact point's credentials", hook_credentials),
    ];
    let logs = server.logs();
    assert!(
        logs.contains("request"),
        "router logging is on, so the log is not empty:\n{logs}"
    );
    for (what, secret) in secrets {
        assert!(!logs.contains(secret), "{what} appears in the log:\n{logs}");
        for (path, body) in &answers {
            assert!(!body.contains(secret), "{what} appears in {path}: {body}");
        }
    }
    // The effective configuration, by section, with its secrets masked.
    let settings: serde_json::Value = answers
        .iter()
        .find(|(path, _)| path == "/api/admin/settings")
        .map(|(_, body)| serde_json::from_str(body).expect("JSON"))
        .expect("the settings answer");
    assert_eq!(
        settings["security"]["secret_key"], "*********",
        "{settings}"
    );
    assert_eq!(settings["security"]["admin_password"], "*********");
    assert_eq!(settings["smtp"]["password"], "*********");
    assert_eq!(settings["server"]["http_port"], "0", "{settings}");
    assert_eq!(settings["database"]["type"], "sqlite3", "{settings}");
    assert_eq!(settings["security"]["admin_user"], "admin");
    let denied = call(
        "GET",
        &format!("{url}/api/admin/settings"),
        &basic("erin", new_password),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(denied.status, 403, "server admins only: {}", denied.text());
    // A contact point's secret fields are answered, as Grafana's, only as "[REDACTED]".
    let points: serde_json::Value = answers
        .iter()
        .find(|(path, _)| path == "/api/v1/provisioning/contact-points")
        .map(|(_, body)| serde_json::from_str(body).expect("JSON"))
        .expect("the contact points answer");
    let hook = points
        .as_array()
        .and_then(|points| points.iter().find(|p| p["name"] == "secret-hook"))
        .expect("the webhook contact point");
    assert_eq!(hook["settings"]["password"], "[REDACTED]", "{hook}");
    for (path, body) in &answers {
        if path == "/api/admin/settings" || path == "/api/v1/provisioning/contact-points" {
            continue;
        }
        for field in ["\"password\"", "\"salt\"", "\"authToken\"", "\"hash\""] {
            assert!(!body.contains(field), "{path} has a {field} field: {body}");
        }
    }
}
