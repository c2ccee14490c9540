//! Time ranges and durations as Grafana writes them.
//!
//! A range bound is epoch milliseconds (a number or digits in a string) or a relative time:
//! `now`, `now-1h`, `now-5m`, `now+1d`, several terms (`now-1h-30m`), and a rounding
//! suffix (`now-1d/d` is the start of yesterday, UTC). Durations are Grafana's interval
//! syntax: `15s`, `1m30s`, `500ms`, `2h`, `1d`, `1w`, `1y`; a bare number is seconds.

use serde_json::Value;

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
const YEAR: i64 = 365 * DAY;
/// Grafana's month in relative times: 30 days.
const MONTH: i64 = 30 * DAY;

/// A resolved time range, epoch milliseconds, `from <= to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// The start.
    pub from: i64,
    /// The end.
    pub to: i64,
}

impl TimeRange {
    /// The range `from`..`to` (epoch milliseconds); `Err` when `to < from`.
    pub fn new(from: i64, to: i64) -> Result<TimeRange, String> {
        if to < from {
            return Err(format!(
                "invalid time range: to ({to}) is before from ({from})"
            ));
        }
        Ok(TimeRange { from, to })
    }

    /// Parses Grafana's `from`/`to` request values against `now` (epoch milliseconds).
    pub fn parse(from: &Value, to: &Value, now: i64) -> Result<TimeRange, String> {
        let from =
            parse_time(from, now).ok_or_else(|| format!("invalid from: {}", shorten(from)))?;
        let to = parse_time(to, now).ok_or_else(|| format!("invalid to: {}", shorten(to)))?;
        TimeRange::new(from, to)
    }

    /// `to - from` in milliseconds.
    pub fn duration_ms(&self) -> i64 {
        self.to.saturating_sub(self.from)
    }
}

/// One bound: a number, a string of digits, or a relative time.
pub fn parse_time(value: &Value, now: i64) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(saturating_ms)),
        Value::String(s) => parse_time_text(s.trim(), now),
        // Grafana's default range when a client sends none.
        Value::Null => None,
        _ => None,
    }
}

fn parse_time_text(text: &str, now: i64) -> Option<i64> {
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let rest = text.strip_prefix("now")?;
    let (terms, rounding) = match rest.split_once('/') {
        Some((terms, unit)) => (terms, Some(unit)),
        None => (rest, None),
    };
    let mut time = now;
    let mut rest = terms;
    while !rest.is_empty() {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        rest = rest.get(1..)?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let amount: i64 = if digits == 0 {
            1
        } else {
            rest.get(..digits)?.parse().ok()?
        };
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = unit_ms(rest.get(..unit_len)?, true)?;
        rest = rest.get(unit_len..)?;
        time = time.checked_add(sign * amount.checked_mul(unit)?)?;
    }
    if let Some(unit) = rounding {
        let unit = unit_ms(unit, true)?;
        time = time.checked_sub(time.rem_euclid(unit))?;
    }
    Some(time)
}

/// Milliseconds in one `unit`. `M` is a month only in relative times; in durations `m`
/// and `M` differ as Go's do not, so `M` is refused there.
fn unit_ms(unit: &str, relative: bool) -> Option<i64> {
    Some(match unit {
        "ms" => 1,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        "M" if relative => MONTH,
        "y" => YEAR,
        _ => return None,
    })
}

/// Parses a Grafana interval (`15s`, `1m30s`, `500ms`, `1d`; a bare number is seconds;
/// `<` and `>` around it, Grafana's old "at least" markers, are ignored) into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim().trim_start_matches('<').trim_start_matches('>');
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok()?.checked_mul(SECOND);
    }
    let mut total: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if digits == 0 {
            return None;
        }
        let amount: f64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = unit_ms(rest.get(..unit_len)?, false)?;
        rest = rest.get(unit_len..)?;
        let part = amount * unit as f64;
        if !part.is_finite() || part > i64::MAX as f64 {
            return None;
        }
        total = total.checked_add(part as i64)?;
    }
    Some(total)
}

