//! Durations and times a client writes: alerting's Prometheus durations (`for`,
//! `interval`), the data sources' Grafana intervals and relative times (`now-1h/d`), and
//! silences' RFC 3339 times.
//!
//! Asserts: no panic; a Prometheus duration reads back from its own formatting
//! (`parse(format(ms)) == ms`); Grafana's interval formatting loses at most the smaller
//! units and reads back to no more than the input; a silence time within the accepted
//! range reads back from its formatting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tandem_alerting::notify::silence::{MAX_TIME_MS, format_time, parse_time};
use tandem_alerting::{format_duration, go_duration, parse_duration};
use tandem_datasources::{TimeRange, format_interval, parse_duration_ms, round_interval};

/// A fixed "now": 2023-11-14T22:13:20Z.
const NOW: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    // The first eight bytes are also a number, so the formatters see every i64.
    if let Some(bytes) = data.get(..8) {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(bytes);
        check_number(i64::from_le_bytes(raw));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Some(ms) = parse_duration(text) {
        assert!(ms >= 0, "{text:?} is {ms}");
        assert_eq!(parse_duration(&format_duration(ms)), Some(ms), "{text:?}");
    }

    if let Some(ms) = parse_duration_ms(text) {
        check_interval(ms);
    }

    let value = Value::String(text.to_owned());
    let _ = tandem_datasources::parse_time(&value, NOW);
    let _ = TimeRange::parse(&value, &Value::String("now".to_owned()), NOW);
    if let Some((from, to)) = text.split_once('\n') {
        let range = TimeRange::parse(
            &Value::String(from.to_owned()),
            &Value::String(to.to_owned()),
            NOW,
        );
        if let Ok(range) = range {
            assert!(range.from <= range.to, "{range:?}");
            assert!(range.duration_ms() >= 0, "{range:?}");
        }
    }

    if let Ok(ms) = parse_time("startsAt", text)
        && (0..=MAX_TIME_MS).contains(&ms)
    {
        let written = format_time(ms);
        assert_eq!(
            parse_time("startsAt", &written).ok(),
            Some(ms),
            "{text:?} → {written}"
        );
    }
});

fn check_number(ms: i64) {
    let formatted = format_duration(ms);
    assert_eq!(
        parse_duration(&formatted),
        Some(ms.max(0)),
        "{ms} → {formatted}"
    );
    let _ = go_duration(ms);
    let _ = go_duration(ms / 1000);
    let _ = round_interval(ms);
    check_interval(ms);
    let _ = format_time(ms);
}

fn check_interval(ms: i64) {
    let formatted = format_interval(ms);
    let Some(back) = parse_duration_ms(&formatted) else {
        panic!("{ms} → {formatted:?} does not read back");
    };
    if ms >= 1 {
        assert!(back <= ms, "{ms} → {formatted} → {back}");
        assert_eq!(format_interval(back), formatted, "{ms} → {back}");
    } else {
        assert_eq!(back, 1, "{ms} → {formatted}");
    }
}
