//! The scheduler's metrics, under Grafana's names, registered in the instance's registry.

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::Result;

/// Grafana's alerting metrics of one instance.
#[derive(Clone, Debug)]
pub struct AlertingMetrics {
    /// `grafana_alerting_rule_evaluations_total{org}`.
    pub evaluations: IntCounterVec,
    /// `grafana_alerting_rule_evaluation_failures_total{org}`.
    pub failures: IntCounterVec,
    /// `grafana_alerting_rule_evaluation_duration_seconds{org}`.
    pub duration: HistogramVec,
    /// `grafana_alerting_alerts{state}`: the instances of the rules this instance evaluates.
    pub alerts: GaugeVec,
    /// `tandem_alerting_rule_evaluations_missed_total{org}`: slots skipped because the
    /// rule's previous evaluation was still running (Grafana's
    /// `schedule_rule_evaluations_missed_total`).
    pub missed: IntCounterVec,
}

impl AlertingMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<AlertingMetrics> {
        let evaluations = IntCounterVec::new(
            Opts::new(
                "rule_evaluations_total",
                "The total number of rule evaluations.",
            )
            .namespace("grafana")
            .subsystem("alerting"),
            &["org"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "rule_evaluation_failures_total",
                "The total number of rule evaluation failures.",
            )
            .namespace("grafana")
            .subsystem("alerting"),
            &["org"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "rule_evaluation_duration_seconds",
                "The time to evaluate a rule.",
            )
            .namespace("grafana")
            .subsystem("alerting")
            .buckets(vec![
                0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0,
            ]),
            &["org"],
        )?;
        let alerts = GaugeVec::new(
            Opts::new("alerts", "How many alerts by state.")
                .namespace("grafana")
                .subsystem("alerting"),
            &["state"],
        )?;
        let missed = IntCounterVec::new(
            Opts::new(
                "rule_evaluations_missed_total",
                "The total number of rule evaluations skipped because the previous one was still running.",
            )
            .namespace("tandem")
            .subsystem("alerting"),
            &["org"],
        )?;
        registry.register(Box::new(evaluations.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(alerts.clone()))?;
        registry.register(Box::new(missed.clone()))?;
        Ok(AlertingMetrics {
            evaluations,
            failures,
            duration,
            alerts,
            missed,
        })
    }
}
