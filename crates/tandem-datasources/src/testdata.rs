//! Grafana's built-in test data source (`grafana-testdata-datasource`, formerly
//! `testdata`), the scenarios alert tests rely on.
//!
//! Parameter names and semantics follow Grafana 12's `pkg/tsdb/grafana-testdata-datasource`:
//! - `random_walk`: `seriesCount` frames, a point every `intervalMs` from `from` (at most
//!   10 000), each `walker + rand·noise` clamped to `min`/`max`, then the walker moves by
//!   `(rand − ½)·spread`; `startValue` (random when absent), `labels`, `alias`. Grafana
//!   seeds from the time range; so does Tandem, and `seed` fixes the sequence instead.
//!   The generator is Tandem's own, so the values differ from Grafana's.
//! - `csv_metric_values`: the values of `stringInput` spread evenly over the range.
//! - `predictable_pulse` (`pulseWave: {timeStep, onCount, offCount, onValue, offValue}`)
//!   and `predictable_csv_wave` (`csvWave: [{timeStep, valuesCSV, labels, name}]`): points
//!   every `timeStep` seconds aligned on the epoch, values a function of the time alone.
//! - `no_data_points`: no frames. `csv_content`: the CSV in `csvContent`, one field per
//!   column, numbers, booleans, text, and times for columns named like `time`.

use serde_json::Value;

use crate::frame::{Field, Frame, FrameMeta, Labels, Values};
use crate::query::{Query, QueryError, number};
use crate::time::TimeRange;

/// The most points a generated series has, as Grafana caps them.
const MAX_POINTS: usize = 10_000;
/// The most series `random_walk` makes.
const MAX_SERIES: i64 = 1_000;
/// The most points `random_walk` makes over all its series.
const MAX_TOTAL_POINTS: i64 = 1_000_000;
/// The largest CSV accepted in `csvContent` or `stringInput`, in bytes.
const MAX_CSV_BYTES: usize = 1024 * 1024;
/// The most rows of a CSV.
const MAX_CSV_ROWS: usize = 100_000;

/// Runs one testdata query over `range`.
pub(crate) fn query(query: &Query, range: TimeRange) -> Result<Vec<Frame>, QueryError> {
    let scenario = query
        .text("scenarioId")
        .filter(|s| !s.is_empty())
        .unwrap_or("random_walk");
    match scenario {
        "random_walk" => random_walk(query, range),
        "csv_metric_values" => csv_metric_values(query, range),
        "predictable_pulse" => predictable_pulse(query, range),
        "predictable_csv_wave" => predictable_csv_wave(query, range),
        "no_data_points" => Ok(Vec::new()),
        "csv_content" => csv_content(query),
        other => Err(QueryError::bad_request(format!(
            "unknown testdata scenario {:?}",
            crate::types::truncate(other, 64)
        ))),
    }
}

/// The value field's name: `alias`, or `<refId>-series` (with the index after the first).
fn series_name(query: &Query, index: usize) -> String {
    match query.text("alias").filter(|a| !a.is_empty()) {
        Some(alias) => alias.to_owned(),
        None if index == 0 => format!("{}-series", query.ref_id),
        None => format!("{}-series{index}", query.ref_id),
    }
}

/// Grafana's label text `{job="api", instance="$seriesIndex"}`.
fn parse_labels(text: &str, index: usize) -> Labels {
    let inner = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut labels = Labels::new();
    for pair in inner.split(',') {
        if let Some((key, value)) = pair.split_once('=') {
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            let value = value
                .trim()
                .trim_matches('"')
                .replace("$seriesIndex", &index.to_string());
            labels.insert(key.to_owned(), value);
        }
    }
    labels
}

fn optional_number(query: &Query, key: &str) -> Result<Option<f64>, QueryError> {
    match query.model.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => number(value)
            .map(Some)
            .ok_or_else(|| QueryError::bad_request(format!("{key} must be a number"))),
    }
}

