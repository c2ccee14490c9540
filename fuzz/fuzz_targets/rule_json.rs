//! Alert rules as `POST /api/v1/provisioning/alert-rules` takes them: the body is read
//! into the provisioning API's `ProvisionedAlertRule` shape (a copy of
//! `tandem-http/src/routes/alerting/provisioning.rs`' `RuleBody`, which is private to
//! the HTTP crate), turned into a `RuleSpec` as that handler does, and checked by
//! `validate_spec` (Grafana's rule validation, which also plans and runs the rule's
//! expressions), `validate_group_name` and `validate_interval`.
//!
//! Asserts: no panic; a rule's durations that validate print and read back unchanged.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tandem_alerting::{
    AlertQuery, ExecErrState, NoDataState, RuleSpec, format_duration, parse_duration,
    validate_group_name, validate_interval, validate_spec, validate_uid,
};

/// `RuleBody` of the provisioning API, field for field, plus the group's `interval`.
#[derive(Deserialize)]
struct RuleBody {
    #[serde(default)]
    uid: String,
    #[serde(rename = "ruleGroup", default)]
    rule_group: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    data: Vec<AlertQuery>,
    #[serde(rename = "noDataState", default)]
    no_data_state: String,
    #[serde(rename = "execErrState", default)]
    exec_err_state: String,
    #[serde(rename = "for", default)]
    for_duration: Option<Value>,
    #[serde(default)]
    keep_firing_for: Option<Value>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "isPaused", default)]
    is_paused: bool,
    #[serde(rename = "missingSeriesEvalsToResolve", default)]
    missing_series_evals_to_resolve: Option<i64>,
    #[serde(default)]
    interval: Option<i64>,
}

/// The handler's `duration_field`: absent, null or empty is 0.
fn duration(value: &Option<Value>) -> Option<i64> {
    match value {
        None | Some(Value::Null) => Some(0),
        Some(Value::String(s)) if s.is_empty() => Some(0),
        Some(Value::String(s)) => parse_duration(s),
        Some(_) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<RuleBody>(data) else {
        return;
    };
    if !body.uid.is_empty() {
        let _ = validate_uid(&body.uid);
    }
    let _ = validate_group_name(&body.rule_group);
    if let Some(interval) = body.interval {
        let _ = validate_interval(interval, 10);
    }
    let (Ok(no_data_state), Ok(exec_err_state)) = (
        NoDataState::parse(&body.no_data_state),
        ExecErrState::parse(&body.exec_err_state),
    ) else {
        return;
    };
    let (Some(for_ms), Some(keep_firing_for_ms)) = (
        duration(&body.for_duration),
        duration(&body.keep_firing_for),
    ) else {
        return;
    };
    let spec = RuleSpec {
        title: body.title,
        condition: body.condition,
        data: body.data,
        no_data_state,
        exec_err_state,
        for_ms,
        keep_firing_for_ms,
        missing_series_evals: body.missing_series_evals_to_resolve,
        labels: body.labels.unwrap_or_default(),
        annotations: body.annotations.unwrap_or_default(),
        is_paused: body.is_paused,
    };
    if validate_spec(&spec).is_ok() {
        // What the API answers for `for` must be what a client can post back.
        for ms in [spec.for_ms, spec.keep_firing_for_ms] {
            assert_eq!(parse_duration(&format_duration(ms)), Some(ms), "{ms}");
        }
        let _ = spec.missing_series_evals_to_resolve();
    }
});
