//! Grafana's alert state machine, applied to one evaluation's outcome.
//!
//! Per instance: Normal → Pending (for `for`) → Alerting; Alerting → Recovering (for
//! `keep_firing_for`) → Normal; no data and errors map through `noDataState` and
//! `execErrState` (`KeepLast` keeps the state); an instance whose series is missing is
//! resolved after `missingSeriesEvalsToResolve` evaluations (reason `MissingSeries`) and
//! forgotten once it has been normal for [`FORGET_AFTER_MS`]. A failed or empty evaluation
//! applies to every instance the rule has (or to one with the rule's labels when it has
//! none).
//!
//! [`apply`] is pure: it returns the new instances and which ones must be written, so that
//! the scheduler writes only what changed (and what is due for a refresh).

use std::collections::HashMap;

use crate::eval::{Dimension, Outcome, ResultKind, value_string};
use crate::template::{TemplateData, expand};
use crate::{
    AlertInstance, AlertRule, ExecErrState, InstanceState, Labels, NoDataState, fingerprint,
};

/// A normal instance whose series is gone is forgotten this long after it resolved, so
/// that a notifier polling the store still sees the resolution.
pub const FORGET_AFTER_MS: i64 = 15 * 60 * 1000;

/// What one evaluation did to a rule's instances.
#[derive(Clone, Debug, Default)]
pub struct Transition {
    /// The instances after the evaluation, by fingerprint.
    pub instances: HashMap<String, AlertInstance>,
    /// Instances to write: changed, new, or due for a refresh.
    pub upserts: Vec<AlertInstance>,
    /// Instances to delete, by fingerprint.
    pub deletes: Vec<String>,
}

/// The evaluation being applied.
#[derive(Clone, Copy, Debug)]
pub struct Evaluation<'a> {
    /// The rule.
    pub rule: &'a AlertRule,
    /// Its folder's title (the `grafana_folder` label).
    pub folder_title: &'a str,
    /// The slot evaluated (epoch ms).
    pub slot: i64,
    /// When the evaluation ran (epoch ms).
    pub evaluated_at: i64,
    /// An unchanged instance is rewritten when its row is older than this (ms).
    pub refresh_ms: i64,
}

#[derive(Clone, Debug)]
enum Kind {
    Result(ResultKind),
    Error(String),
}

/// Applies `outcome` to the rule's `previous` instances.
pub fn apply(
    evaluation: Evaluation<'_>,
    previous: &HashMap<String, AlertInstance>,
    outcome: &Outcome,
) -> Transition {
    let rule = evaluation.rule;
    let base = base_labels(
        rule,
        evaluation.folder_title,
        &Labels::new(),
        &Default::default(),
    );
    let mut targets: Vec<(Labels, Kind, Dimension)> = Vec::new();
    match outcome {
        Outcome::Results(dims) => {
            for dim in dims {
                let labels = base_labels(rule, evaluation.folder_title, &dim.labels, &dim.values);
                targets.push((labels, Kind::Result(dim.kind), dim.clone()));
            }
        }
        Outcome::NoData | Outcome::Error(_) => {
            let kind = match outcome {
                Outcome::Error(message) => Kind::Error(message.clone()),
                _ => Kind::Result(ResultKind::NoData),
            };
            let empty = Dimension {
                labels: Labels::new(),
                kind: ResultKind::NoData,
                values: Default::default(),
            };
            let existing: Vec<&AlertInstance> = previous
                .values()
                .filter(|i| i.state != InstanceState::Normal || i.labels == base)
                .collect();
            if existing.is_empty() {
                targets.push((base.clone(), kind, empty));
            } else {
                for instance in existing {
                    targets.push((instance.labels.clone(), kind.clone(), empty.clone()));
                }
            }
        }
    }

    let mut out = Transition::default();
    for (labels, kind, dim) in targets {
        let key = fingerprint(&labels);
        let before = previous.get(&key).cloned();
        let mut instance = before.clone().unwrap_or_else(|| AlertInstance {
            org_id: rule.org_id,
            rule_uid: rule.uid.clone(),
            fingerprint: key.clone(),
            labels: labels.clone(),
            started_at: evaluation.slot,
            ..AlertInstance::default()
        });
        instance.missing_evals = 0;
        instance.error.clear();
        step(&mut instance, &kind, rule, evaluation.slot);
        finish(&mut instance, &evaluation, &dim, &labels);
        decide(&mut out, before.as_ref(), instance, &evaluation);
    }
    // Instances whose series did not come back.
    for (key, old) in previous {
        if out.instances.contains_key(key) {
            continue;
        }
        let mut instance = old.clone();
        instance.missing_evals = instance.missing_evals.saturating_add(1);
        if instance.state == InstanceState::Normal {
            let since = instance.resolved_at.unwrap_or(instance.started_at);
            if evaluation.slot.saturating_sub(since) >= FORGET_AFTER_MS {
                out.deletes.push(key.clone());
                continue;
            }
        } else if instance.missing_evals >= rule.spec.missing_series_evals_to_resolve() {
            let was_firing = instance.state.is_firing();
            instance.state = InstanceState::Normal;
            instance.reason = "MissingSeries".to_owned();
            instance.started_at = evaluation.slot;
            if was_firing {
                instance.resolved_at = Some(evaluation.slot);
            }
        }
        instance.last_slot = evaluation.slot;
        instance.last_eval_at = evaluation.evaluated_at;
        decide(&mut out, Some(old), instance, &evaluation);
    }
    out
}

