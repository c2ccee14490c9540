//! Grafana's CSRF check through two instances: a request with the session cookie from
//! another site's page is refused with 403 `origin not allowed` and changes nothing (read
//! back on the other instance), while the same request from the server's own host, without
//! `Origin`, from a trusted origin, or with a bearer key instead of the cookie goes through.

use serde_json::{Value, json};
use tandem_http::testkit::TestCluster;
use tandem_http::testkit::http::{self, HttpResponse};

use crate::common::{as_admin, as_admin_ok, check, login};

/// A page of another site.
const FOREIGN: &str = "http://evil.example";
/// The host `[security] csrf_trusted_origins` names in these tests.
const TRUSTED: &str = "https://trusted.example:8443";

/// How a request proves who sends it.
#[derive(Clone, Copy)]
enum Credentials<'a> {
    Cookie(&'a str),
    Bearer(&'a str),
}

/// Sends `method url{path}` with `credentials`, `origin` (`None`: no header) and a JSON
/// `body` (`Value::Null`: none).
async fn send(
    method: &str,
    url: &str,
    path: &str,
    credentials: Credentials<'_>,
    origin: Option<&str>,
    body: Value,
) -> HttpResponse {
    let authorization;
    let mut headers = vec![("content-type", "application/json")];
    match credentials {
        Credentials::Cookie(cookie) => headers.push(("cookie", cookie)),
        Credentials::Bearer(key) => {
            authorization = format!("Bearer {key}");
            headers.push(("authorization", &authorization));
        }
    }
    if let Some(origin) = origin {
        headers.push(("origin", origin));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    http::request(method, &format!("{url}{path}"), &headers, body)
        .await
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// The folder's title as the other instance reads it; `None` when it does not exist.
async fn title(url: &str, uid: &str) -> Option<String> {
    let response = as_admin("GET", url, &format!("/api/folders/{uid}"), Value::Null).await;
    match response.status {
        200 => Some(
            response.json()["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        404 => None,
        other => panic!("GET /api/folders/{uid}: {other} {}", response.text()),
    }
}

#[track_caller]
fn refused(response: &HttpResponse) {
    check(response, 403, "origin not allowed");
}

#[track_caller]
fn passed(response: &HttpResponse) {
    assert!(
        response.status < 300,
        "{} {}",
        response.status,
        response.text()
    );
}

tandem_http::cluster_tests!(
    cookie_requests_from_a_foreign_origin_are_refused_and_change_nothing,
    2,
    |_, settings| settings.auth.csrf.trusted_origins = vec!["trusted.example".to_owned()],
    |cluster: TestCluster| async move {
        let (a, b) = (cluster.url(0), cluster.url(1));
        let cookie = format!("grafana_session={}", login(&a, "admin", "admin").await);
        let session = Credentials::Cookie(&cookie);
        // The server's own host; the port does not count, as in Grafana.
        let host = a
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap_or_default();
        let own = format!("http://{host}:9");
        let account = as_admin_ok(
            "POST",
            &a,
            "/api/serviceaccounts",
            json!({"name": "csrf-robot", "role": "Admin"}),
        )
        .await;
        let id = account.json()["id"].as_i64().expect("an id");
        let token = as_admin_ok(
            "POST",
            &a,
            &format!("/api/serviceaccounts/{id}/tokens"),
            json!({"name": "csrf"}),
        )
        .await;
        let key = token.json()["key"].as_str().expect("a key").to_owned();
        let create = json!({"uid": "csrf", "title": "Created"});
        let rename = |title: &str| json!({"title": title, "overwrite": true});

        // POST: refused from another site, accepted from the server's own host.
        let post = "/api/folders";
        refused(&send("POST", &a, post, session, Some(FOREIGN), create.clone()).await);
        assert_eq!(
            title(&b, "csrf").await,
            None,
            "the refused POST created nothing"
        );
        passed(&send("POST", &a, post, session, Some(&own), create).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("Created"));

        // PUT: refused from another site; accepted without Origin, from a trusted origin
        // (its port does not count either), and with a bearer key from anywhere.
        let put = "/api/folders/csrf";
        refused(&send("PUT", &a, put, session, Some(FOREIGN), rename("Evil")).await);
        refused(&send("PUT", &a, put, session, Some("null"), rename("Evil")).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("Created"));
        passed(&send("PUT", &a, put, session, None, rename("No origin")).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("No origin"));
        passed(&send("PUT", &a, put, session, Some(TRUSTED), rename("Trusted")).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("Trusted"));
        let bearer = Credentials::Bearer(&key);
        passed(&send("PUT", &a, put, bearer, Some(FOREIGN), rename("Bearer")).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("Bearer"));

        // GET is checked too, as in Grafana (some GETs act); HEAD is not.
        refused(&send("GET", &a, put, session, Some(FOREIGN), Value::Null).await);
        passed(&send("GET", &a, put, session, Some(&own), Value::Null).await);
        passed(&send("GET", &a, put, bearer, Some(FOREIGN), Value::Null).await);
        passed(&send("HEAD", &a, put, session, Some(FOREIGN), Value::Null).await);
        // The check comes before routing and authentication, as Grafana's middleware does.
        refused(
            &send(
                "GET",
                &a,
                "/api/nothing",
                session,
                Some(FOREIGN),
                Value::Null,
            )
            .await,
        );
        let stale = Credentials::Cookie("grafana_session=stale");
        refused(&send("POST", &a, post, stale, Some(FOREIGN), Value::Null).await);

        // DELETE: refused from another site, accepted from the server's own host.
        refused(&send("DELETE", &a, put, session, Some(FOREIGN), Value::Null).await);
        assert_eq!(title(&b, "csrf").await.as_deref(), Some("Bearer"));
        passed(&send("DELETE", &a, put, session, Some(&own), Value::Null).await);
        assert_eq!(title(&b, "csrf").await, None);

        // POST /login is checked like any request: a browser with a session cookie is
        // refused from another site; without one it may log in from anywhere (Grafana's
        // default; `csrf_always_check` closes that).
        let credentials = json!({"user": "admin", "password": "admin"});
        refused(
            &send(
                "POST",
                &a,
                "/login",
                session,
                Some(FOREIGN),
                credentials.clone(),
            )
            .await,
        );
        let anonymous = http::request(
            "POST",
            &format!("{a}/login"),
            &[("content-type", "application/json"), ("origin", FOREIGN)],
            credentials.to_string(),
        )
        .await
        .expect("POST /login");
        passed(&anonymous);
        cluster.shutdown().await;
    }
);

tandem_http::cluster_tests!(
    always_check_refuses_a_foreign_origin_without_the_cookie_too,
    1,
    |_, settings| settings.auth.csrf.always_check = true,
    |cluster: TestCluster| async move {
        let url = cluster.url(0);
        let body = json!({"user": "admin", "password": "admin"}).to_string();
        let login = |origin: &'static str| {
            let body = body.clone();
            let url = url.clone();
            async move {
                http::request(
                    "POST",
                    &format!("{url}/login"),
                    &[("content-type", "application/json"), ("origin", origin)],
                    body,
                )
                .await
                .expect("POST /login")
            }
        };
        refused(&login(FOREIGN).await);
        passed(&login("http://127.0.0.1").await);
        let basic = as_admin("GET", &url, "/api/folders", Value::Null).await;
        passed(&basic);
        cluster.shutdown().await;
    }
);
