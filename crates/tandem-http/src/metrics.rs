use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::AppState;

/// The Prometheus metrics of one instance, under Grafana's names where Grafana has them
/// (`grafana_http_request_duration_seconds`, `grafana_http_request_in_flight`,
/// `grafana_api_response_status_total`, `grafana_build_info`), so Grafana's own dashboards
/// and alerts for a Grafana server read a Tandem cluster too.
pub struct Metrics {
    registry: Registry,
    duration: HistogramVec,
    in_flight: IntGauge,
    api_status: IntCounterVec,
    panics: IntCounter,
}

impl Metrics {
    /// A fresh registry with the HTTP, build and process metrics; fails only if a metric is
    /// malformed, which a test would see.
    pub fn new(version: &str, commit: &str) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        // Grafana's labels, in Grafana's order.
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "grafana_http_request_duration_seconds",
                "Histogram of latencies for HTTP requests.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["handler", "status_code", "method"],
        )?;
        let in_flight = IntGauge::new(
            "grafana_http_request_in_flight",
            "A gauge of requests currently being served.",
        )?;
        let api_status = IntCounterVec::new(
            Opts::new(
                "grafana_api_response_status_total",
                "Responses of /api requests, by status (200, 404, 500 or unknown).",
            ),
            &["code"],
        )?;
        let panics = IntCounter::new(
            "tandem_http_request_panics_total",
            "Requests whose handler panicked (answered 500)",
        )?;
        let build = IntGaugeVec::new(
            Opts::new(
                "grafana_build_info",
                "A metric with a constant '1' value labeled by version, revision and edition.",
            ),
            &["version", "revision", "edition"],
        )?;
        build.with_label_values(&[version, commit, "oss"]).set(1);
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(api_status.clone()))?;
        registry.register(Box::new(panics.clone()))?;
        registry.register(Box::new(build))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            duration,
            in_flight,
            api_status,
            panics,
        })
    }

    /// Everything in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            // Only a metric with a malformed name or label fails; the rest is still shown.
            tracing::error!(error = %err, "cannot encode every metric");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The registry, for embedders and domain crates that add metrics of their own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a request whose handler panicked.
    pub(crate) fn count_panic(&self) {
        self.panics.inc();
    }
}

/// Times each request under its route template, written as Grafana writes its handler
/// names (`/api/dashboards/uid/:uid`, not the concrete path), so the label set stays small;
/// counts `/api` answers by status as Grafana does. `/metrics` itself is not instrumented,
/// as in Grafana.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let handler = request.extensions().get::<MatchedPath>().map_or_else(
        || "unknown".to_owned(),
        |path| grafana_handler_name(path.as_str()),
    );
    if handler == "/metrics" {
        return next.run(request).await;
    }
    // Any client can invent a method name; only the standard ones get a label of their own.
    let method = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let api = request.uri().path().starts_with("/api/");
    let metrics = &state.metrics;
    let started = Instant::now();
    metrics.in_flight.inc();
    let response = next.run(request).await;
    metrics.in_flight.dec();
    let status = response.status().as_u16();
    let code = status.to_string();
    metrics
        .duration
        .with_label_values(&[handler.as_str(), code.as_str(), method])
        .observe(started.elapsed().as_secs_f64());
    if api {
        let bucket = match status {
            200 => "200",
            404 => "404",
            500 => "500",
            _ => "unknown",
        };
        metrics.api_status.with_label_values(&[bucket]).inc();
    }
    response
}

/// axum's `{param}` segments in Grafana's `:param` spelling.
fn grafana_handler_name(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn handler_names_are_grafanas() {
        assert_eq!(
            super::grafana_handler_name("/api/dashboards/uid/{uid}/versions/{version}"),
            "/api/dashboards/uid/:uid/versions/:version"
        );
        assert_eq!(super::grafana_handler_name("/api/health"), "/api/health");
    }
}