fn random_walk(query: &Query, range: TimeRange) -> Result<Vec<Frame>, QueryError> {
    let series_count = query.int("seriesCount").unwrap_or(1).clamp(0, MAX_SERIES);
    let interval = query.interval_ms();
    let (min, max) = (
        optional_number(query, "min")?,
        optional_number(query, "max")?,
    );
    let spread = optional_number(query, "spread")?.unwrap_or(1.0);
    let noise = optional_number(query, "noise")?.unwrap_or(0.0);
    let seed = optional_number(query, "seed")?;
    let labels = query.text("labels").unwrap_or("");
    let per_series = (range.duration_ms() / interval).clamp(0, MAX_POINTS as i64);
    if per_series.saturating_mul(series_count) > MAX_TOTAL_POINTS {
        return Err(QueryError::bad_request(
            "random_walk would make too many points: fewer series or a longer interval",
        ));
    }
    let mut frames = Vec::new();
    for index in 0..usize::try_from(series_count).unwrap_or(0) {
        let base = match seed {
            Some(seed) => seed as u64,
            None => (range.from.wrapping_add(range.to)) as u64,
        };
        let mut rng = SplitMix64(base.wrapping_add(index as u64));
        let mut walker = match optional_number(query, "startValue")? {
            Some(start) => start,
            None => rng.next_f64() * 100.0,
        };
        let (mut times, mut values) = (Vec::new(), Vec::new());
        let mut t = range.from;
        while times.len() < MAX_POINTS && t < range.to {
            let mut next = walker + rng.next_f64() * noise;
            if let Some(min) = min
                && next < min
            {
                next = min;
                walker = min;
            }
            if let Some(max) = max
                && next > max
            {
                next = max;
                walker = max;
            }
            times.push(t);
            values.push(Some(next));
            walker += (rng.next_f64() - 0.5) * spread;
            t = t.saturating_add(interval);
        }
        let mut time = Field::time("time", times);
        time.config.interval = Some(interval);
        frames.push(Frame {
            meta: FrameMeta::typed("timeseries-multi", [0, 1]),
            fields: vec![
                time,
                Field::number(
                    &series_name(query, index),
                    parse_labels(labels, index),
                    values,
                ),
            ],
            ..Frame::default()
        });
    }
    Ok(frames)
}

fn csv_values(text: &str) -> Result<Vec<Option<f64>>, QueryError> {
    if text.len() > MAX_CSV_BYTES {
        return Err(QueryError::bad_request("the CSV is too large"));
    }
    text.split(',')
        .map(str::trim)
        .map(|raw| match raw {
            "null" | "" => Ok(None),
            "nan" | "NaN" => Ok(Some(f64::NAN)),
            other => other.parse::<f64>().map(Some).map_err(|_| {
                QueryError::bad_request(format!(
                    "failed to parse value {:?} into a number",
                    crate::types::truncate(other, 32)
                ))
            }),
        })
        .collect()
}

fn csv_metric_values(query: &Query, range: TimeRange) -> Result<Vec<Frame>, QueryError> {
    let input = query.text("stringInput").unwrap_or("");
    if input.trim().is_empty() {
        return Ok(vec![Frame {
            meta: Some(FrameMeta {
                executed_query_string: Some(input.to_owned()),
                ..FrameMeta::default()
            }),
            ..Frame::default()
        }]);
    }
    let values = csv_values(input)?;
    if values.len() > MAX_POINTS {
        return Err(QueryError::bad_request("stringInput has too many values"));
    }
    let count = values.len() as i64;
    let step = if count > 1 {
        range.duration_ms() / (count - 1)
    } else {
        0
    };
    let times = (0..count)
        .map(|i| range.from.saturating_add(i * step))
        .collect();
    Ok(vec![Frame {
        fields: vec![
            Field::time("time", times),
            Field::number(&series_name(query, 0), Labels::new(), values),
        ],
        ..Frame::default()
    }])
}

/// Grafana's `predictableSeries`: a point every `step_ms` from `from` rounded down to a
/// multiple of it, valued `value(time mod (step × length))`.
fn predictable(
    range: TimeRange,
    step_ms: i64,
    length: i64,
    value: impl Fn(i64) -> Option<f64>,
) -> Result<(Vec<i64>, Vec<Option<f64>>), QueryError> {
    if step_ms <= 0 || length <= 0 {
        return Err(QueryError::bad_request(
            "timeStep and the number of values must be positive",
        ));
    }
    let period = step_ms
        .checked_mul(length)
        .ok_or_else(|| QueryError::bad_request("the wave period is too long"))?;
    let mut cursor = range.from - range.from.rem_euclid(step_ms);
    let (mut times, mut values) = (Vec::new(), Vec::new());
    while times.len() < MAX_POINTS && cursor < range.to {
        times.push(cursor);
        values.push(value(cursor.rem_euclid(period)));
        cursor = cursor.saturating_add(step_ms);
    }
    Ok((times, values))
}

