//! Grafana's server-side expressions (`datasource: {"type": "__expr__"}`): `math`,
//! `reduce`, `resample`, `threshold` and `classic_conditions`, with Grafana 12's semantics.
//!
//! An expression reads the results of other queries by refId. [`Pipeline::plan`] orders
//! the expressions of a request after what they read and refuses unknown references and
//! cycles; [`Pipeline::run`] evaluates them over the data source results. Results are
//! [`Value`]s: a set of numbers or a set of series, each with labels, or "no data"; labels
//! travel through every operation, so alert instances can be told apart.

mod classic;
mod math;
mod reduce;
mod threshold;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value as Json;

use crate::frame::{Field, Frame, FrameMeta, Labels, Values};
use crate::query::{Query, QueryError};
use crate::time::TimeRange;

/// The most nodes a math expression may have, so a hostile expression cannot exhaust the
/// stack or the CPU.
pub(crate) const MAX_EXPRESSION_NODES: usize = 1_000;

/// A series: times (epoch milliseconds, ascending) and nullable values, with labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The series' identity.
    pub labels: Labels,
    /// The times.
    pub times: Vec<i64>,
    /// The values; `None` is null (distinct from NaN).
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// Sorts the points by time (data sources usually answer them sorted already).
    pub fn sort_by_time(&mut self) {
        let mut points: Vec<(i64, Option<f64>)> = self
            .times
            .iter()
            .copied()
            .zip(self.values.iter().copied())
            .collect();
        points.sort_by_key(|p| p.0);
        self.times = points.iter().map(|p| p.0).collect();
        self.values = points.iter().map(|p| p.1).collect();
    }
}

/// A number with labels; `None` is null.
#[derive(Clone, Debug, PartialEq)]
pub struct Number {
    /// The number's identity.
    pub labels: Labels,
    /// The value.
    pub value: Option<f64>,
}

/// What a query or an expression yields, as expressions see it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A set of numbers (the result of a reduce, or of math over numbers).
    Numbers(Vec<Number>),
    /// A set of series.
    Series(Vec<Series>),
    /// The query returned nothing.
    NoData,
}

impl Value {
    /// The value a data source's frames stand for: each numeric field of a frame with a
    /// time field is a series (its labels are the field's); numeric fields of frames
    /// without one are numbers; no numeric field at all is no data.
    pub fn from_frames(frames: &[Frame]) -> Value {
        let (mut series, mut numbers) = (Vec::new(), Vec::new());
        for frame in frames {
            let time = frame.fields.iter().find(|f| f.values.is_time());
            for field in frame.fields.iter().filter(|f| f.values.is_number()) {
                let len = field.values.len();
                match time {
                    Some(time) => {
                        let (times, values) = match (&time.values, &field.values) {
                            // The usual shape: copy the columns whole.
                            (Values::Time(t), Values::Number(v)) if t.len() == v.len() => {
                                (t.clone(), v.clone())
                            }
                            _ => {
                                let mut times = Vec::with_capacity(len);
                                let mut values = Vec::with_capacity(len);
                                for i in 0..len {
                                    if let Some(t) = time.values.time_at(i) {
                                        times.push(t);
                                        values.push(field.values.number_at(i));
                                    }
                                }
                                (times, values)
                            }
                        };
                        let mut s = Series {
                            labels: field.labels.clone(),
                            times,
                            values,
                        };
                        if !s.times.windows(2).all(|w| matches!(w, [a, b] if a <= b)) {
                            s.sort_by_time();
                        }
                        series.push(s);
                    }
                    None => numbers.extend((0..len).map(|i| Number {
                        labels: field.labels.clone(),
                        value: field.values.number_at(i),
                    })),
                }
            }
        }
        if !series.is_empty() {
            Value::Series(series)
        } else if !numbers.is_empty() {
            Value::Numbers(numbers)
        } else {
            Value::NoData
        }
    }

    /// The value as Grafana answers an expression's refId: a frame per number (one field
    /// named after the refId, with the labels) or per series (`Time` and a field named
    /// after the refId); nothing for no data.
    pub fn to_frames(&self, ref_id: &str) -> Vec<Frame> {
        match self {
            Value::Numbers(numbers) => numbers
                .iter()
                .map(|n| Frame {
                    ref_id: ref_id.to_owned(),
                    fields: vec![Field::number(ref_id, n.labels.clone(), vec![n.value])],
                    ..Frame::default()
                })
                .collect(),
            Value::Series(series) => series
                .iter()
                .map(|s| Frame {
                    ref_id: ref_id.to_owned(),
                    meta: FrameMeta::typed("timeseries-multi", [0, 1]),
                    fields: vec![
                        Field::time("Time", s.times.clone()),
                        Field {
                            name: ref_id.to_owned(),
                            labels: s.labels.clone(),
                            values: Values::Number(s.values.clone()),
                            ..Field::default()
                        },
                    ],
                    ..Frame::default()
                })
                .collect(),
            Value::NoData => Vec::new(),
        }
    }
}

/// One expression of a request, parsed.
#[derive(Clone, Debug)]
enum Command {
    Math(math::Expression),
    Reduce(reduce::Reduce),
    Resample(reduce::Resample),
    Threshold(threshold::Threshold),
    Classic(classic::Conditions),
}

