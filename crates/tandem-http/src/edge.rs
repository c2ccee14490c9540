//! What every request passes through before and after its handler: the body limit, the
//! JSON shape of every error, the trailing-slash leniency and request logging.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Limited};

use crate::{ApiError, AppState, Metrics};

/// Refuses a body announced larger than the limit with 413 before reading it, and caps the
/// bytes a handler can read from a body whose length is not announced.
pub(crate) async fn limit_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.max_body_bytes;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    let request = request.map(|body| Body::new(Limited::new(body, limit)));
    next.run(request).await
}

/// Answers a request whose handler panicked with a 500 JSON body instead of dropping the
/// connection, logs it and counts it (`tandem_http_request_panics_total`). Handlers are
/// written not to panic (the library crates deny `unwrap`, `expect`, `panic!` and
/// unchecked indexing); this is the net under that rule.
pub(crate) async fn catch_panic(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(payload) => {
            let cause = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic without a message");
            tracing::error!(%method, %path, cause, "a request handler panicked");
            metrics.count_panic();
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                .into_response()
        }
    }
}

/// Makes sure every error response carries a JSON body: statuses produced outside the
/// handlers (405, extractor rejections) come with plain text or nothing at all.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Keep the text of a rejection (it says what was wrong), bounded, as the message.
    let text = match Limited::new(body, 4096).collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_owned(),
        Err(_) => String::new(),
    };
    let mut error = ApiError::from_status(status);
    if !text.is_empty() {
        error.message = text;
    }
    let mut json = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}

/// Grafana clients are lenient about a trailing slash (`/api/search/`); so is the router:
/// the path loses it before routing.
pub(crate) fn trim_trailing_slash<B>(
    mut request: axum::http::Request<B>,
) -> axum::http::Request<B> {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(value) = path_and_query.parse() {
            parts.path_and_query = Some(value);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// Logs each request at info level when `router_logging` is on, at debug level otherwise,
/// and gives every answer Grafana's security headers.
pub(crate) async fn log_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if state.router_logging {
        tracing::info!(%method, %path, status, elapsed_ms, "request");
    } else {
        tracing::debug!(%method, %path, status, elapsed_ms, "request");
    }
    // Grafana's defaults (`[security] content_type_protection`, `x_xss_protection`,
    // `allow_embedding = false`), on every answer, errors included.
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::X_XSS_PROTECTION)
        .or_insert(HeaderValue::from_static("1; mode=block"));
    if !state.allow_embedding {
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("deny"));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_json_and_counted() {
        let metrics = Arc::new(Metrics::new("12.1.0", "test").unwrap());
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    let empty: Vec<u8> = Vec::new();
                    // An index out of bounds, as a bug in a handler would have it.
                    #[allow(clippy::indexing_slicing)]
                    let byte = empty[usize::from(empty.is_empty())];
                    byte.to_string()
                }),
            )
            .layer(from_fn_with_state(metrics.clone(), catch_panic));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"message":"Internal server error"}"#);
        assert!(
            metrics
                .render()
                .contains("tandem_http_request_panics_total 1"),
            "{}",
            metrics.render()
        );
    }
}
