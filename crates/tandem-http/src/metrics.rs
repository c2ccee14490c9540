use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::AppState;

/// The Prometheus metrics of one instance.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    panics: IntCounter,
}

impl Metrics {
    /// A fresh registry with the HTTP, build and process metrics; fails only if a metric is
    /// malformed, which a test would see.
    pub fn new(version: &str, commit: &str) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let labels = ["handler", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "tandem_http_requests_total",
                "HTTP requests served, by route and status",
            ),
            &labels,
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tandem_http_request_duration_seconds",
                "Time spent serving HTTP requests, by route and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &labels,
        )?;
        let panics = IntCounter::new(
            "tandem_http_request_panics_total",
            "Requests whose handler panicked (answered 500)",
        )?;
        registry.register(Box::new(panics.clone()))?;
        let build = IntGaugeVec::new(
            Opts::new(
                "tandem_build_info",
                "Always 1; the labels say what is running",
            ),
            &["version", "commit"],
        )?;
        build.with_label_values(&[version, commit]).set(1);
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(build))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            panics,
        })
    }

    /// Counts a request whose handler panicked.
    pub(crate) fn count_panic(&self) {
        self.panics.inc();
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
}

/// Counts and times each request under its route template (`/api/dashboards/uid/:uid`, not
/// the concrete path), so the label set stays small.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
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
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [handler.as_str(), method, status.as_str()];
    state.metrics.requests.with_label_values(&labels).inc();
    state
        .metrics
        .duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