/// Grafana's `FormatInterval`: the largest whole unit (`1y`, `2d`, `3h`, `15m`, `30s`,
/// `500ms`).
pub fn format_interval(ms: i64) -> String {
    for (unit, name) in [
        (YEAR, "y"),
        (DAY, "d"),
        (HOUR, "h"),
        (MINUTE, "m"),
        (SECOND, "s"),
    ] {
        if ms >= unit {
            return format!("{}{name}", ms / unit);
        }
    }
    if ms >= 1 {
        format!("{ms}ms")
    } else {
        "1ms".to_owned()
    }
}

/// Grafana's `gtime.RoundInterval`: a "nice" interval near `ms`.
pub fn round_interval(ms: i64) -> i64 {
    const STEPS: &[(i64, i64)] = &[
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, SECOND),
        (3_500, 2 * SECOND),
        (7_500, 5 * SECOND),
        (12_500, 10 * SECOND),
        (17_500, 15 * SECOND),
        (25_000, 20 * SECOND),
        (45_000, 30 * SECOND),
        (90_000, MINUTE),
        (210_000, 2 * MINUTE),
        (450_000, 5 * MINUTE),
        (750_000, 10 * MINUTE),
        (1_050_000, 15 * MINUTE),
        (1_500_000, 20 * MINUTE),
        (2_700_000, 30 * MINUTE),
        (5_400_000, HOUR),
        (9_000_000, 2 * HOUR),
        (16_200_000, 3 * HOUR),
        (32_400_000, 6 * HOUR),
        (86_400_000, 12 * HOUR),
        (172_800_000, DAY),
        (604_800_000, DAY),
        (1_814_400_000, WEEK),
    ];
    for &(limit, value) in STEPS {
        if ms <= limit {
            return value;
        }
    }
    if ms < 3_628_800_000 {
        return MONTH;
    }
    YEAR
}

fn saturating_ms(f: f64) -> i64 {
    if f.is_nan() {
        0
    } else {
        // `as` saturates at the bounds.
        f as i64
    }
}

fn shorten(value: &Value) -> String {
    crate::types::truncate(&value.to_string(), 64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn bounds_parse_like_grafana() {
        for (value, expected) in [
            (json!("now"), Some(NOW)),
            (json!("now-1h"), Some(NOW - HOUR)),
            (json!("now-5m"), Some(NOW - 5 * MINUTE)),
            (json!("now+1d"), Some(NOW + DAY)),
            (json!("now-1h-30m"), Some(NOW - HOUR - 30 * MINUTE)),
            (json!("now/d"), Some(NOW - NOW % DAY)),
            (json!("now-1d/d"), Some(NOW - DAY - (NOW - DAY) % DAY)),
            (json!("1699990000000"), Some(1_699_990_000_000)),
            (json!(1_699_990_000_000_i64), Some(1_699_990_000_000)),
            (json!("now-1x"), None),
            (json!("yesterday"), None),
            (json!("now-99999999999999999999y"), None),
            (json!(""), None),
            (json!(true), None),
        ] {
            assert_eq!(parse_time(&value, NOW), expected, "{value}");
        }
        assert!(TimeRange::parse(&json!("now"), &json!("now-1h"), NOW).is_err());
    }

    #[test]
    fn durations_parse_like_grafana() {
        for (text, expected) in [
            ("15s", Some(15_000)),
            ("1m30s", Some(90_000)),
            ("500ms", Some(500)),
            ("2h", Some(2 * HOUR)),
            ("1d", Some(DAY)),
            ("30", Some(30_000)),
            (">10s", Some(10_000)),
            ("1.5s", Some(1_500)),
            ("", None),
            ("s", None),
            ("10q", None),
            ("99999999999999999999999y", None),
        ] {
            assert_eq!(parse_duration_ms(text), expected, "{text}");
        }
    }

    #[test]
    fn intervals_round_and_format_like_grafana() {
        assert_eq!(round_interval(2_400), 2_000);
        assert_eq!(round_interval(15_000), 15_000);
        assert_eq!(round_interval(3_600_000 / 1_500), 2_000);
        assert_eq!(round_interval(100 * DAY), YEAR);
        assert_eq!(format_interval(15_000), "15s");
        assert_eq!(format_interval(90_000), "1m");
        assert_eq!(format_interval(250), "250ms");
    }
}
