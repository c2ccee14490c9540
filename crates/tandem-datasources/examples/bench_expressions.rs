//! Micro-benchmark of the expression pipeline alert rules run: reduce (last, dropNN) →
//! math (`$B * 100`) → threshold (gt 80 with an unload evaluator) over 1 000 series of
//! 1 000 points each. Target: at most 5 ms per evaluation.
//!
//! ```text
//! cargo run --release -p tandem-datasources --example bench_expressions
//! ```
//!
//! It prints the median, p90 and minimum over the runs, for the pipeline on series already
//! decoded and for the whole path from data frames (what a data source answers).
// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tandem_datasources::{Field, Frame, Labels, Pipeline, Query, TimeRange, Value};

const SERIES: usize = 1_000;
const POINTS: usize = 1_000;
const RUNS: usize = 200;

fn main() {
    let range = TimeRange::new(0, (POINTS as i64) * 15_000).expect("a range");
    let frames: Vec<Frame> = (0..SERIES)
        .map(|s| Frame {
            ref_id: "A".to_owned(),
            fields: vec![
                Field::time("Time", (0..POINTS as i64).map(|i| i * 15_000).collect()),
                Field::number(
                    "Value",
                    Labels::from([
                        ("instance".to_owned(), format!("host-{s}")),
                        ("job".to_owned(), "api".to_owned()),
                    ]),
                    (0..POINTS)
                        .map(|i| Some(((s * 31 + i * 7) % 1000) as f64 / 1000.0))
                        .collect(),
                ),
            ],
            ..Frame::default()
        })
        .collect();
    let queries: Vec<Query> = [
        json!({"refId":"B","type":"reduce","expression":"A","reducer":"last","settings":{"mode":"dropNN"}}),
        json!({"refId":"C","type":"math","expression":"$B * 100"}),
        json!({"refId":"D","type":"threshold","expression":"C","conditions":[{
            "evaluator":{"type":"gt","params":[80]},"unloadEvaluator":{"type":"lt","params":[70]},
            "loadedDimensions":[{"instance":"host-1","job":"api"},{"instance":"host-2","job":"api"}]}]}),
    ]
    .into_iter()
    .map(|q| serde_json::from_value(q).expect("a query"))
    .collect();
    let refs: Vec<&Query> = queries.iter().collect();
    let decoded = Value::from_frames(&frames);

    let mut firing = 0;
    let mut vars = HashMap::from([("A".to_owned(), decoded)]);
    let pipeline_only = measure(|| {
        let pipeline = Pipeline::plan(&refs, &["A"]);
        let results = pipeline.run(&mut vars, &HashMap::new(), range);
        firing = count_firing(&results["D"]);
    });
    let from_frames = measure(|| {
        let pipeline = Pipeline::plan(&refs, &["A"]);
        let mut vars = HashMap::from([("A".to_owned(), Value::from_frames(&frames))]);
        let results = pipeline.run(&mut vars, &HashMap::new(), range);
        firing = count_firing(&results["D"]);
    });
    println!(
        "reduce+math+threshold over {SERIES} series x {POINTS} points, {RUNS} runs ({firing} firing)"
    );
    report("pipeline on decoded series", &pipeline_only);
    report("pipeline from data frames", &from_frames);
}

fn count_firing(result: &Result<Value, tandem_datasources::QueryError>) -> usize {
    match result {
        Ok(Value::Numbers(numbers)) => numbers.iter().filter(|n| n.value == Some(1.0)).count(),
        other => panic!("the threshold yields numbers, not {other:?}"),
    }
}

fn measure(mut run: impl FnMut()) -> Vec<Duration> {
    for _ in 0..10 {
        run();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(what: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    println!(
        "{what:>28}: median {:>8.3} ms, p90 {:>8.3} ms, min {:>8.3} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(times[0])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
