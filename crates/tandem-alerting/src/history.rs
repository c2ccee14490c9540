//! State history: what Grafana's annotation backend of state history writes for a change
//! of an alert instance's state (`prevState`, `newState`, the text and the JSON `data`).
//!
//! The store writes these rows in the transaction of the evaluation that made the change
//! (`sql/history.rs`), so each change is recorded once cluster-wide.

use serde_json::{Map, Value, json};

use crate::store::StateHistory;
use crate::{AlertInstance, InstanceState};

/// One state change to record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StateChange {
    /// The state and reason before, as Grafana formats them (`Normal (MissingSeries)`).
    pub(crate) prev_state: String,
    /// The state and reason after.
    pub(crate) new_state: String,
    /// `<title> {<labels>} - <values>`.
    pub(crate) text: String,
    /// `{"values":{…}}`, `{"noData":true}` or `{"error":…}`.
    pub(crate) data: Value,
    /// When the evaluation that made the change ran (epoch ms).
    pub(crate) time: i64,
}

/// A state and its reason as Grafana shows them: `Alerting`, `Normal (MissingSeries)`.
pub(crate) fn format_state(state: InstanceState, reason: &str) -> String {
    if reason.is_empty() {
        state.as_str().to_owned()
    } else {
        format!("{} ({reason})", state.as_str())
    }
}

/// The change from `before` (state and reason; `None` for a new instance, which starts
/// `Normal`) to `after`, or `None` when neither the state nor its reason changed.
pub(crate) fn change(
    rule: &StateHistory,
    before: Option<&(InstanceState, String)>,
    after: &AlertInstance,
) -> Option<StateChange> {
    let (prev, prev_reason) = before
        .map(|(state, reason)| (*state, reason.as_str()))
        .unwrap_or((InstanceState::Normal, ""));
    if prev == after.state && prev_reason == after.reason {
        return None;
    }
    let (shown, data) = match after.state {
        InstanceState::Error => ("Error".to_owned(), json!({ "error": after.error })),
        InstanceState::NoData => ("No data".to_owned(), json!({ "noData": true })),
        _ => {
            let mut shown = Vec::new();
            let mut values = Map::new();
            for (ref_id, value) in &after.values {
                let Some(value) = value else { continue };
                shown.push(format!("{ref_id}={value:.6}"));
                let value = if value.is_finite() {
                    json!(value)
                } else {
                    json!(go_float(*value))
                };
                values.insert(ref_id.clone(), value);
            }
            (shown.join(", "), json!({ "values": values }))
        }
    };
    let labels: Vec<String> = after
        .labels
        .iter()
        .filter(|(name, _)| !(name.starts_with("__") && name.ends_with("__")))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    Some(StateChange {
        prev_state: format_state(prev, prev_reason),
        new_state: format_state(after.state, &after.reason),
        text: format!("{} {{{}}} - {shown}", rule.title, labels.join(", ")),
        data,
        time: after.last_eval_at,
    })
}

/// A value that JSON cannot carry, as Go's `%f` prints it.
fn go_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(state: InstanceState, reason: &str) -> AlertInstance {
        let mut instance = AlertInstance {
            state,
            reason: reason.to_owned(),
            last_eval_at: 1_700_000_000_000,
            ..AlertInstance::default()
        };
        instance
            .labels
            .insert("alertname".into(), "High CPU".into());
        instance.labels.insert("instance".into(), "a:9100".into());
        instance
            .labels
            .insert("__alert_rule_uid__".into(), "x".into());
        instance.values.insert("B".into(), Some(0.5));
        instance.values.insert("C".into(), Some(1.0));
        instance.values.insert("D".into(), None);
        instance
    }

    fn rule() -> StateHistory {
        StateHistory {
            rule_id: 7,
            title: "High CPU".into(),
            dashboard_uid: None,
            panel_id: 0,
        }
    }

    #[test]
    fn a_change_is_written_as_grafana_words_it() {
        let before = (InstanceState::Pending, String::new());
        let change = change(
            &rule(),
            Some(&before),
            &instance(InstanceState::Alerting, ""),
        )
        .unwrap();
        assert_eq!(change.prev_state, "Pending");
        assert_eq!(change.new_state, "Alerting");
        assert_eq!(
            change.text,
            "High CPU {alertname=High CPU, instance=a:9100} - B=0.500000, C=1.000000"
        );
        assert_eq!(change.data, json!({"values": {"B": 0.5, "C": 1.0}}));
        assert_eq!(change.time, 1_700_000_000_000);
    }

    #[test]
    fn only_a_change_of_state_or_reason_is_recorded() {
        let normal = instance(InstanceState::Normal, "");
        assert_eq!(change(&rule(), None, &normal), None);
        let same = (InstanceState::Normal, String::new());
        assert_eq!(change(&rule(), Some(&same), &normal), None);
        let missing = instance(InstanceState::Normal, "MissingSeries");
        let before = (InstanceState::Alerting, String::new());
        let change = change(&rule(), Some(&before), &missing).unwrap();
        assert_eq!(change.prev_state, "Alerting");
        assert_eq!(change.new_state, "Normal (MissingSeries)");
    }

    #[test]
    fn errors_and_no_data_say_so() {
        let mut failed = instance(InstanceState::Error, "");
        failed.error = "the evaluation timed out".into();
        let error = change(&rule(), None, &failed).unwrap();
        assert_eq!(error.prev_state, "Normal");
        assert!(error.text.ends_with(" - Error"), "{}", error.text);
        assert_eq!(error.data, json!({"error": "the evaluation timed out"}));
        let no_data = change(&rule(), None, &instance(InstanceState::NoData, "")).unwrap();
        assert!(no_data.text.ends_with(" - No data"), "{}", no_data.text);
        assert_eq!(no_data.data, json!({"noData": true}));
    }

    #[test]
    fn values_json_cannot_carry_are_spelled_as_go_prints_them() {
        let mut firing = instance(InstanceState::Alerting, "");
        firing.values.insert("B".into(), Some(f64::INFINITY));
        let change = change(&rule(), None, &firing).unwrap();
        assert_eq!(change.data["values"]["B"], json!("+Inf"));
    }
}
