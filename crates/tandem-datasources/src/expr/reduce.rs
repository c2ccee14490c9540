//! The `reduce` and `resample` expressions.
//!
//! `reduce` turns each series into a number with the series' labels: `mean`, `min`, `max`,
//! `sum`, `count`, `last`, `median`. In the default (strict) mode a null or NaN anywhere
//! makes the result NaN (`count` counts every point); `dropNN` drops nulls and NaNs first;
//! `replaceNN` replaces them with `replaceWithValue`. An empty series reduces to NaN, except
//! `sum` (0) and `count` (0). Numbers pass through (mapped by the mode); no data stays no
//! data.
//!
//! `resample` puts each series on a regular grid from the range's start to its end, one
//! point per `window`: the points since the previous grid time are downsampled (`mean`,
//! `min`, `max`, `sum`, `last`), and a grid time without points is upsampled (`pad` repeats
//! the last value seen, `backfilling` takes the next one, `fillna` leaves null).

use crate::expr::{Number, Series, Value, json_number, reference};
use crate::query::{Query, QueryError};
use crate::time::{TimeRange, parse_duration_ms};

/// The most points a resampled series may have.
const MAX_RESAMPLED_POINTS: i64 = 100_000;

/// A reduction function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reducer {
    Mean,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Median,
}

