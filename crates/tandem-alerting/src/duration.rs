//! Durations as Grafana's alerting writes them: Prometheus' `model.Duration` (`5m`, `1h30m`,
//! `0s`, units `y w d h m s ms`) in rules and files, and Go's `time.Duration` text (`1m0s`)
//! in some of its messages.

const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds: units in decreasing order, each at most
/// once (`1h30m`, `90s`, `500ms`), or `0`. `None` for anything else (negative, empty, out
/// of range).
pub fn parse_duration(text: &str) -> Option<i64> {
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let amount: i64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let position = UNITS.iter().position(|(name, _)| *name == unit)?;
        if position < next_unit {
            return None;
        }
        next_unit = position + 1;
        let (_, ms) = UNITS.get(position)?;
        total = total.checked_add(amount.checked_mul(*ms)?)?;
    }
    Some(total)
}

/// Formats milliseconds as Prometheus does (`0s`, `5m`, `1h30m`, `1w`, `500ms`).
pub fn format_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_owned();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (name, unit) in UNITS {
        let amount = rest / unit;
        if amount > 0 {
            out.push_str(&amount.to_string());
            out.push_str(name);
            rest -= amount * unit;
        }
    }
    out
}

/// Formats whole seconds as Go's `time.Duration.String` does (`10s`, `1m0s`, `1h0m0s`).
pub fn go_duration(seconds: i64) -> String {
    let negative = seconds < 0;
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let body = if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    };
    if negative { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations_round_trip() {
        for (text, ms) in [
            ("0", 0),
            ("0s", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("90s", 90_000),
            ("1w", 604_800_000),
            ("500ms", 500),
            ("1d12h", 129_600_000),
        ] {
            assert_eq!(parse_duration(text), Some(ms), "{text}");
        }
        for bad in ["", "5", "-5m", "1m1h", "5x", "1.5m", "m", "1m1m"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(604_800_000), "1w");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(15), "15s");
        assert_eq!(go_duration(3600), "1h0m0s");
    }
}