impl Command {
    fn parse(query: &Query) -> Result<Command, QueryError> {
        let kind = query.text("type").unwrap_or("");
        match kind {
            "math" => Ok(Command::Math(math::Expression::parse(
                query.text("expression").unwrap_or(""),
            )?)),
            "reduce" => Ok(Command::Reduce(reduce::Reduce::parse(query)?)),
            "resample" => Ok(Command::Resample(reduce::Resample::parse(query)?)),
            "threshold" => Ok(Command::Threshold(threshold::Threshold::parse(query)?)),
            "classic_conditions" => Ok(Command::Classic(classic::Conditions::parse(query)?)),
            "" => Err(QueryError::bad_request("expression type is missing")),
            other => Err(QueryError::bad_request(format!(
                "expression type {:?} is not supported",
                crate::types::truncate(other, 64)
            ))),
        }
    }

    /// The refIds the command reads.
    fn inputs(&self) -> Vec<String> {
        match self {
            Command::Math(e) => e.variables(),
            Command::Reduce(r) => vec![r.input.clone()],
            Command::Resample(r) => vec![r.input.clone()],
            Command::Threshold(t) => vec![t.input.clone()],
            Command::Classic(c) => c.inputs(),
        }
    }

    fn execute(
        &self,
        vars: &HashMap<String, Value>,
        range: TimeRange,
    ) -> Result<Value, QueryError> {
        match self {
            Command::Math(e) => e.evaluate(vars),
            Command::Reduce(r) => r.execute(input(vars, &r.input)?),
            Command::Resample(r) => r.execute(input(vars, &r.input)?, range),
            Command::Threshold(t) => t.execute(input(vars, &t.input)?),
            Command::Classic(c) => c.execute(vars),
        }
    }
}

/// The value of `ref_id`, or an error naming it.
pub(crate) fn input<'a>(
    vars: &'a HashMap<String, Value>,
    ref_id: &str,
) -> Result<&'a Value, QueryError> {
    vars.get(ref_id).ok_or_else(|| {
        QueryError::bad_request(format!("expression input {ref_id:?} has no result"))
    })
}

/// The refId an expression's `expression` field names (`A` or `$A`).
pub(crate) fn reference(query: &Query, key: &str) -> Result<String, QueryError> {
    let raw = query.text(key).unwrap_or("").trim();
    let name = raw
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| raw.strip_prefix('$'))
        .unwrap_or(raw)
        .trim();
    if name.is_empty() {
        return Err(QueryError::bad_request(format!(
            "{key} must name the refId of a query"
        )));
    }
    Ok(name.to_owned())
}

/// The expressions of a request in evaluation order.
#[derive(Debug, Default)]
pub struct Pipeline {
    steps: Vec<(String, Result<Command, QueryError>)>,
}

impl Pipeline {
    /// Parses `expressions` and orders them after their inputs. `data_ref_ids` are the
    /// refIds of the request's data source queries. An expression that cannot be parsed,
    /// reads an unknown refId or sits on a cycle keeps its error, to be answered under its
    /// refId; so does one that reads such an expression.
    pub fn plan(expressions: &[&Query], data_ref_ids: &[&str]) -> Pipeline {
        let mut parsed: BTreeMap<String, Result<Command, QueryError>> = expressions
            .iter()
            .map(|q| (q.ref_id.clone(), Command::parse(q)))
            .collect();
        let known: std::collections::HashSet<&str> = data_ref_ids
            .iter()
            .copied()
            .chain(expressions.iter().map(|q| q.ref_id.as_str()))
            .collect();
        for (ref_id, command) in parsed.iter_mut() {
            if let Ok(c) = command {
                if let Some(unknown) = c.inputs().into_iter().find(|i| !known.contains(i.as_str()))
                {
                    *command = Err(QueryError::bad_request(format!(
                        "expression {ref_id:?} reads {unknown:?}, which is not a query of the request"
                    )));
                } else if c.inputs().iter().any(|i| i == ref_id) {
                    *command = Err(QueryError::bad_request(format!(
                        "expression {ref_id:?} reads itself"
                    )));
                }
            }
        }
        // Kahn's algorithm over the expressions; data queries are already resolved.
        let mut steps = Vec::new();
        let mut done: std::collections::HashSet<String> =
            data_ref_ids.iter().map(|s| (*s).to_owned()).collect();
        let mut pending: Vec<String> = parsed.keys().cloned().collect();
        while !pending.is_empty() {
            let ready: Vec<String> = pending
                .iter()
                .filter(|ref_id| match parsed.get(*ref_id) {
                    Some(Ok(c)) => c.inputs().iter().all(|i| done.contains(i)),
                    _ => true,
                })
                .cloned()
                .collect();
            if ready.is_empty() {
                // Whatever is left waits on itself: a cycle.
                for ref_id in pending.drain(..) {
                    steps.push((
                        ref_id.clone(),
                        Err(QueryError::bad_request(format!(
                            "expression {ref_id:?} is part of a dependency cycle"
                        ))),
                    ));
                }
                break;
            }
            pending.retain(|r| !ready.contains(r));
            for ref_id in ready {
                done.insert(ref_id.clone());
                let command = parsed
                    .remove(&ref_id)
                    .unwrap_or_else(|| Err(QueryError::bad_request("lost expression")));
                steps.push((ref_id, command));
            }
        }
        Pipeline { steps }
    }

