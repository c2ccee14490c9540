//! Helpers shared by the test modules: credentials, requests as the admin or with a
//! session, logins and users; one of each kind of object for the tests that walk the
//! route table ([`fixtures`]), and a snapshot of every content table to tell that a
//! request wrote nothing ([`digest`]).

pub(crate) mod digest;
pub(crate) mod fixtures;

use base64::Engine;
use serde_json::{Value, json};
use tandem_http::testkit::http::{self, ADMIN, HttpResponse};

/// `Authorization: Basic` for `login` and `password`.
pub(crate) fn basic(login: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Basic {encoded}")
}

/// Sends `method url{path}` with `authorization` and a JSON `body` (`Value::Null`: none).
pub(crate) async fn send(
    method: &str,
    url: &str,
    path: &str,
    authorization: &str,
    body: Value,
) -> HttpResponse {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let headers = [
        ("authorization", authorization),
        ("content-type", "application/json"),
    ];
    http::request(method, &format!("{url}{path}"), &headers, body)
        .await
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// Sends as user `login`, whose password is `"<login> password"` (what the tests give
/// the users they create).
pub(crate) async fn as_user(
    login: &str,
    method: &str,
    url: &str,
    path: &str,
    body: Value,
) -> HttpResponse {
    send(
        method,
        url,
        path,
        &basic(login, &format!("{login} password")),
        body,
    )
    .await
}

/// Sends as the built-in admin.
pub(crate) async fn as_admin(method: &str, url: &str, path: &str, body: Value) -> HttpResponse {
    send(method, url, path, ADMIN.1, body).await
}

/// Sends as the built-in admin and insists on a 2xx answer.
pub(crate) async fn as_admin_ok(method: &str, url: &str, path: &str, body: Value) -> HttpResponse {
    let response = as_admin(method, url, path, body).await;
    assert!(
        response.status < 300,
        "{method} {path}: {} {}",
        response.status,
        response.text()
    );
    response
}

/// `GET url{path}` with a session cookie.
pub(crate) async fn get_with_session(url: &str, path: &str, token: &str) -> HttpResponse {
    let cookie = format!("grafana_session={token}");
    http::request("GET", &format!("{url}{path}"), &[("cookie", &cookie)], "")
        .await
        .expect("request")
}

/// Checks a status and Grafana's JSON error (or message) body.
#[track_caller]
pub(crate) fn check(response: &HttpResponse, status: u16, message: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "a JSON body: {:?}",
        response.headers
    );
    assert_eq!(response.json()["message"], message, "{}", response.text());
}

/// The value of cookie `name` set by `response`, if it sets one (an empty value, which
/// clears the cookie, counts as none).
pub(crate) fn set_cookie(response: &HttpResponse, name: &str) -> Option<String> {
    response
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (key, value) = pair.split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// `POST /login` through `url`, whatever the answer.
pub(crate) async fn login_response(url: &str, user: &str, password: &str) -> HttpResponse {
    let body = json!({"user": user, "password": password}).to_string();
    http::request(
        "POST",
        &format!("{url}/login"),
        &[("content-type", "application/json")],
        body,
    )
    .await
    .expect("POST /login")
}

/// Opens a session for `user` through `url`; returns its token.
pub(crate) async fn login(url: &str, user: &str, password: &str) -> String {
    let response = login_response(url, user, password).await;
    assert_eq!(response.status, 200, "{}", response.text());
    set_cookie(&response, "grafana_session").expect("a session cookie")
}

/// Creates a Viewer `login` (email `<login>@example.com`) through `url`; returns its id.
pub(crate) async fn create_user(url: &str, login: &str, password: &str) -> i64 {
    let body = json!({
        "name": format!("{login} name"),
        "email": format!("{login}@example.com"),
        "login": login,
        "password": password,
    });
    let response = as_admin("POST", url, "/api/admin/users", body).await;
    check(&response, 200, "User created");
    assert!(
        response.json()["uid"]
            .as_str()
            .is_some_and(|uid| !uid.is_empty()),
        "{}",
        response.text()
    );
    response.json()["id"].as_i64().expect("a user id")
}
