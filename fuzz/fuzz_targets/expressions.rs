//! Server-side expressions (`__expr__`) as `/api/ds/query` and alert rules carry them:
//! the input is a math expression (`$A * 2 > $B`), or, when it is a JSON object, a whole
//! expression model (`{"type":"reduce","expression":"A","reducer":"mean"}`, resample,
//! threshold, classic conditions). It is planned and run by `Pipeline` over fixed data
//! (numbers `A`, series `B`, no data `C`), followed by a reduce and a threshold of its
//! result.
//!
//! Asserts: no panic; every series has one value per time; a non-empty result turned
//! into frames reads back as the same value.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value as Json, json};
use tandem_datasources::{Number, Pipeline, Query, QueryError, Series, TimeRange, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let model = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(model)) => model,
        _ => object(json!({"type": "math", "expression": text})),
    };
    let queries = [
        Query {
            ref_id: "X".to_owned(),
            model,
        },
        Query {
            ref_id: "Y".to_owned(),
            model: object(json!({"type": "reduce", "expression": "$X", "reducer": "mean"})),
        },
        Query {
            ref_id: "Z".to_owned(),
            model: object(json!({
                "type": "threshold",
                "expression": "$Y",
                "conditions": [{"evaluator": {"type": "gt", "params": [1]}}],
            })),
        },
    ];
    let expressions: Vec<&Query> = queries.iter().collect();
    let pipeline = Pipeline::plan(&expressions, &["A", "B", "C", "D"]);
    let mut vars = inputs();
    let failed: HashMap<String, QueryError> =
        [("D".to_owned(), QueryError::bad_request("the query failed"))].into();
    let range = TimeRange {
        from: 1_700_000_000_000,
        to: 1_700_000_060_000,
    };
    for (ref_id, outcome) in pipeline.run(&mut vars, &failed, range) {
        let Ok(value) = outcome else {
            continue;
        };
        if let Value::Series(series) = &value {
            for s in series {
                assert_eq!(s.times.len(), s.values.len(), "{ref_id}: {s:?}");
            }
        }
        let frames = value.to_frames(&ref_id);
        if !is_empty(&value) && is_sorted(&value) {
            let back = Value::from_frames(&frames);
            assert!(same(&value, &back), "{ref_id}: {value:?} became {back:?}");
        }
    }
});

fn object(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

/// Numbers `A` (labelled, one null, one NaN), series `B` (two labelled series, a null
/// point), no data `C`.
fn inputs() -> HashMap<String, Value> {
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let start = 1_700_000_000_000;
    let times: Vec<i64> = (0..6).map(|i| start + i * 10_000).collect();
    [
        (
            "A".to_owned(),
            Value::Numbers(vec![
                Number {
                    labels: labels(&[("host", "a")]),
                    value: Some(3.0),
                },
                Number {
                    labels: labels(&[("host", "b")]),
                    value: None,
                },
                Number {
                    labels: labels(&[("host", "c"), ("dc", "x")]),
                    value: Some(f64::NAN),
                },
            ]),
        ),
        (
            "B".to_owned(),
            Value::Series(vec![
                Series {
                    labels: labels(&[("host", "a")]),
                    times: times.clone(),
                    values: vec![
                        Some(1.0),
                        Some(2.5),
                        None,
                        Some(-4.0),
                        Some(0.0),
                        Some(1e300),
                    ],
                },
                Series {
                    labels: labels(&[("host", "b")]),
                    times,
                    values: vec![Some(0.5); 6],
                },
            ]),
        ),
        ("C".to_owned(), Value::NoData),
    ]
    .into()
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Numbers(numbers) => numbers.is_empty(),
        Value::Series(series) => series.is_empty(),
        Value::NoData => true,
    }
}

/// Data sources' frames are read in time order, so only sorted series read back as written.
fn is_sorted(value: &Value) -> bool {
    match value {
        Value::Series(series) => series
            .iter()
            .all(|s| s.times.windows(2).all(|w| matches!(w, [a, b] if a <= b))),
        _ => true,
    }
}

/// Equality with NaN equal to NaN.
fn same(a: &Value, b: &Value) -> bool {
    let number = |x: &Option<f64>, y: &Option<f64>| match (x, y) {
        (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
        (None, None) => true,
        _ => false,
    };
    match (a, b) {
        (Value::Numbers(a), Value::Numbers(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.labels == y.labels && number(&x.value, &y.value))
        }
        (Value::Series(a), Value::Series(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    x.labels == y.labels
                        && x.times == y.times
                        && x.values.len() == y.values.len()
                        && x.values.iter().zip(&y.values).all(|(p, q)| number(p, q))
                })
        }
        (Value::NoData, Value::NoData) => true,
        _ => false,
    }
}
