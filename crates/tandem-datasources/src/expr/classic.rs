//! The `classic_conditions` expression: Grafana's legacy alert conditions.
//!
//! Each condition reduces every series of its query with a legacy reducer (`avg`, `sum`,
//! `min`, `max`, `count`, `count_non_null`, `last`, `median`, `diff`, `diff_abs`,
//! `percent_diff`, `percent_diff_abs`; nulls are skipped), and holds when the evaluator
//! holds for any of them. Conditions combine left to right with their `operator` (`and`,
//! `or`). The result is one unlabelled number: 1 when the whole holds, 0 when not, and null
//! when it does not hold and every condition's query had no data.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::expr::threshold::Evaluator;
use crate::expr::{Number, Value, input};
use crate::frame::Labels;
use crate::query::{Query, QueryError};

/// The most conditions one expression may have.
const MAX_CONDITIONS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reducer {
    Avg,
    Sum,
    Min,
    Max,
    Count,
    CountNonNull,
    Last,
    Median,
    Diff,
    DiffAbs,
    PercentDiff,
    PercentDiffAbs,
}

impl Reducer {
    fn parse(name: &str) -> Result<Reducer, QueryError> {
        Ok(match name {
            "avg" | "mean" => Reducer::Avg,
            "sum" => Reducer::Sum,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "count" => Reducer::Count,
            "count_non_null" => Reducer::CountNonNull,
            "last" => Reducer::Last,
            "median" => Reducer::Median,
            "diff" => Reducer::Diff,
            "diff_abs" => Reducer::DiffAbs,
            "percent_diff" => Reducer::PercentDiff,
            "percent_diff_abs" => Reducer::PercentDiffAbs,
            other => {
                return Err(QueryError::bad_request(format!(
                    "classic condition reducer {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        })
    }

    /// The legacy reduction: nulls are skipped; nothing left is null (count excepted).
    fn apply(self, values: &[Option<f64>]) -> Option<f64> {
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        if self == Reducer::Count {
            return Some(values.len() as f64);
        }
        if self == Reducer::CountNonNull {
            return Some(present.len() as f64);
        }
        let (first, last) = (*present.first()?, *present.last()?);
        Some(match self {
            Reducer::Avg => present.iter().sum::<f64>() / present.len() as f64,
            Reducer::Sum => present.iter().sum(),
            Reducer::Min => present.iter().copied().fold(f64::INFINITY, f64::min),
            Reducer::Max => present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Reducer::Last => last,
            Reducer::Median => {
                let mut sorted = present;
                sorted.sort_by(f64::total_cmp);
                let mid = sorted.len() / 2;
                if sorted.len().is_multiple_of(2) {
                    (sorted.get(mid.wrapping_sub(1))? + sorted.get(mid)?) / 2.0
                } else {
                    *sorted.get(mid)?
                }
            }
            Reducer::Diff => last - first,
            Reducer::DiffAbs => (last - first).abs(),
            Reducer::PercentDiff => (last - first) / first.abs() * 100.0,
            Reducer::PercentDiffAbs => ((last - first) / first.abs() * 100.0).abs(),
            Reducer::Count | Reducer::CountNonNull => return None,
        })
    }
}

#[derive(Clone, Debug)]
struct Condition {
    input: String,
    reducer: Reducer,
    evaluator: Evaluator,
    or: bool,
}

/// A parsed `classic_conditions` expression.
#[derive(Clone, Debug)]
pub(crate) struct Conditions {
    conditions: Vec<Condition>,
}

impl Conditions {
    pub(crate) fn parse(query: &Query) -> Result<Conditions, QueryError> {
        let items = query
            .model
            .get("conditions")
            .and_then(Json::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| QueryError::bad_request("classic_conditions needs conditions"))?;
        if items.len() > MAX_CONDITIONS {
            return Err(QueryError::bad_request(
                "classic_conditions has too many conditions",
            ));
        }
        let mut conditions = Vec::with_capacity(items.len());
        for item in items {
            let input = item
                .pointer("/query/params/0")
                .and_then(Json::as_str)
                .map(|s| s.trim().trim_start_matches('$').to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    QueryError::bad_request("a classic condition needs query.params[0]")
                })?;
            let reducer = Reducer::parse(
                item.pointer("/reducer/type")
                    .and_then(Json::as_str)
                    .unwrap_or("avg"),
            )?;
            let evaluator = Evaluator::parse(item.get("evaluator"), true)?;
            let or = match item.pointer("/operator/type").and_then(Json::as_str) {
                None | Some("" | "and") => false,
                Some("or") => true,
                Some(other) => {
                    return Err(QueryError::bad_request(format!(
                        "classic condition operator {:?} is not supported",
                        crate::types::truncate(other, 16)
                    )));
                }
            };
            conditions.push(Condition {
                input,
                reducer,
                evaluator,
                or,
            });
        }
        Ok(Conditions { conditions })
    }

    pub(crate) fn inputs(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in &self.conditions {
            if !out.contains(&c.input) {
                out.push(c.input.clone());
            }
        }
        out
    }

    pub(crate) fn execute(&self, vars: &HashMap<String, Value>) -> Result<Value, QueryError> {
        let mut firing = false;
        let mut no_data_everywhere = true;
        for (i, condition) in self.conditions.iter().enumerate() {
            let reduced: Vec<Option<f64>> = match input(vars, &condition.input)? {
                Value::NoData => Vec::new(),
                Value::Series(series) => series
                    .iter()
                    .map(|s| condition.reducer.apply(&s.values))
                    .collect(),
                Value::Numbers(numbers) => numbers.iter().map(|n| n.value).collect(),
            };
            if !reduced.is_empty() {
                no_data_everywhere = false;
            }
            let holds = reduced
                .iter()
                .any(|v| condition.evaluator.holds_classic(*v));
            firing = if i == 0 {
                holds
            } else if condition.or {
                firing || holds
            } else {
                firing && holds
            };
        }
        let value = if firing {
            Some(1.0)
        } else if no_data_everywhere {
            None
        } else {
            Some(0.0)
        };
        Ok(Value::Numbers(vec![Number {
            labels: Labels::new(),
            value,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::expr::test_support::*;

    fn run(conditions: Json, vars: &[(&str, Value)]) -> Option<f64> {
        let model = json!({"refId":"F","type":"classic_conditions","conditions":conditions});
        let vars: HashMap<String, Value> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        match Conditions::parse(&expression(model))
            .unwrap()
            .execute(&vars)
            .unwrap()
        {
            Value::Numbers(n) => n[0].value,
            other => panic!("{other:?}"),
        }
    }

    fn condition(query: &str, reducer: &str, kind: &str, params: Json, operator: &str) -> Json {
        json!({"type":"query","query":{"params":[query]},"reducer":{"type":reducer},
            "evaluator":{"type":kind,"params":params},"operator":{"type":operator}})
    }

    #[test]
    fn classic_conditions_follow_legacy_alerting() {
        let a = Value::Series(vec![
            series(&[("h", "1")], &[(1, Some(1.0)), (2, None), (3, Some(3.0))]),
            series(&[("h", "2")], &[(1, Some(10.0)), (2, Some(20.0))]),
        ]);
        let vars = [("A", a), ("N", Value::NoData)];
        // avg of the second series (15) is above 3.
        assert_eq!(
            run(
                json!([condition("A", "avg", "gt", json!([3]), "and")]),
                &vars
            ),
            Some(1.0)
        );
        assert_eq!(
            run(
                json!([condition("A", "max", "gt", json!([30]), "and")]),
                &vars
            ),
            Some(0.0)
        );
        assert_eq!(
            run(
                json!([condition(
                    "A",
                    "diff",
                    "within_range",
                    json!([12, 1]),
                    "and"
                )]),
                &vars
            ),
            Some(1.0),
            "diff of the first series is 2, within 1..12 in either order"
        );
        assert_eq!(
            run(
                json!([
                    condition("A", "count_non_null", "gt", json!([1]), "and"),
                    condition("A", "percent_diff", "gt", json!([250]), "and")
                ]),
                &vars
            ),
            Some(0.0)
        );
        assert_eq!(
            run(
                json!([
                    condition("A", "min", "gt", json!([100]), "and"),
                    condition("A", "last", "lt", json!([5]), "or")
                ]),
                &vars
            ),
            Some(1.0)
        );
        assert_eq!(
            run(
                json!([condition("N", "avg", "gt", json!([1]), "and")]),
                &vars
            ),
            None
        );
        assert_eq!(
            run(
                json!([condition("N", "avg", "no_value", json!([]), "and")]),
                &vars
            ),
            None
        );
        let parse = |c: Json| Conditions::parse(&expression(json!({"refId":"F","conditions":c})));
        assert!(parse(json!([])).is_err());
        assert!(parse(json!([condition("A", "p99", "gt", json!([1]), "and")])).is_err());
        assert!(parse(json!([condition("A", "avg", "gt", json!([1]), "xor")])).is_err());
    }
}
