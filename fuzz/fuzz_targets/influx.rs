//! InfluxDB line protocol as `POST /api/live/push/:id` takes it (`tandem_live::influx`).
//!
//! Asserts: no panic; the points written back as line protocol (escaped as Telegraf
//! escapes them) parse to the same points; every frame's columns have one value per row.
#![no_main]

use std::fmt::Write;

use libfuzzer_sys::fuzz_target;
use tandem_live::frame::Values;
use tandem_live::influx::{self, FieldValue, InfluxLimits, Point};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let limits = InfluxLimits::default();
    if let Ok(points) = influx::parse(body, &limits) {
        let written: String = points.iter().map(line).collect();
        let again = influx::parse(&written, &limits)
            .unwrap_or_else(|err| panic!("{written:?} does not parse back: {err}"));
        assert_eq!(points, again, "{written:?}");
    }
    if let Ok(frames) = influx::to_frames(body, &limits) {
        for frame in frames {
            let rows = frame.fields.first().map(|f| len(&f.values));
            for field in &frame.fields {
                assert_eq!(Some(len(&field.values)), rows, "{frame:?}");
            }
        }
    }
});

/// One point as line protocol.
fn line(point: &Point) -> String {
    let mut out = escape(&point.measurement, ", ");
    for (key, value) in &point.tags {
        let _ = write!(out, ",{}={}", escape(key, ",= "), escape(value, ", "));
    }
    for (index, (key, value)) in point.fields.iter().enumerate() {
        out.push(if index == 0 { ' ' } else { ',' });
        out.push_str(&escape(key, ",= "));
        out.push('=');
        match value {
            FieldValue::Float(v) => {
                let _ = write!(out, "{v:?}");
            }
            FieldValue::Int(v) => {
                let _ = write!(out, "{v}i");
            }
            FieldValue::UInt(v) => {
                let _ = write!(out, "{v}u");
            }
            FieldValue::Bool(v) => {
                let _ = write!(out, "{v}");
            }
            FieldValue::Str(v) => {
                let _ = write!(out, "\"{}\"", escape(v, "\""));
            }
        }
    }
    if let Some(timestamp) = point.timestamp {
        let _ = write!(out, " {timestamp}");
    }
    out.push('\n');
    out
}

/// A backslash before every backslash and every byte of `special`.
fn escape(text: &str, special: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' || special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn len(values: &Values) -> usize {
    match values {
        Values::Time(v) => v.len(),
        Values::Number(v) => v.len(),
        Values::Text(v) => v.len(),
        Values::Bool(v) => v.len(),
    }
}
