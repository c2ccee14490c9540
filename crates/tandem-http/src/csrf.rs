//! Grafana's CSRF check, as Grafana 12 makes it (`pkg/middleware/csrf`): a request that
//! carries the session cookie and an `Origin` header must come from a page of the host it
//! was sent to, or of a host `[security] csrf_trusted_origins` trusts; otherwise it is
//! refused with 403 `origin not allowed` before anything else looks at it.
//!
//! As in Grafana, only `HEAD`, `OPTIONS` and `TRACE` pass unchecked: `GET` is checked too,
//! because some `GET`s act (`/logout`, `/api/snapshots-delete/:key`).
//! A request without `Origin` (a script, a server, a same-origin navigation) passes, and so
//! does one without the session cookie (a bearer or Basic client, which a foreign page
//! cannot make a browser send), unless `csrf_always_check` is set.
//! The host compared is the request's `Host` (or the authority of an HTTP/2 request), port
//! ignored; behind a proxy that rewrites `Host`, `csrf_additional_headers` names the headers
//! (`X-Forwarded-Host`) that carry the browser's.
//!
//! Where Tandem differs from Grafana, on purpose:
//! - the WebSocket upgrades of Live are left to Live's own `Origin` check
//!   (`shared::live::check_origin`), which applies with or without a cookie and
//!   honours `[live] allowed_origins`; in Grafana both checks apply, so an origin that
//!   `allowed_origins` lists is still refused to a browser with a session there;
//! - host names are compared without regard to case, and a trusted origin written as a
//!   URL (`https://a.example`) counts by its host name, where Grafana compares the text and
//!   never matches a URL;
//! - an `Origin` without a host (`null`, sent by sandboxed pages and after cross-site
//!   redirects) is never trusted, where Grafana trusts it when `csrf_additional_headers` is
//!   set and the request lacks those headers.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::shared::live::ORIGIN_CHECKED_ROUTES;
use crate::{ApiError, AppState, AuthSettings};

/// Refuses a request that fails the check, with Grafana's status and message.
pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let own_check = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| ORIGIN_CHECKED_ROUTES.contains(&path.as_str()));
    if !own_check {
        let authority = request.uri().authority().map(|a| a.as_str());
        if let Err(err) = verdict(&state.auth, request.method(), request.headers(), authority) {
            tracing::info!(
                method = %request.method(),
                path = request.uri().path(),
                origin = request
                    .headers()
                    .get(header::ORIGIN)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default(),
                status = err.code.as_u16(),
                "refused a request by the CSRF check"
            );
            return err.into_response();
        }
    }
    next.run(request).await
}

/// Whether a request with these method and headers passes; `authority` is the request
/// URI's, which stands for `Host` in HTTP/2.
fn verdict(
    settings: &AuthSettings,
    method: &Method,
    headers: &HeaderMap,
    authority: Option<&str>,
) -> Result<(), ApiError> {
    let csrf = &settings.csrf;
    if !csrf.always_check && crate::auth::cookie(headers, &settings.login_cookie_name).is_none() {
        return Ok(());
    }
    if [Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method) {
        return Ok(());
    }
    // Grafana reads the host before it looks for an Origin, so a malformed Host is a 400
    // even without one.
    let host = headers
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("\u{0}"))
        .or(authority)
        .unwrap_or_default();
    let host = hostname(host).ok_or_else(|| ApiError::bad_request("invalid Host header"))?;
    let origin = match headers.get(header::ORIGIN) {
        None => return Ok(()),
        Some(value) if value.is_empty() => return Ok(()),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(origin_hostname)
            .ok_or_else(|| ApiError::bad_request("invalid Origin header"))?,
    };
    let mut trusted = false;
    for name in &csrf.additional_headers {
        let value = headers
            .get(name.as_str())
            .map(|value| value.to_str().unwrap_or("\u{0}"))
            .unwrap_or_default();
        let named = hostname(value)
            .ok_or_else(|| ApiError::bad_request(format!("invalid {name} header")))?;
        trusted |= !named.is_empty() && named.eq_ignore_ascii_case(origin);
    }
    trusted |= csrf.trusted_origins.iter().any(|entry| {
        let entry = match entry.split_once("://") {
            Some(_) => origin_hostname(entry).unwrap_or_default(),
            None => hostname(entry).unwrap_or_default(),
        };
        !entry.is_empty() && entry.eq_ignore_ascii_case(origin)
    });
    let same_host = !origin.is_empty() && origin.eq_ignore_ascii_case(host);
    if host.is_empty() || !(trusted || same_host) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    Ok(())
}

/// The host of `host[:port]` or `[v6][:port]`, without brackets; `""` for `""`; `None`
/// when it is malformed (several colons outside brackets, an unclosed bracket, a NUL).
fn hostname(authority: &str) -> Option<&str> {
    if authority.contains('\u{0}') {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.starts_with(':')).then_some(inside);
    }
    match authority.split_once(':') {
        Some((_, port)) if port.contains(':') => None,
        Some((host, _)) => Some(host),
        None => Some(authority),
    }
}

