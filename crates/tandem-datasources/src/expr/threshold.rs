//! The `threshold` expression and the evaluators it shares with `classic_conditions`.
//!
//! `threshold` maps every number (and every point of a series) to 1 when its evaluator
//! holds and 0 when not, null staying null: `gt`, `lt`, `within_range` (strictly between
//! the two parameters), `outside_range` (strictly outside), and `within_range_included` /
//! `outside_range_included` with the bounds included. With an `unloadEvaluator` it has
//! hysteresis, as Grafana's recovery threshold: an item whose labels are among
//! `loadedDimensions` (the instances that are firing now, given by the caller as a list of
//! label objects) stays at 1 until the unload evaluator holds, then becomes 0; the others
//! use the evaluator as usual.

use std::collections::HashSet;

use serde_json::Value as Json;

use crate::expr::{Value, json_number, reference};
use crate::frame::Labels;
use crate::query::{Query, QueryError};

/// An evaluator type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EvaluatorKind {
    Gt,
    Lt,
    WithinRange,
    OutsideRange,
    WithinRangeIncluded,
    OutsideRangeIncluded,
    /// Classic conditions only: the value is null.
    NoValue,
}

/// An evaluator: a type and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Evaluator {
    kind: EvaluatorKind,
    params: Vec<f64>,
}