/// Whether the instance needs writing, and records it.
fn decide(
    out: &mut Transition,
    before: Option<&AlertInstance>,
    mut instance: AlertInstance,
    evaluation: &Evaluation<'_>,
) {
    let write = match before {
        None => true,
        Some(old) => {
            old.state != instance.state
                || old.reason != instance.reason
                || old.started_at != instance.started_at
                || old.resolved_at != instance.resolved_at
                || old.error != instance.error
                || old.labels != instance.labels
                || (old.missing_evals == 0) != (instance.missing_evals == 0)
                || evaluation.slot.saturating_sub(old.written_at) >= evaluation.refresh_ms
        }
    };
    if write {
        instance.written_at = evaluation.slot;
        out.upserts.push(instance.clone());
    } else if let Some(old) = before {
        // Unwritten: keep what the row says about when it was written.
        instance.written_at = old.written_at;
    }
    out.instances.insert(instance.fingerprint.clone(), instance);
}

/// The instance's labels: the series', then the rule's (templated), then `alertname` and
/// `grafana_folder`.
fn base_labels(
    rule: &AlertRule,
    folder_title: &str,
    series: &Labels,
    values: &std::collections::BTreeMap<String, (Option<f64>, Labels)>,
) -> Labels {
    let data = TemplateData {
        labels: series.clone(),
        values: values.clone(),
        value: value_string(values),
    };
    let mut labels = series.clone();
    for (name, value) in &rule.spec.labels {
        labels.insert(name.clone(), expand(value, &data));
    }
    labels.insert("alertname".to_owned(), rule.spec.title.clone());
    labels.insert("grafana_folder".to_owned(), folder_title.to_owned());
    labels
}

/// Fills what every evaluation refreshes: values, annotations, times.
fn finish(
    instance: &mut AlertInstance,
    evaluation: &Evaluation<'_>,
    dim: &Dimension,
    labels: &Labels,
) {
    instance.labels = labels.clone();
    instance.values = dim
        .values
        .iter()
        .map(|(k, (v, _))| (k.clone(), *v))
        .collect();
    let data = TemplateData {
        labels: labels.clone(),
        values: dim.values.clone(),
        value: value_string(&dim.values),
    };
    instance.annotations = evaluation
        .rule
        .spec
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), expand(v, &data)))
        .collect();
    instance.last_slot = evaluation.slot;
    instance.last_eval_at = evaluation.evaluated_at;
    // Grafana's resolve timeout: four intervals past the evaluation for a firing alert.
    let interval_ms = evaluation.rule.interval_seconds.saturating_mul(1000);
    instance.ends_at = if instance.state.is_firing() {
        evaluation
            .slot
            .saturating_add(interval_ms.saturating_mul(4))
    } else {
        evaluation.slot
    };
}