/// `onValue`/`offValue`: a number, or the strings `null` and `nan`.
fn wave_value(value: Option<&Value>, key: &str) -> Result<Option<f64>, QueryError> {
    match value {
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s == "null" => Ok(None),
        Some(Value::String(s)) if s == "nan" => Ok(Some(f64::NAN)),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                QueryError::bad_request(format!("failed to parse {key} into a number"))
            })
        }
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(QueryError::bad_request(format!("{key} must be a number"))),
    }
}

fn step_seconds(value: Option<&Value>) -> Result<i64, QueryError> {
    let seconds = value.and_then(number).unwrap_or(60.0);
    if !(1.0..=1e9).contains(&seconds) {
        return Err(QueryError::bad_request(
            "timeStep must be at least 1 second",
        ));
    }
    Ok((seconds as i64) * 1_000)
}

fn predictable_pulse(query: &Query, range: TimeRange) -> Result<Vec<Frame>, QueryError> {
    let empty = serde_json::Map::new();
    let wave = query
        .model
        .get("pulseWave")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let count = |key: &str, default: i64| {
        wave.get(key)
            .and_then(number)
            .map_or(default, |n| n.clamp(0.0, 1e6) as i64)
    };
    let step = step_seconds(wave.get("timeStep"))?;
    let (on_count, off_count) = (count("onCount", 3), count("offCount", 3));
    let on = wave_value(wave.get("onValue").or(Some(&Value::from(2))), "onValue")?;
    let off = wave_value(wave.get("offValue").or(Some(&Value::from(1))), "offValue")?;
    let (times, values) = predictable(range, step, on_count + off_count, |offset| {
        if offset < on_count.saturating_mul(step) {
            on
        } else {
            off
        }
    })?;
    Ok(vec![Frame {
        name: series_name(query, 0),
        meta: FrameMeta::typed("timeseries-multi", [0, 0]),
        fields: vec![
            Field::time("Time", times),
            Field::number(
                "Value",
                parse_labels(query.text("labels").unwrap_or(""), 0),
                values,
            ),
        ],
        ..Frame::default()
    }])
}

fn predictable_csv_wave(query: &Query, range: TimeRange) -> Result<Vec<Frame>, QueryError> {
    // Grafana saved one wave as an object before it allowed several.
    let waves: Vec<&Value> = match query.model.get("csvWave") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(wave @ Value::Object(_)) => vec![wave],
        _ => Vec::new(),
    };
    let mut frames = Vec::new();
    for wave in waves.into_iter().take(100) {
        let step = step_seconds(wave.get("timeStep"))?;
        let csv = wave.get("valuesCSV").and_then(Value::as_str).unwrap_or("");
        let values = csv_values(csv.trim().trim_end_matches(','))?;
        let length = values.len() as i64;
        let (times, values) = predictable(range, step, length, |offset| {
            values
                .get(usize::try_from(offset / step).unwrap_or(0))
                .copied()
                .flatten()
        })?;
        let labels = wave.get("labels").and_then(Value::as_str).unwrap_or("");
        let name = wave
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map_or_else(|| series_name(query, 0), str::to_owned);
        frames.push(Frame {
            name,
            meta: FrameMeta::typed("timeseries-multi", [0, 0]),
            fields: vec![
                Field::time("Time", times),
                Field::number("Value", parse_labels(labels, 0), values),
            ],
            ..Frame::default()
        });
    }
    Ok(frames)
}

