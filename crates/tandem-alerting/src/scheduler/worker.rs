//! One evaluation of one slot of one rule: restore the rule's instances if needed, query,
//! apply the state machine, write what changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tandem_storage::now_ms;
use tokio::sync::Mutex;

use crate::eval::{Outcome, interpret, request};
use crate::scheduler::{Evaluated, Shared};
use crate::state::{Evaluation, apply};
use crate::store::{InstanceWrite, StateHistory};
use crate::{AlertInstance, AlertRule, Labels, RuleStatus};

/// What an instance remembers of a rule between its evaluations.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) rule: Arc<AlertRule>,
    pub(crate) folder_title: String,
    pub(crate) instances: HashMap<String, AlertInstance>,
    pub(crate) loaded: bool,
    pub(crate) status: Option<RuleStatus>,
}

/// Evaluates `slot` of the rule behind `runtime`.
pub(crate) async fn evaluate(
    shared: Arc<Shared>,
    runtime: Arc<Mutex<Runtime>>,
    reload: Arc<AtomicBool>,
    slot: i64,
) {
    let Ok(mut rt) = runtime.try_lock() else {
        // The previous evaluation of this rule is still running: Grafana skips the slot.
        if let Ok(rule) = runtime.try_lock().map(|rt| rt.rule.clone()) {
            shared
                .metrics
                .missed
                .with_label_values(&[&rule.org_id.0.to_string()])
                .inc();
        }
        return;
    };
    let rule = rt.rule.clone();
    let org = rule.org_id.0.to_string();
    if reload.swap(false, Ordering::AcqRel) || !rt.loaded {
        match shared
            .store
            .load_instances(rule.org_id, std::slice::from_ref(&rule.uid))
            .await
        {
            Ok(instances) => {
                rt.instances = instances
                    .into_iter()
                    .map(|i| (i.fingerprint.clone(), i))
                    .collect();
                rt.loaded = true;
            }
            Err(err) => {
                tracing::warn!(rule_uid = %rule.uid, error = %err, "restoring alert instances failed");
                return;
            }
        }
    }
    let started = Instant::now();
    let firing = firing_dimensions(&rule, &rt.instances);
    let attempts = shared.settings.max_attempts.max(1);
    let mut outcome = Outcome::Error("not evaluated".to_owned());
    for attempt in 1..=attempts {
        let query = request(&rule, slot, &firing);
        let org_id = tandem_datasources::OrgId(rule.org_id.0);
        let answered = tokio::time::timeout(
            shared.settings.evaluation_timeout,
            shared.queries.query(org_id, query),
        )
        .await;
        let response = match answered {
            Err(_) => Err(format!(
                "the evaluation timed out after {:?}",
                shared.settings.evaluation_timeout
            )),
            Ok(Err(err)) => Err(err.to_string()),
            Ok(Ok(response)) => Ok(response),
        };
        outcome = interpret(&rule, response);
        if !matches!(outcome, Outcome::Error(_)) || attempt == attempts {
            break;
        }
        let interval = Duration::from_secs(u64::try_from(rule.interval_seconds).unwrap_or(10));
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep((interval / 4).min(Duration::from_secs(1))) => {}
        }
    }
    let evaluated_at = now_ms();
    let interval_ms = rule.interval_seconds.saturating_mul(1000);
    let refresh_ms = interval_ms.saturating_mul(shared.settings.refresh_evaluations.max(1));
    let evaluation = Evaluation {
        rule: &rule,
        folder_title: &rt.folder_title,
        slot,
        evaluated_at,
        refresh_ms,
    };
    let transition = apply(evaluation, &rt.instances, &outcome);
    // Each row is written only from the state this evaluation started from, so a state
    // change is made (and recorded) by one evaluation only.
    let expected = transition
        .upserts
        .iter()
        .filter_map(|i| {
            let before = rt.instances.get(&i.fingerprint)?;
            Some((i.fingerprint.clone(), (before.state, before.reason.clone())))
        })
        .collect();
    let write = InstanceWrite {
        org_id: rule.org_id,
        rule_uid: rule.uid.clone(),
        slot,
        upserts: transition.upserts,
        deletes: transition.deletes,
        expected,
        history: shared
            .settings
            .state_history
            .then(|| StateHistory::of(&rule)),
    };
    match shared.store.write_instances(write).await {
        Ok(true) => rt.instances = transition.instances,
        Ok(false) => {
            // Another evaluator wrote this slot or a newer one: take its state.
            rt.loaded = false;
        }
        Err(err) => {
            tracing::warn!(rule_uid = %rule.uid, error = %err, "writing alert instances failed");
            rt.loaded = false;
        }
    }
    let elapsed = started.elapsed();
    let (health, error) = match &outcome {
        Outcome::Error(message) => ("error", message.clone()),
        Outcome::NoData => ("nodata", String::new()),
        Outcome::Results(_) => ("ok", String::new()),
    };
    let due = rt.status.as_ref().is_none_or(|s| {
        s.health != health
            || s.last_error != error
            || slot.saturating_sub(s.written_at) >= refresh_ms
    });
    if due {
        let status = RuleStatus {
            org_id: rule.org_id,
            rule_uid: rule.uid.clone(),
            last_slot: slot,
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            health: health.to_owned(),
            last_error: error,
            written_at: slot,
        };
        match shared.store.write_status(status.clone()).await {
            Ok(_) => rt.status = Some(status),
            Err(err) => {
                tracing::warn!(rule_uid = %rule.uid, error = %err, "writing a rule status failed")
            }
        }
    }
    shared.metrics.evaluations.with_label_values(&[&org]).inc();
    if matches!(outcome, Outcome::Error(_)) {
        shared.metrics.failures.with_label_values(&[&org]).inc();
    }
    shared
        .metrics
        .duration
        .with_label_values(&[&org])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(rule_uid = %rule.uid, slot, instance_id = %shared.instance_id, "evaluated alert rule");
    if let Some(events) = &shared.events {
        // Nobody listening is fine; a slow listener loses the oldest records.
        let _ = events.send(Evaluated {
            org_id: rule.org_id,
            rule_uid: rule.uid.clone(),
            slot,
            instance_id: shared.instance_id.clone(),
        });
    }
}

/// The series labels of the firing instances, for a recovery threshold's
/// `loadedDimensions`: each instance's labels without the rule's own.
fn firing_dimensions(rule: &AlertRule, instances: &HashMap<String, AlertInstance>) -> Vec<Labels> {
    instances
        .values()
        .filter(|i| i.state.is_firing())
        .map(|i| {
            i.labels
                .iter()
                .filter(|(k, _)| {
                    !rule.spec.labels.contains_key(*k)
                        && *k != "alertname"
                        && *k != "grafana_folder"
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect()
}