/// One step of the state machine.
fn step(instance: &mut AlertInstance, kind: &Kind, rule: &AlertRule, now: i64) {
    match kind {
        Kind::Result(ResultKind::Alerting) => to_alerting(instance, rule, now, ""),
        Kind::Result(ResultKind::Normal) => to_normal(instance, rule, now, ""),
        Kind::Result(ResultKind::NoData) => match rule.spec.no_data_state {
            NoDataState::Alerting => to_alerting(instance, rule, now, "NoData"),
            NoDataState::NoData => to_state(instance, InstanceState::NoData, now, ""),
            NoDataState::Ok => to_normal(instance, rule, now, "NoData"),
            NoDataState::KeepLast => keep(instance, "NoData, KeepLast"),
        },
        Kind::Error(message) => {
            instance.error = message.clone();
            match rule.spec.exec_err_state {
                ExecErrState::Alerting => to_alerting(instance, rule, now, "Error"),
                ExecErrState::Error => to_state(instance, InstanceState::Error, now, ""),
                ExecErrState::Ok => to_normal(instance, rule, now, "Error"),
                ExecErrState::KeepLast => keep(instance, "Error, KeepLast"),
            }
        }
    }
}

fn to_alerting(instance: &mut AlertInstance, rule: &AlertRule, now: i64, reason: &str) {
    instance.reason = reason.to_owned();
    match instance.state {
        InstanceState::Alerting => {}
        InstanceState::Recovering => {
            // Still firing: the alert never resolved, so it keeps its start.
            instance.state = InstanceState::Alerting;
            instance.resolved_at = None;
        }
        InstanceState::Pending => {
            if now.saturating_sub(instance.started_at) >= rule.spec.for_ms {
                fire(instance, now);
            }
        }
        InstanceState::Normal | InstanceState::NoData | InstanceState::Error => {
            if rule.spec.for_ms > 0 {
                instance.state = InstanceState::Pending;
                instance.started_at = now;
            } else {
                fire(instance, now);
            }
        }
    }
}

fn fire(instance: &mut AlertInstance, now: i64) {
    instance.state = InstanceState::Alerting;
    instance.started_at = now;
    instance.resolved_at = None;
}

fn to_normal(instance: &mut AlertInstance, rule: &AlertRule, now: i64, reason: &str) {
    instance.reason = reason.to_owned();
    match instance.state {
        InstanceState::Normal => {}
        InstanceState::Alerting if rule.spec.keep_firing_for_ms > 0 => {
            // While recovering, `resolved_at` holds when the recovery started.
            instance.state = InstanceState::Recovering;
            instance.resolved_at = Some(now);
        }
        InstanceState::Recovering => {
            let since = instance.resolved_at.unwrap_or(now);
            if now.saturating_sub(since) >= rule.spec.keep_firing_for_ms {
                resolve(instance, now);
            }
        }
        InstanceState::Alerting => resolve(instance, now),
        InstanceState::Pending | InstanceState::NoData | InstanceState::Error => {
            instance.state = InstanceState::Normal;
            instance.started_at = now;
        }
    }
}

fn resolve(instance: &mut AlertInstance, now: i64) {
    instance.state = InstanceState::Normal;
    instance.started_at = now;
    instance.resolved_at = Some(now);
}

fn to_state(instance: &mut AlertInstance, state: InstanceState, now: i64, reason: &str) {
    instance.reason = reason.to_owned();
    if instance.state != state {
        if instance.state.is_firing() {
            instance.resolved_at = Some(now);
        }
        instance.state = state;
        instance.started_at = now;
    }
}