impl Evaluator {
    /// Parses `{"type": …, "params": […]}`; `classic` admits the legacy `no_value`.
    pub(crate) fn parse(value: Option<&Json>, classic: bool) -> Result<Evaluator, QueryError> {
        let value = value.ok_or_else(|| QueryError::bad_request("an evaluator is missing"))?;
        let kind = match value.get("type").and_then(Json::as_str).unwrap_or("") {
            "gt" => EvaluatorKind::Gt,
            "lt" => EvaluatorKind::Lt,
            "within_range" => EvaluatorKind::WithinRange,
            "outside_range" => EvaluatorKind::OutsideRange,
            "within_range_included" => EvaluatorKind::WithinRangeIncluded,
            "outside_range_included" => EvaluatorKind::OutsideRangeIncluded,
            "no_value" if classic => EvaluatorKind::NoValue,
            other => {
                return Err(QueryError::bad_request(format!(
                    "evaluator type {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        };
        let params: Vec<f64> = value
            .get("params")
            .and_then(Json::as_array)
            .map(|p| p.iter().filter_map(json_number).collect())
            .unwrap_or_default();
        let needed = match kind {
            EvaluatorKind::Gt | EvaluatorKind::Lt => 1,
            EvaluatorKind::NoValue => 0,
            _ => 2,
        };
        if params.len() < needed {
            return Err(QueryError::bad_request(format!(
                "evaluator needs {needed} numeric parameter(s)"
            )));
        }
        Ok(Evaluator { kind, params })
    }

    fn param(&self, i: usize) -> f64 {
        self.params.get(i).copied().unwrap_or(f64::NAN)
    }

    /// Whether the evaluator holds for `v` (threshold semantics: bounds as given).
    pub(crate) fn holds(&self, v: f64) -> bool {
        let (a, b) = (self.param(0), self.param(1));
        match self.kind {
            EvaluatorKind::Gt => v > a,
            EvaluatorKind::Lt => v < a,
            EvaluatorKind::WithinRange => v > a && v < b,
            EvaluatorKind::OutsideRange => v < a || v > b,
            EvaluatorKind::WithinRangeIncluded => v >= a && v <= b,
            EvaluatorKind::OutsideRangeIncluded => v <= a || v >= b,
            EvaluatorKind::NoValue => false,
        }
    }

    /// Classic conditions' semantics: ranges accept their bounds in either order, a null
    /// only satisfies `no_value`.
    pub(crate) fn holds_classic(&self, value: Option<f64>) -> bool {
        let Some(v) = value else {
            return self.kind == EvaluatorKind::NoValue;
        };
        let (lower, upper) = (
            self.param(0).min(self.param(1)),
            self.param(0).max(self.param(1)),
        );
        match self.kind {
            EvaluatorKind::WithinRange => v > lower && v < upper,
            EvaluatorKind::OutsideRange => v < lower || v > upper,
            _ => self.holds(v),
        }
    }
}

/// A parsed `threshold` expression.
#[derive(Clone, Debug)]
pub(crate) struct Threshold {
    pub(crate) input: String,
    evaluator: Evaluator,
    unload: Option<(Evaluator, HashSet<Labels>)>,
}

impl Threshold {
    pub(crate) fn parse(query: &Query) -> Result<Threshold, QueryError> {
        let input = reference(query, "expression")?;
        let condition = query
            .model
            .get("conditions")
            .and_then(Json::as_array)
            .and_then(|c| c.first())
            .ok_or_else(|| QueryError::bad_request("threshold needs one condition"))?;
        let evaluator = Evaluator::parse(condition.get("evaluator"), false)?;
        let unload = match condition.get("unloadEvaluator") {
            None | Some(Json::Null) => None,
            Some(unload) => {
                let loaded = condition
                    .get("loadedDimensions")
                    .and_then(Json::as_array)
                    .map(|items| items.iter().filter_map(labels_of).collect())
                    .unwrap_or_default();
                Some((Evaluator::parse(Some(unload), false)?, loaded))
            }
        };
        Ok(Threshold {
            input,
            evaluator,
            unload,
        })
    }

    pub(crate) fn execute(&self, input: &Value) -> Result<Value, QueryError> {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let evaluate = |labels: &Labels, value: Option<f64>| -> Option<f64> {
            let v = value?;
            match &self.unload {
                // Firing now: it recovers only when the unload evaluator holds.
                Some((unload, loaded)) if loaded.contains(labels) => Some(flag(!unload.holds(v))),
                _ => Some(flag(self.evaluator.holds(v))),
            }
        };
        Ok(match input {
            Value::NoData => Value::NoData,
            Value::Numbers(numbers) => Value::Numbers(
                numbers
                    .iter()
                    .map(|n| crate::expr::Number {
                        labels: n.labels.clone(),
                        value: evaluate(&n.labels, n.value),
                    })
                    .collect(),
            ),
            Value::Series(series) => Value::Series(
                series
                    .iter()
                    .map(|s| crate::expr::Series {
                        labels: s.labels.clone(),
                        times: s.times.clone(),
                        values: s.values.iter().map(|v| evaluate(&s.labels, *v)).collect(),
                    })
                    .collect(),
            ),
        })
    }
}

/// A label object `{"name": "value"}`.
fn labels_of(value: &Json) -> Option<Labels> {
    value.as_object().map(|map| {
        map.iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::expr::test_support::*;

    fn run(condition: Json, input: &Value) -> Vec<Option<f64>> {
        let model =
            json!({"refId":"D","type":"threshold","expression":"C","conditions":[condition]});
        match Threshold::parse(&expression(model))
            .unwrap()
            .execute(input)
            .unwrap()
        {
            Value::Numbers(n) => n.into_iter().map(|n| n.value).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn evaluators_follow_grafana() {
        let input = Value::Numbers(
            [5.0, 10.0, 15.0, 20.0, 25.0]
                .into_iter()
                .map(|v| number(&[("v", &v.to_string())], Some(v)))
                .chain([number(&[], None)])
                .collect(),
        );
        let on = |values: &[f64]| -> Vec<Option<f64>> {
            values.iter().map(|v| Some(*v)).chain([None]).collect()
        };
        for (kind, params, expected) in [
            ("gt", json!([15]), on(&[0.0, 0.0, 0.0, 1.0, 1.0])),
            ("lt", json!([15]), on(&[1.0, 1.0, 0.0, 0.0, 0.0])),
            (
                "within_range",
                json!([10, 20]),
                on(&[0.0, 0.0, 1.0, 0.0, 0.0]),
            ),
            (
                "outside_range",
                json!([10, 20]),
                on(&[1.0, 0.0, 0.0, 0.0, 1.0]),
            ),
            (
                "within_range_included",
                json!([10, 20]),
                on(&[0.0, 1.0, 1.0, 1.0, 0.0]),
            ),
            (
                "outside_range_included",
                json!([10, 20]),
                on(&[1.0, 1.0, 0.0, 1.0, 1.0]),
            ),
        ] {
            assert_eq!(
                run(json!({"evaluator":{"type":kind,"params":params}}), &input),
                expected,
                "{kind}"
            );
        }
        for bad in [
            json!({"evaluator":{"type":"gte","params":[1]}}),
            json!({"evaluator":{"type":"within_range","params":[1]}}),
        ] {
            let model = json!({"refId":"D","type":"threshold","expression":"C","conditions":[bad]});
            assert!(Threshold::parse(&expression(model)).is_err());
        }
    }

    #[test]
    fn the_unload_evaluator_keeps_firing_instances_until_they_recover() {
        let input = Value::Numbers(vec![
            number(&[("host", "firing-high")], Some(75.0)),
            number(&[("host", "firing-low")], Some(65.0)),
            number(&[("host", "normal")], Some(75.0)),
            number(&[("host", "new")], Some(85.0)),
        ]);
        let condition = json!({
            "evaluator": {"type": "gt", "params": [80]},
            "unloadEvaluator": {"type": "lt", "params": [70]},
            "loadedDimensions": [{"host": "firing-high"}, {"host": "firing-low"}],
        });
        assert_eq!(
            run(condition, &input),
            [Some(1.0), Some(0.0), Some(0.0), Some(1.0)]
        );
    }
}