impl Reducer {
    fn parse(name: &str) -> Result<Reducer, QueryError> {
        Ok(match name {
            "mean" | "avg" => Reducer::Mean,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "sum" => Reducer::Sum,
            "count" => Reducer::Count,
            "last" => Reducer::Last,
            "median" => Reducer::Median,
            other => {
                return Err(QueryError::bad_request(format!(
                    "reducer {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        })
    }

    /// Reduces `values` strictly: a null or NaN makes the result NaN (except for count).
    pub(crate) fn apply(self, values: &[Option<f64>]) -> f64 {
        if self == Reducer::Count {
            return values.len() as f64;
        }
        let mut sum = 0.0;
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in values {
            match value {
                Some(v) if !v.is_nan() => {
                    sum += v;
                    min = min.min(*v);
                    max = max.max(*v);
                }
                _ => return f64::NAN,
            }
        }
        let n = values.len();
        if n == 0 {
            return if self == Reducer::Sum { 0.0 } else { f64::NAN };
        }
        match self {
            Reducer::Sum => sum,
            Reducer::Mean => sum / n as f64,
            Reducer::Min => min,
            Reducer::Max => max,
            Reducer::Last => values.last().copied().flatten().unwrap_or(f64::NAN),
            Reducer::Median => {
                let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
                sorted.sort_by(f64::total_cmp);
                let mid = n / 2;
                match (sorted.get(mid.wrapping_sub(1)), sorted.get(mid)) {
                    (Some(a), Some(b)) if n.is_multiple_of(2) => (a + b) / 2.0,
                    (_, Some(b)) => *b,
                    _ => f64::NAN,
                }
            }
            Reducer::Count => n as f64,
        }
    }
}

/// How nulls and NaNs are treated before reducing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    Strict,
    DropNonNumbers,
    ReplaceNonNumbers(f64),
}

impl Mode {
    fn map(self, value: Option<f64>) -> Option<Option<f64>> {
        let is_number = value.is_some_and(|v| !v.is_nan());
        match self {
            Mode::Strict => Some(value),
            Mode::DropNonNumbers if is_number => Some(value),
            Mode::DropNonNumbers => None,
            Mode::ReplaceNonNumbers(_) if is_number => Some(value),
            Mode::ReplaceNonNumbers(with) => Some(Some(with)),
        }
    }
}

/// A parsed `reduce` expression.
#[derive(Clone, Debug)]
pub(crate) struct Reduce {
    pub(crate) input: String,
    reducer: Reducer,
    mode: Mode,
}

impl Reduce {
    pub(crate) fn parse(query: &Query) -> Result<Reduce, QueryError> {
        let input = reference(query, "expression")?;
        let reducer = Reducer::parse(query.text("reducer").unwrap_or(""))?;
        let settings = query.model.get("settings");
        let mode = match settings
            .and_then(|s| s.get("mode"))
            .and_then(|m| m.as_str())
        {
            None | Some("" | "strict") => Mode::Strict,
            Some("dropNN") => Mode::DropNonNumbers,
            Some("replaceNN") => Mode::ReplaceNonNumbers(
                settings
                    .and_then(|s| s.get("replaceWithValue"))
                    .and_then(json_number)
                    .ok_or_else(|| {
                        QueryError::bad_request("replaceNN needs a numeric replaceWithValue")
                    })?,
            ),
            Some(other) => {
                return Err(QueryError::bad_request(format!(
                    "reduce mode {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        };
        Ok(Reduce {
            input,
            reducer,
            mode,
        })
    }

    pub(crate) fn execute(&self, input: &Value) -> Result<Value, QueryError> {
        match input {
            Value::NoData => Ok(Value::NoData),
            Value::Numbers(numbers) => Ok(Value::Numbers(
                numbers
                    .iter()
                    .map(|n| Number {
                        labels: n.labels.clone(),
                        // Reducing a number is a no-op, but replaceNN still replaces it.
                        value: match self.mode {
                            Mode::ReplaceNonNumbers(with) if n.value.is_none_or(f64::is_nan) => {
                                Some(with)
                            }
                            _ => n.value,
                        },
                    })
                    .collect(),
            )),
            Value::Series(series) => Ok(Value::Numbers(
                series
                    .iter()
                    .map(|s| Number {
                        labels: s.labels.clone(),
                        value: Some(self.reduce(&s.values)),
                    })
                    .collect(),
            )),
        }
    }

    fn reduce(&self, values: &[Option<f64>]) -> f64 {
        match (self.mode, self.reducer) {
            (Mode::Strict, reducer) => reducer.apply(values),
            // The common alerting case, without copying the series: the last number.
            (Mode::DropNonNumbers, Reducer::Last) => values
                .iter()
                .rev()
                .flatten()
                .find(|v| !v.is_nan())
                .copied()
                .unwrap_or(f64::NAN),
            (mode, reducer) => {
                let mapped: Vec<Option<f64>> = values.iter().filter_map(|v| mode.map(*v)).collect();
                reducer.apply(&mapped)
            }
        }
    }
}

/// A parsed `resample` expression.
#[derive(Clone, Debug)]
pub(crate) struct Resample {
    pub(crate) input: String,
    window_ms: i64,
    downsampler: Reducer,
    upsampler: Upsampler,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Upsampler {
    Pad,
    Backfill,
    FillNa,
}

impl Resample {
    pub(crate) fn parse(query: &Query) -> Result<Resample, QueryError> {
        let input = reference(query, "expression")?;
        // Grafana calls the window `window` now and `rule` before.
        let window = query
            .text("window")
            .or_else(|| query.text("rule"))
            .unwrap_or("");
        let window_ms = parse_duration_ms(window)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                QueryError::bad_request(format!("resample window {window:?} is not a duration"))
            })?;
        let downsampler = match query.text("downsampler").unwrap_or("") {
            "" | "mean" => Reducer::Mean,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "sum" => Reducer::Sum,
            "last" => Reducer::Last,
            other => {
                return Err(QueryError::bad_request(format!(
                    "downsampler {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        };
        let upsampler = match query.text("upsampler").unwrap_or("") {
            "" | "fillna" => Upsampler::FillNa,
            "pad" => Upsampler::Pad,
            "backfilling" => Upsampler::Backfill,
            other => {
                return Err(QueryError::bad_request(format!(
                    "upsampler {:?} is not supported",
                    crate::types::truncate(other, 32)
                )));
            }
        };
        Ok(Resample {
            input,
            window_ms,
            downsampler,
            upsampler,
        })
    }

    pub(crate) fn execute(&self, input: &Value, range: TimeRange) -> Result<Value, QueryError> {
        let series = match input {
            Value::NoData => return Ok(Value::NoData),
            Value::Numbers(_) => {
                return Err(QueryError::bad_request(
                    "resample needs series, not numbers",
                ));
            }
            Value::Series(series) => series,
        };
        let intervals = range.duration_ms() / self.window_ms;
        if intervals <= 0 {
            return Err(QueryError::bad_request(
                "the series cannot be resampled: the time range is shorter than the window",
            ));
        }
        if intervals >= MAX_RESAMPLED_POINTS {
            return Err(QueryError::bad_request(
                "resample would make too many points",
            ));
        }
        Ok(Value::Series(
            series
                .iter()
                .map(|s| self.resample(s, range, intervals))
                .collect(),
        ))
    }

    fn resample(&self, series: &Series, range: TimeRange, intervals: i64) -> Series {
        let mut out = Series {
            labels: series.labels.clone(),
            times: Vec::with_capacity(usize::try_from(intervals + 1).unwrap_or(0)),
            values: Vec::with_capacity(usize::try_from(intervals + 1).unwrap_or(0)),
        };
        let (mut next, mut last_seen) = (0usize, None);
        for k in 0..=intervals {
            let t = range.from.saturating_add(k.saturating_mul(self.window_ms));
            let start = next;
            while series.times.get(next).is_some_and(|pt| *pt <= t) {
                last_seen = series.values.get(next).copied().flatten();
                next += 1;
            }
            let value = match series.values.get(start..next) {
                Some(bucket) if !bucket.is_empty() => {
                    let v = self.downsampler.apply(bucket);
                    // A strict reduction of a bucket holding only null stays null.
                    if bucket.iter().all(Option::is_none) {
                        None
                    } else {
                        Some(v)
                    }
                }
                _ => match self.upsampler {
                    Upsampler::Pad => last_seen,
                    Upsampler::Backfill => series.values.get(next).copied().flatten(),
                    Upsampler::FillNa => None,
                },
            };
            out.times.push(t);
            out.values.push(value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::expr::test_support::*;

    fn reduce(model: serde_json::Value, input: &Value) -> Value {
        Reduce::parse(&expression(model))
            .unwrap()
            .execute(input)
            .unwrap()
    }

    fn values(value: Value) -> Vec<f64> {
        match value {
            Value::Numbers(n) => n.into_iter().map(|n| n.value.unwrap()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reducers_and_modes_follow_grafana() {
        let with_gaps = Value::Series(vec![series(
            &[("job", "api")],
            &[
                (1, Some(4.0)),
                (2, None),
                (3, Some(1.0)),
                (4, Some(f64::NAN)),
                (5, Some(7.0)),
            ],
        )]);
        let clean = Value::Series(vec![series(
            &[],
            &[
                (1, Some(4.0)),
                (2, Some(1.0)),
                (3, Some(7.0)),
                (4, Some(2.0)),
            ],
        )]);
        for (reducer, expected_clean, expected_dropped, expected_replaced) in [
            ("mean", 3.5, 4.0, 2.4),
            ("min", 1.0, 1.0, 0.0),
            ("max", 7.0, 7.0, 7.0),
            ("sum", 14.0, 12.0, 12.0),
            ("count", 4.0, 3.0, 5.0),
            ("last", 2.0, 7.0, 7.0),
            ("median", 3.0, 4.0, 1.0),
        ] {
            let model = |mode: serde_json::Value| json!({"refId":"B","type":"reduce","expression":"A","reducer":reducer,"settings":mode});
            assert_eq!(
                values(reduce(model(json!({})), &clean)),
                [expected_clean],
                "{reducer}"
            );
            let strict = values(reduce(model(json!({"mode":""})), &with_gaps))[0];
            if reducer == "count" {
                assert_eq!(strict, 5.0);
            } else {
                assert!(strict.is_nan(), "{reducer} strict over nulls is NaN");
            }
            assert_eq!(
                values(reduce(model(json!({"mode":"dropNN"})), &with_gaps)),
                [expected_dropped],
                "{reducer} dropNN"
            );
            assert_eq!(
                values(reduce(
                    model(json!({"mode":"replaceNN","replaceWithValue":0})),
                    &with_gaps
                )),
                [expected_replaced],
                "{reducer} replaceNN"
            );
        }
        let reduced = reduce(
            json!({"refId":"B","expression":"$A","reducer":"last"}),
            &with_gaps,
        );
        assert!(
            matches!(reduced, Value::Numbers(ref n) if n[0].labels == labels(&[("job", "api")]))
        );
        let empty = Value::Series(vec![series(&[], &[])]);
        assert!(values(reduce(json!({"expression":"A","reducer":"mean"}), &empty))[0].is_nan());
        assert_eq!(
            values(reduce(json!({"expression":"A","reducer":"sum"}), &empty)),
            [0.0]
        );
        assert_eq!(
            reduce(json!({"expression":"A","reducer":"sum"}), &Value::NoData),
            Value::NoData
        );
        for bad in [
            json!({"expression":"A","reducer":"p99"}),
            json!({"expression":"","reducer":"sum"}),
            json!({"expression":"A","reducer":"sum","settings":{"mode":"replaceNN"}}),
        ] {
            assert!(Reduce::parse(&expression(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn resample_follows_grafana() {
        let input = Value::Series(vec![series(
            &[("a", "b")],
            &[
                (0, Some(1.0)),
                (1_000, Some(3.0)),
                (1_500, Some(5.0)),
                (4_000, Some(8.0)),
            ],
        )]);
        let run = |down: &str, up: &str| {
            let model = json!({"refId":"E","type":"resample","expression":"A","window":"1s","downsampler":down,"upsampler":up});
            match Resample::parse(&expression(model))
                .unwrap()
                .execute(&input, TimeRange::new(0, 5_000).unwrap())
                .unwrap()
            {
                Value::Series(s) => (s[0].times.clone(), s[0].values.clone()),
                other => panic!("{other:?}"),
            }
        };
        let (times, values) = run("mean", "fillna");
        assert_eq!(times, [0, 1_000, 2_000, 3_000, 4_000, 5_000]);
        assert_eq!(
            values,
            [Some(1.0), Some(3.0), Some(5.0), None, Some(8.0), None]
        );
        assert_eq!(
            run("max", "pad").1,
            [
                Some(1.0),
                Some(3.0),
                Some(5.0),
                Some(5.0),
                Some(8.0),
                Some(8.0)
            ]
        );
        assert_eq!(
            run("sum", "backfilling").1,
            [Some(1.0), Some(3.0), Some(5.0), Some(8.0), Some(8.0), None]
        );
        let short = Resample::parse(&expression(json!({"expression":"A","window":"1h"}))).unwrap();
        assert!(
            short
                .execute(&input, TimeRange::new(0, 5_000).unwrap())
                .is_err()
        );
        assert!(Resample::parse(&expression(json!({"expression":"A","window":"soon"}))).is_err());
    }
}