fn csv_content(query: &Query) -> Result<Vec<Frame>, QueryError> {
    let content = query.text("csvContent").unwrap_or("");
    if content.is_empty() {
        return Ok(Vec::new());
    }
    if content.len() > MAX_CSV_BYTES {
        return Err(QueryError::bad_request("csvContent is too large"));
    }
    let rows = parse_csv(content)?;
    let mut rows = rows.into_iter();
    let header = rows
        .next()
        .ok_or_else(|| QueryError::bad_request("failed to read the CSV header line"))?;
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for row in rows {
        if row.len() != header.len() {
            return Err(QueryError::bad_request(
                "every CSV line must have as many fields as the header",
            ));
        }
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value.trim().to_owned());
        }
    }
    let mut fields = Vec::new();
    for (index, (name, raw)) in header.iter().zip(columns).enumerate() {
        let mut name = name.trim().to_owned();
        let mut values = typed_column(&raw);
        if name.to_ascii_lowercase().contains("time")
            && let Some(times) = as_times(&values)
        {
            values = times;
        }
        let mut labels = Labels::new();
        if let Some(brace) = name.find('{') {
            let parsed = parse_labels(name.get(brace..).unwrap_or(""), index);
            if !parsed.is_empty() {
                labels = parsed;
                name.truncate(brace);
            }
        }
        fields.push(Field {
            name,
            labels,
            values,
            ..Field::default()
        });
    }
    Ok(vec![Frame {
        name: query.text("alias").unwrap_or("").to_owned(),
        fields,
        ..Frame::default()
    }])
}

/// Grafana's column typing: booleans when the first value is one, else whole numbers, else
/// numbers, else text; `null` and empty are null.
fn typed_column(raw: &[String]) -> Values {
    let is_null = |s: &str| s.is_empty() || s == "null";
    let first = raw
        .first()
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_default();
    if matches!(first.as_str(), "T" | "F" | "TRUE" | "FALSE") {
        return Values::Bool(
            raw.iter()
                .map(|s| {
                    let upper = s.to_ascii_uppercase();
                    (!is_null(s) && upper != "NULL").then(|| upper == "T" || upper == "TRUE")
                })
                .collect(),
        );
    }
    let non_null: Vec<&String> = raw.iter().filter(|s| !is_null(s)).collect();
    if !non_null.is_empty() && non_null.iter().all(|s| s.parse::<i64>().is_ok()) {
        return Values::Int(raw.iter().map(|s| s.parse().ok()).collect());
    }
    if !non_null.is_empty() && non_null.iter().all(|s| s.parse::<f64>().is_ok()) {
        return Values::Number(raw.iter().map(|s| s.parse().ok()).collect());
    }
    Values::Text(
        raw.iter()
            .map(|s| (!is_null(s)).then(|| s.clone()))
            .collect(),
    )
}