    /// Evaluates the expressions in order. `vars` holds the data source results (a failed
    /// query is absent from it and `failed` says why); each expression's value is added as
    /// it is computed. Returns every expression's result by refId.
    pub fn run(
        &self,
        vars: &mut HashMap<String, Value>,
        failed: &HashMap<String, QueryError>,
        range: TimeRange,
    ) -> BTreeMap<String, Result<Value, QueryError>> {
        let mut results = BTreeMap::new();
        let mut failed = failed.clone();
        for (ref_id, command) in &self.steps {
            let outcome = match command {
                Err(err) => Err(err.clone()),
                Ok(command) => match command.inputs().iter().find_map(|i| failed.get(i)) {
                    Some(err) => Err(QueryError {
                        status: err.status,
                        message: format!("an input of {ref_id:?} failed: {}", err.message),
                    }),
                    None => command.execute(vars, range),
                },
            };
            match &outcome {
                Ok(value) => {
                    vars.insert(ref_id.clone(), value.clone());
                }
                Err(err) => {
                    failed.insert(ref_id.clone(), err.clone());
                }
            }
            results.insert(ref_id.clone(), outcome);
        }
        results
    }
}

/// A number from an expression's JSON (numbers or numeric text).
pub(crate) fn json_number(value: &Json) -> Option<f64> {
    crate::query::number(value)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    pub(crate) fn series(pairs: &[(&str, &str)], points: &[(i64, Option<f64>)]) -> Series {
        Series {
            labels: labels(pairs),
            times: points.iter().map(|p| p.0).collect(),
            values: points.iter().map(|p| p.1).collect(),
        }
    }

    pub(crate) fn number(pairs: &[(&str, &str)], value: Option<f64>) -> Number {
        Number {
            labels: labels(pairs),
            value,
        }
    }

    pub(crate) fn expression(model: serde_json::Value) -> Query {
        serde_json::from_value(model).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::*;
    use super::*;

    #[test]
    fn pipelines_order_expressions_and_report_bad_references() {
        let queries = [
            expression(json!({"refId":"C","type":"math","expression":"$B * 100"})),
            expression(json!({"refId":"B","type":"reduce","expression":"A","reducer":"last"})),
            expression(json!({"refId":"D","type":"math","expression":"$Z + 1"})),
            expression(json!({"refId":"E","type":"math","expression":"$F + 1"})),
            expression(json!({"refId":"F","type":"math","expression":"$E + 1"})),
            expression(json!({"refId":"G","type":"math","expression":"$D + 1"})),
        ];
        let refs: Vec<&Query> = queries.iter().collect();
        let pipeline = Pipeline::plan(&refs, &["A"]);
        let mut vars = HashMap::from([(
            "A".to_owned(),
            Value::Series(vec![series(
                &[("job", "api")],
                &[(1, Some(0.25)), (2, Some(0.5))],
            )]),
        )]);
        let results = pipeline.run(&mut vars, &HashMap::new(), TimeRange::new(0, 10).unwrap());
        assert_eq!(
            results["C"],
            Ok(Value::Numbers(vec![number(&[("job", "api")], Some(50.0))]))
        );
        assert!(results["D"].as_ref().unwrap_err().message.contains("\"Z\""));
        assert!(results["E"].as_ref().unwrap_err().message.contains("cycle"));
        assert!(results["F"].as_ref().unwrap_err().message.contains("cycle"));
        assert!(
            results["G"].is_err(),
            "an expression reading a failed one fails"
        );
        let frames = results["C"].as_ref().unwrap().to_frames("C");
        assert_eq!(
            serde_json::to_value(&frames).unwrap(),
            json!([{"schema":{"refId":"C","fields":[{"name":"C","type":"number",
                "typeInfo":{"frame":"float64","nullable":true},"labels":{"job":"api"}}]},
                "data":{"values":[[50.0]]}}])
        );
    }

    #[test]
    fn frames_become_series_numbers_or_no_data() {
        let frame = Frame {
            fields: vec![
                Field::time("Time", vec![2, 1]),
                Field::number("Value", labels(&[("a", "1")]), vec![Some(2.0), Some(1.0)]),
            ],
            ..Frame::default()
        };
        assert_eq!(
            Value::from_frames(&[frame]),
            Value::Series(vec![series(
                &[("a", "1")],
                &[(1, Some(1.0)), (2, Some(2.0))]
            )])
        );
        let numeric = Frame {
            fields: vec![Field::number("n", labels(&[("b", "2")]), vec![Some(7.0)])],
            ..Frame::default()
        };
        assert_eq!(
            Value::from_frames(&[numeric]),
            Value::Numbers(vec![number(&[("b", "2")], Some(7.0))])
        );
        assert_eq!(Value::from_frames(&[]), Value::NoData);
    }
}