/// The host name an `Origin` (`scheme://host[:port]`) names; `""` for an origin without
/// one (`null`); `None` when it cannot be read.
fn origin_hostname(origin: &str) -> Option<&str> {
    if origin
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let Some((_, rest)) = origin.split_once("://") else {
        return Some("");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    hostname(authority)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::CsrfSettings;

    /// The request with `headers` passes (200) or is refused with `expected`.
    #[track_caller]
    fn check(settings: &AuthSettings, method: Method, headers: &[(&str, &str)], expected: u16) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let got = match verdict(settings, &method, &map, None) {
            Ok(()) => 200,
            Err(err) => err.code.as_u16(),
        };
        assert_eq!(got, expected, "{method} {headers:?}");
    }

    const COOKIE: (&str, &str) = ("cookie", "grafana_session=abc");

    /// Grafana's own cases (`csrf_test.go`) and a few more: a request with the session
    /// cookie, `Host` and `Origin` (`""`: no header).
    #[test]
    fn grafanas_cases() {
        let plain = AuthSettings::default();
        let cases = [
            ("GET", "localhost", "http://notLocalhost", 403),
            ("POST", "grafana.org", "https://grafana.com", 403),
            ("TRACE", "localhost", "http://other", 200),
            ("HEAD", "localhost", "http://other", 200),
            ("OPTIONS", "localhost", "http://other", 200),
            ("GET", "localhost:80:80", "", 400),
            ("POST", "localhost", "", 200),
            ("GET", "localhost", "http://localhost", 200),
            ("GET", "localhost:80", "http://localhost:3000", 200),
            ("GET", "[::1]:3000", "http://[::1]:3000", 200),
            ("GET", "[2001:db8::1]", "http://[2001:db8::1]", 200),
            ("POST", "grafana.org", "https://grafana.org", 200),
            ("POST", "Grafana.ORG", "https://grafana.org", 200),
            ("POST", "localhost", "null", 403),
            ("POST", "", "http://localhost", 403),
            ("POST", "localhost", "http://a b", 400),
            ("POST", "localhost", "http://x:1:2", 400),
        ];
        for (method, host, origin, expected) in cases {
            let mut headers = vec![COOKIE];
            if !host.is_empty() {
                headers.push(("host", host));
            }
            if !origin.is_empty() {
                headers.push(("origin", origin));
            }
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            check(&plain, method, &headers, expected);
        }
        // Without the cookie nothing is checked: a bearer client, a page without a session.
        let bearer = ("authorization", "Bearer glsa_x");
        check(
            &plain,
            Method::POST,
            &[bearer, ("host", "a"), ("origin", "http://b")],
            200,
        );
        check(
            &plain,
            Method::GET,
            &[("host", "a"), ("origin", "http://b")],
            200,
        );
        // An empty Origin is no Origin; a rewritten Host is not trusted unless configured.
        check(
            &plain,
            Method::POST,
            &[COOKIE, ("host", "a"), ("origin", "")],
            200,
        );
        let forwarded = ("x-forwarded-host", "grafana.org");
        let origin = ("origin", "https://grafana.org");
        check(
            &plain,
            Method::POST,
            &[COOKIE, ("host", "grafana.localhost"), forwarded, origin],
            403,
        );
    }

    #[test]
    fn trusted_origins_and_additional_headers() {
        let settings = AuthSettings {
            csrf: CsrfSettings {
                trusted_origins: vec![
                    "grafana.com".to_owned(),
                    "https://idp.example:8443/".to_owned(),
                ],
                additional_headers: vec!["X-Forwarded-Host".to_owned()],
                always_check: false,
            },
            ..AuthSettings::default()
        };
        let forwarded = |origin| {
            [
                COOKIE,
                ("host", "grafana.localhost"),
                ("x-forwarded-host", "grafana.org:443"),
                ("origin", origin),
            ]
        };
        check(
            &settings,
            Method::POST,
            &forwarded("https://grafana.org"),
            200,
        );
        check(
            &settings,
            Method::POST,
            &forwarded("https://grafana.com"),
            200,
        );
        check(
            &settings,
            Method::POST,
            &forwarded("https://idp.example"),
            200,
        );
        check(
            &settings,
            Method::POST,
            &forwarded("https://evil.example"),
            403,
        );
        // The hole Grafana leaves: a missing header does not trust `Origin: null`.
        check(
            &settings,
            Method::POST,
            &[COOKIE, ("host", "a"), ("origin", "null")],
            403,
        );
        check(
            &settings,
            Method::POST,
            &[
                COOKIE,
                ("host", "a"),
                ("x-forwarded-host", "b:1:2"),
                ("origin", "http://a"),
            ],
            400,
        );
    }

    #[test]
    fn always_check_checks_requests_without_the_cookie() {
        let settings = AuthSettings {
            csrf: CsrfSettings {
                always_check: true,
                ..CsrfSettings::default()
            },
            ..AuthSettings::default()
        };
        check(
            &settings,
            Method::POST,
            &[("host", "a"), ("origin", "http://b")],
            403,
        );
        check(
            &settings,
            Method::POST,
            &[("host", "a"), ("origin", "http://a")],
            200,
        );
        check(&settings, Method::POST, &[("host", "a")], 200);
    }

    #[test]
    fn the_cookie_is_the_configured_one() {
        let settings = AuthSettings {
            login_cookie_name: "my_session".to_owned(),
            ..AuthSettings::default()
        };
        check(
            &settings,
            Method::POST,
            &[COOKIE, ("host", "a"), ("origin", "http://b")],
            200,
        );
        let mine = ("cookie", "theme=dark; my_session=");
        check(
            &settings,
            Method::POST,
            &[mine, ("host", "a"), ("origin", "http://b")],
            403,
        );
    }

    #[test]
    fn the_routes_left_to_live_are_get_routes() {
        let table = crate::route_table();
        for path in ORIGIN_CHECKED_ROUTES {
            assert!(
                table
                    .iter()
                    .any(|spec| spec.path == *path && spec.method == Method::GET),
                "{path} is no GET route"
            );
        }
    }
}