/// A column of epoch milliseconds or RFC 3339 times as a time column, if any value is one.
fn as_times(values: &Values) -> Option<Values> {
    let times: Vec<Option<i64>> = match values {
        Values::Int(v) => v.clone(),
        Values::Number(v) => v.iter().map(|f| f.map(|f| f as i64)).collect(),
        Values::Text(v) => v
            .iter()
            .map(|s| {
                let s = s.as_deref()?;
                let parsed = ::time::OffsetDateTime::parse(
                    s,
                    &::time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
            })
            .collect(),
        _ => return None,
    };
    times
        .iter()
        .any(Option::is_some)
        .then_some(Values::NullableTime(times))
}

/// RFC 4180 CSV: quoted fields with `""` escapes, `\n` or `\r\n` line ends.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, QueryError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row.first().is_some_and(String::is_empty)) {
                    rows.push(std::mem::take(&mut row));
                } else {
                    row.clear();
                }
                if rows.len() > MAX_CSV_ROWS {
                    return Err(QueryError::bad_request("the CSV has too many lines"));
                }
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(QueryError::bad_request("the CSV has an unterminated quote"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// A small, fast, seedable generator (SplitMix64); testdata needs repeatability, not
/// cryptographic strength.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(model: Value, from: i64, to: i64) -> Result<Vec<Frame>, QueryError> {
        let q: Query = serde_json::from_value(model).unwrap();
        query(&q, TimeRange::new(from, to).unwrap())
    }

    #[test]
    fn pulse_depends_only_on_time() {
        let model = json!({"refId":"T","scenarioId":"predictable_pulse",
            "pulseWave":{"timeStep":60,"onCount":3,"offCount":2,"onValue":10,"offValue":1}});
        let frames = run(model.clone(), 600_030, 900_000).unwrap();
        let frame = &frames[0];
        assert_eq!(frame.name, "T-series");
        let Values::Time(times) = &frame.fields[0].values else {
            panic!("time")
        };
        assert_eq!(times, &[600_000, 660_000, 720_000, 780_000, 840_000]);
        // The period is 5 minutes from the epoch: 600 000 ms is its start (on).
        assert_eq!(
            frame.fields[1].values,
            Values::Number(vec![
                Some(10.0),
                Some(10.0),
                Some(10.0),
                Some(1.0),
                Some(1.0)
            ])
        );
        // Another range sees the same values at the same times.
        let shifted = run(model, 720_000, 780_001).unwrap();
        assert_eq!(
            shifted[0].fields[1].values,
            Values::Number(vec![Some(10.0), Some(1.0)])
        );
    }

    #[test]
    fn csv_wave_and_metric_values() {
        let frames = run(
            json!({"refId":"W","scenarioId":"predictable_csv_wave",
                "csvWave":[{"timeStep":10,"valuesCSV":"0,null,2,","labels":"job=\"a\"","name":"wave"}]}),
            0,
            60_000,
        )
        .unwrap();
        assert_eq!(frames[0].name, "wave");
        assert_eq!(
            frames[0].fields[1].labels.get("job").map(String::as_str),
            Some("a")
        );
        assert_eq!(
            frames[0].fields[1].values,
            Values::Number(vec![Some(0.0), None, Some(2.0), Some(0.0), None, Some(2.0)])
        );
        let frames = run(
            json!({"refId":"A","scenarioId":"csv_metric_values","stringInput":"1,20,90"}),
            1_000,
            3_000,
        )
        .unwrap();
        assert_eq!(
            frames[0].fields[0].values,
            Values::Time(vec![1_000, 2_000, 3_000])
        );
        assert_eq!(frames[0].fields[1].name, "A-series");
        assert!(
            run(
                json!({"refId":"A","scenarioId":"csv_metric_values","stringInput":"1,x"}),
                0,
                1
            )
            .is_err()
        );
        assert!(
            run(json!({"refId":"A","scenarioId":"no_data_points"}), 0, 1)
                .unwrap()
                .is_empty()
        );
        assert!(run(json!({"refId":"A","scenarioId":"nope"}), 0, 1).is_err());
    }

    #[test]
    fn random_walk_is_bounded_and_seeded() {
        let model = json!({"refId":"A","scenarioId":"random_walk","seriesCount":3,"min":0,"max":10,
            "startValue":5,"spread":4,"noise":1,"seed":42,"intervalMs":1000,"labels":"host=h$seriesIndex"});
        let frames = run(model.clone(), 0, 100_000).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].fields[1].name, "A-series2");
        assert_eq!(
            frames[2].fields[1].labels.get("host").map(String::as_str),
            Some("h2")
        );
        for frame in &frames {
            assert_eq!(frame.row_count(), 100);
            let Values::Number(values) = &frame.fields[1].values else {
                panic!("numbers")
            };
            assert!(values.iter().flatten().all(|v| (0.0..=10.0).contains(v)));
        }
        assert_eq!(frames, run(model, 0, 100_000).unwrap(), "a seed repeats");
        let huge =
            json!({"refId":"A","scenarioId":"random_walk","seriesCount":1000,"intervalMs":1});
        assert!(
            run(huge, 0, 10_000_000).is_err(),
            "ten million points are refused"
        );
    }

    #[test]
    fn csv_content_types_its_columns() {
        let frames = run(
            json!({"refId":"A","scenarioId":"csv_content",
                "csvContent":"time,value{job=\"x\"},ok,name\n1000,1.5,true,\"a,b\"\n2000,,false,c\n"}),
            0,
            1,
        )
        .unwrap();
        let fields = &frames[0].fields;
        assert_eq!(
            fields[0].values,
            Values::NullableTime(vec![Some(1_000), Some(2_000)])
        );
        assert_eq!(fields[1].name, "value");
        assert_eq!(fields[1].labels.get("job").map(String::as_str), Some("x"));
        assert_eq!(fields[1].values, Values::Number(vec![Some(1.5), None]));
        assert_eq!(
            fields[2].values,
            Values::Bool(vec![Some(true), Some(false)])
        );
        assert_eq!(
            fields[3].values,
            Values::Text(vec![Some("a,b".to_owned()), Some("c".to_owned())])
        );
        assert!(
            run(
                json!({"refId":"A","scenarioId":"csv_content","csvContent":"a,b\n1\n"}),
                0,
                1
            )
            .is_err()
        );
    }
}
