//! One evaluation of a rule: the query request relative to the slot, and the reading of
//! its results into one result per dimension (Grafana's `eval` package).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tandem_datasources::{Number, QueryRequest, QueryResponse, Value as ExprValue};

use crate::validate::to_query;
use crate::{AlertRule, Labels};

/// What one dimension of the condition says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultKind {
    /// The condition is 0.
    Normal,
    /// The condition is not 0.
    Alerting,
    /// The condition has no value.
    NoData,
}

/// One dimension of the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    /// The series' labels.
    pub labels: Labels,
    /// What the condition says.
    pub kind: ResultKind,
    /// Each refId's value for this dimension, with its labels.
    pub values: BTreeMap<String, (Option<f64>, Labels)>,
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// One result per dimension.
    Results(Vec<Dimension>),
    /// The condition returned nothing at all.
    NoData,
    /// The evaluation failed.
    Error(String),
}

/// The query request for evaluating `rule` at `slot` (epoch ms): each data query's range
/// is its relative range before the slot, as absolute epoch milliseconds; threshold
/// expressions with a recovery threshold get the firing dimensions as `loadedDimensions`.
pub fn request(rule: &AlertRule, slot: i64, firing: &[Labels]) -> QueryRequest {
    let mut earliest = slot;
    let queries = rule
        .spec
        .data
        .iter()
        .map(|query| {
            let mut q = to_query(query);
            if query.is_expression() {
                if q.model.get("type").and_then(Value::as_str) == Some("threshold") {
                    add_loaded_dimensions(&mut q.model, firing);
                }
            } else {
                let range = query.relative_time_range;
                let from = slot.saturating_sub(range.from.saturating_mul(1000));
                let to = slot.saturating_sub(range.to.saturating_mul(1000));
                earliest = earliest.min(from);
                q.model.insert(
                    "timeRange".to_owned(),
                    json!({"from": from, "to": to.max(from)}),
                );
            }
            q
        })
        .collect();
    QueryRequest {
        from: Value::from(earliest),
        to: Value::from(slot),
        queries,
    }
}

fn add_loaded_dimensions(model: &mut serde_json::Map<String, Value>, firing: &[Labels]) {
    let Some(Value::Array(conditions)) = model.get_mut("conditions") else {
        return;
    };
    let Some(Value::Object(first)) = conditions.first_mut() else {
        return;
    };
    if first.get("unloadEvaluator").is_none_or(Value::is_null) {
        return;
    }
    let dims: Vec<Value> = firing.iter().map(|l| json!(l)).collect();
    first.insert("loadedDimensions".to_owned(), Value::Array(dims));
}

/// Reads the response (or the request's failure) into an outcome.
pub fn interpret(rule: &AlertRule, response: Result<QueryResponse, String>) -> Outcome {
    let response = match response {
        Ok(response) => response,
        Err(message) => return Outcome::Error(message),
    };
    let condition = &rule.spec.condition;
    if let Some((ref_id, err)) = response
        .results
        .iter()
        .find_map(|(id, r)| r.error.as_ref().map(|e| (id, e)))
    {
        return Outcome::Error(format!("failed to execute query {ref_id}: {}", err.message));
    }
    let Some(result) = response.results.get(condition) else {
        return Outcome::Error(format!("no result for the condition {condition}"));
    };
    let numbers = match ExprValue::from_frames(&result.frames) {
        ExprValue::NoData => return Outcome::NoData,
        ExprValue::Series(_) => {
            return Outcome::Error(format!(
                "invalid format of evaluation results for the alert definition {condition}: looks like time series data, only reduced data can be alerted on."
            ));
        }
        ExprValue::Numbers(numbers) => numbers,
    };
    let others: Vec<(&String, Vec<Number>)> = response
        .results
        .iter()
        .filter_map(|(id, r)| match ExprValue::from_frames(&r.frames) {
            ExprValue::Numbers(n) => Some((id, n)),
            _ => None,
        })
        .collect();
    let dims = numbers
        .into_iter()
        .map(|number| {
            let kind = match number.value {
                None => ResultKind::NoData,
                Some(0.0) => ResultKind::Normal,
                Some(_) => ResultKind::Alerting,
            };
            let mut values = BTreeMap::new();
            for (id, candidates) in &others {
                // The value of another refId for this dimension: the one whose labels are
                // the same, or a subset (a reduce of fewer labels), or the only one.
                let found = candidates
                    .iter()
                    .find(|c| c.labels == number.labels)
                    .or_else(|| {
                        candidates.iter().find(|c| {
                            c.labels
                                .iter()
                                .all(|(k, v)| number.labels.get(k) == Some(v))
                        })
                    })
                    .or_else(|| {
                        (candidates.len() == 1)
                            .then(|| candidates.first())
                            .flatten()
                    });
                if let Some(found) = found {
                    values.insert((*id).clone(), (found.value, found.labels.clone()));
                }
            }
            Dimension {
                labels: number.labels,
                kind,
                values,
            }
        })
        .collect();
    Outcome::Results(dims)
}

/// Grafana's value string: `[ var='B' labels={job=api} value=44.2 ], …`.
pub fn value_string(values: &BTreeMap<String, (Option<f64>, Labels)>) -> String {
    values
        .iter()
        .map(|(id, (value, labels))| {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let value = value.map_or("null".to_owned(), |v| format!("{v}"));
            format!(
                "[ var='{id}' labels={{{}}} value={value} ]",
                labels.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