fn keep(instance: &mut AlertInstance, reason: &str) {
    instance.reason = reason.to_owned();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrgId, RuleSpec, RuleUid};

    fn rule(for_ms: i64, keep_ms: i64) -> AlertRule {
        AlertRule {
            id: 1,
            org_id: OrgId(1),
            uid: RuleUid::from("r"),
            folder_uid: crate::FolderUid::from("f"),
            rule_group: "g".to_owned(),
            group_index: 1,
            interval_seconds: 10,
            version: 1,
            provenance: crate::Provenance::None,
            updated: 0,
            spec: RuleSpec {
                title: "High".to_owned(),
                condition: "C".to_owned(),
                for_ms,
                keep_firing_for_ms: keep_ms,
                labels: [("team".to_owned(), "{{ $labels.host }}-x".to_owned())].into(),
                annotations: [(
                    "summary".to_owned(),
                    "{{ $values.C.Value }} on {{ $labels.host }}".to_owned(),
                )]
                .into(),
                ..RuleSpec::default()
            },
        }
    }

    fn result(kind: ResultKind) -> Outcome {
        let labels: Labels = [("host".to_owned(), "a".to_owned())].into();
        let value = if kind == ResultKind::Alerting {
            1.0
        } else {
            0.0
        };
        Outcome::Results(vec![Dimension {
            labels: labels.clone(),
            kind,
            values: [("C".to_owned(), (Some(value), labels))].into(),
        }])
    }

    /// Runs outcomes at slots 0, 10 s, 20 s … and returns the state after each.
    fn run(rule: &AlertRule, outcomes: &[Outcome]) -> Vec<(InstanceState, i64, usize)> {
        let mut instances = HashMap::new();
        let mut seen = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            let slot = i64::try_from(i).unwrap() * 10_000;
            let evaluation = Evaluation {
                rule,
                folder_title: "Folder",
                slot,
                evaluated_at: slot,
                refresh_ms: 1_000_000,
            };
            let t = apply(evaluation, &instances, outcome);
            let (state, started) = t
                .instances
                .values()
                .next()
                .map_or((InstanceState::Normal, -1), |i| (i.state, i.started_at));
            seen.push((state, started, t.upserts.len()));
            instances = t.instances;
        }
        seen
    }

    #[test]
    fn pending_then_alerting_then_normal() {
        use InstanceState::*;
        let (a, n) = (result(ResultKind::Alerting), result(ResultKind::Normal));
        let seen = run(
            &rule(20_000, 0),
            &[
                n.clone(),
                a.clone(),
                a.clone(),
                a.clone(),
                a.clone(),
                n.clone(),
                n,
            ],
        );
        let states: Vec<_> = seen.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(
            states,
            [
                (Normal, 0),
                (Pending, 10_000),
                (Pending, 10_000),
                (Alerting, 30_000),
                (Alerting, 30_000),
                (Normal, 50_000),
                (Normal, 50_000)
            ]
        );
        // Written on change only: the first row, each change, nothing in steady state.
        let writes: Vec<_> = seen.iter().map(|s| s.2).collect();
        assert_eq!(writes, [1, 1, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn keep_firing_for_recovers_then_resolves() {
        use InstanceState::*;
        let (a, n) = (result(ResultKind::Alerting), result(ResultKind::Normal));
        let seen = run(
            &rule(0, 20_000),
            &[a.clone(), n.clone(), a, n.clone(), n.clone(), n],
        );
        let states: Vec<_> = seen.iter().map(|s| s.0).collect();
        assert_eq!(
            states,
            [
                Alerting, Recovering, Alerting, Recovering, Recovering, Normal
            ]
        );
        assert_eq!(seen[2].1, 0, "back to Alerting keeps the start");
    }

    #[test]
    fn no_data_and_errors_follow_the_rule_settings() {
        use InstanceState::*;
        let mut r = rule(0, 0);
        let a = result(ResultKind::Alerting);
        r.spec.exec_err_state = ExecErrState::KeepLast;
        let seen = run(&r, &[a.clone(), Outcome::Error("boom".to_owned())]);
        assert_eq!(seen[1].0, Alerting);
        r.spec.exec_err_state = ExecErrState::Error;
        let seen = run(&r, &[a.clone(), Outcome::Error("boom".to_owned())]);
        assert_eq!(seen[1].0, Error);
        r.spec.no_data_state = NoDataState::Ok;
        let seen = run(&r, &[a, Outcome::NoData]);
        assert_eq!(seen[1].0, Normal);
    }

    #[test]
    fn missing_series_resolve_after_the_configured_evaluations() {
        use InstanceState::*;
        let mut r = rule(0, 0);
        r.spec.missing_series_evals = Some(2);
        let empty = Outcome::Results(Vec::new());
        let seen = run(&r, &[result(ResultKind::Alerting), empty.clone(), empty]);
        assert_eq!(seen[1].0, Alerting);
        assert_eq!(seen[2].0, Normal);
    }

    #[test]
    fn labels_and_annotations_are_templated() {
        let r = rule(0, 0);
        let evaluation = Evaluation {
            rule: &r,
            folder_title: "Folder",
            slot: 5,
            evaluated_at: 5,
            refresh_ms: 10,
        };
        let t = apply(evaluation, &HashMap::new(), &result(ResultKind::Alerting));
        let instance = t.instances.values().next().unwrap();
        assert_eq!(instance.labels["team"], "a-x");
        assert_eq!(instance.labels["alertname"], "High");
        assert_eq!(instance.labels["grafana_folder"], "Folder");
        assert_eq!(instance.annotations["summary"], "1 on a");
        assert_eq!(instance.fingerprint, fingerprint(&instance.labels));
    }
}
