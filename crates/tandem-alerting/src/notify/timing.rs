//! Mute timings with Alertmanager's time-interval semantics: an interval holds at an
//! instant when each of its non-empty fields (`times`, `weekdays`, `days_of_month`,
//! `months`, `years`) holds in its `location`, and a timing is active when any of its
//! intervals holds.
//!
//! Ranges are inclusive except `times`, whose `end_time` is exclusive (`24:00` allowed).
//! Negative days of the month count from its end (`-1` is the last day). `location` is an
//! IANA time zone name from the bundled database; empty and `UTC` mean UTC, and `Local`
//! also means UTC, since instances of one cluster may run in different zones and must
//! agree.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use serde_json::Value;

use crate::notify::policy::CompiledRoute;
use crate::{Error, Result};

/// One parsed time interval.
#[derive(Clone, Debug)]
pub struct TimeInterval {
    /// Minutes of the day, `[start, end)`.
    times: Vec<(i32, i32)>,
    /// Days of the week, Sunday 0, inclusive.
    weekdays: Vec<(i32, i32)>,
    /// Days of the month, negative from the end, inclusive.
    days_of_month: Vec<(i32, i32)>,
    /// Months 1–12, inclusive.
    months: Vec<(i32, i32)>,
    /// Years, inclusive.
    years: Vec<(i32, i32)>,
    location: TimeZone,
}

/// A mute timing: the union of its intervals.
#[derive(Clone, Debug, Default)]
pub struct MuteTiming {
    intervals: Vec<TimeInterval>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn bad(what: String) -> Error {
    Error::BadRequest(format!("invalid mute timing: {what}"))
}

impl MuteTiming {
    /// Parses a mute timing's `time_intervals` (Grafana's JSON shape), with
    /// Alertmanager's checks.
    pub fn parse(intervals: &Value) -> Result<MuteTiming> {
        let list = match intervals {
            Value::Null => return Ok(MuteTiming::default()),
            Value::Array(list) => list,
            _ => return Err(bad("time_intervals must be a list".to_owned())),
        };
        let intervals = list
            .iter()
            .map(TimeInterval::parse)
            .collect::<Result<Vec<_>>>()?;
        Ok(MuteTiming { intervals })
    }

    /// Whether some interval holds at `ms` (Unix milliseconds).
    pub fn active_at(&self, ms: i64) -> bool {
        self.intervals.iter().any(|i| i.contains(ms))
    }
}

/// The org's stored mute timings by name; one that no longer parses is left out (it never
/// mutes), with a warning.
pub fn timings_by_name(
    org: crate::OrgId,
    documents: Vec<crate::notify::store::NamedDocument>,
) -> HashMap<String, MuteTiming> {
    documents
        .into_iter()
        .filter_map(|d| {
            let intervals = d.body.get("time_intervals").unwrap_or(&Value::Null);
            match MuteTiming::parse(intervals) {
                Ok(timing) => Some((d.name, timing)),
                Err(err) => {
                    tracing::warn!(org = org.0, name = %d.name, error = %err, "a stored mute timing is invalid; it never mutes");
                    None
                }
            }
        })
        .collect()
}

/// Whether `route` sends nothing at `now_ms`: one of its `mute_time_intervals` is active,
/// or it has `active_time_intervals` and none is. A name without a timing (deleted since)
/// is never active.
pub fn route_muted(
    route: &CompiledRoute,
    timings: &HashMap<String, MuteTiming>,
    now_ms: i64,
) -> bool {
    !muted_by(route, timings, now_ms).is_empty()
}

/// The names of the timings that mute `route` at `now_ms` (Alertmanager's `mutedBy`): its
/// mute timings in force, and its active time intervals when none of them is.
pub fn muted_by(
    route: &CompiledRoute,
    timings: &HashMap<String, MuteTiming>,
    now_ms: i64,
) -> Vec<String> {
    let active = |name: &&String| timings.get(*name).is_some_and(|t| t.active_at(now_ms));
    let mut names: Vec<String> = route
        .mute_time_intervals
        .iter()
        .filter(active)
        .cloned()
        .collect();
    if !route.active_time_intervals.is_empty()
        && !route.active_time_intervals.iter().any(|n| active(&n))
    {
        names.extend(route.active_time_intervals.iter().cloned());
    }
    names
}

impl TimeInterval {
    fn parse(value: &Value) -> Result<TimeInterval> {
        let Value::Object(map) = value else {
            return Err(bad("a time interval must be an object".to_owned()));
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.trim().to_ascii_lowercase()),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(bad(format!("{key} must be a list of strings"))),
                    })
                    .collect(),
                Some(_) => Err(bad(format!("{key} must be a list"))),
            }
        };
        let mut times = Vec::new();
        match map.get("times") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let field = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("");
                    let start = minutes(field("start_time"), false)?;
                    let end = minutes(field("end_time"), true)?;
                    if start >= end {
                        return Err(bad(
                            "start time cannot be equal or greater than end time".to_owned()
                        ));
                    }
                    times.push((start, end));
                }
            }
            Some(_) => return Err(bad("times must be a list".to_owned())),
        }
        let weekdays = ranges(&strings("weekdays")?, "weekday", |s| named(s, &WEEKDAYS, 0))?;
        let months = ranges(&strings("months")?, "month", |s| {
            named(s, &MONTHS, 1).or_else(|| s.parse().ok().filter(|m| (1..=12).contains(m)))
        })?;
        let years = ranges(&strings("years")?, "year", |s| {
            s.parse().ok().filter(|y: &i32| *y > 0 && *y < 10_000)
        })?;
        let mut days_of_month = Vec::new();
        for text in strings("days_of_month")? {
            let (a, b) = split_range(&text);
            let day = |s: &str| {
                s.parse::<i32>()
                    .ok()
                    .filter(|d| (1..=31).contains(&d.abs()))
                    .ok_or_else(|| bad(format!("invalid day of month '{s}'")))
            };
            let (begin, end) = (day(a)?, day(b)?);
            if begin.signum() == end.signum() && begin > end {
                return Err(bad(format!(
                    "start day of month cannot be after end day in '{text}'"
                )));
            }
            days_of_month.push((begin, end));
        }
        let location = match map.get("location").and_then(Value::as_str).map(str::trim) {
            None | Some("" | "UTC" | "Local") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                bad(format!(
                    "unknown location '{}'",
                    crate::types::truncate(name, 60)
                ))
            })?,
        };
        Ok(TimeInterval {
            times,
            weekdays,
            days_of_month,
            months,
            years,
            location,
        })
    }

    fn contains(&self, ms: i64) -> bool {
        let Ok(instant) = jiff::Timestamp::from_millisecond(ms) else {
            return false;
        };
        let t = self.location.to_datetime(instant);
        let within = |ranges: &[(i32, i32)], v: i32| {
            ranges.is_empty() || ranges.iter().any(|(a, b)| (*a..=*b).contains(&v))
        };
        let minute = i32::from(t.hour()) * 60 + i32::from(t.minute());
        if !(self.times.is_empty() || self.times.iter().any(|(a, b)| *a <= minute && minute < *b)) {
            return false;
        }
        if !within(
            &self.weekdays,
            i32::from(t.weekday().to_sunday_zero_offset()),
        ) || !within(&self.months, i32::from(t.month()))
            || !within(&self.years, i32::from(t.year()))
        {
            return false;
        }
        if self.days_of_month.is_empty() {
            return true;
        }
        let days = i32::from(t.days_in_month());
        let day = i32::from(t.day());
        self.days_of_month.iter().any(|(begin, end)| {
            let begin = if *begin < 0 { days + begin + 1 } else { *begin };
            let end = if *end < 0 { days + end + 1 } else { *end };
            // A range starting after the month's last day holds on none of its days.
            begin <= days && (begin.max(1)..=end.min(days)).contains(&day)
        })
    }
}

/// `HH:MM` as minutes of the day; `24:00` only as an end.
fn minutes(text: &str, end: bool) -> Result<i32> {
    let invalid = || {
        bad(format!(
            "invalid time of day '{}'",
            crate::types::truncate(text, 20)
        ))
    };
    let (h, m) = text.split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(invalid());
    }
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| invalid())?,
        m.parse().map_err(|_| invalid())?,
    );
    match (h, m) {
        (24, 0) if end => Ok(24 * 60),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(invalid()),
    }
}

fn named(text: &str, names: &[&str], first: i32) -> Option<i32> {
    names
        .iter()
        .position(|n| *n == text)
        .and_then(|i| i32::try_from(i).ok())
        .map(|i| i + first)
}

fn split_range(text: &str) -> (&str, &str) {
    match text.split_once(':') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text, text),
    }
}

fn ranges(
    texts: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<i32>,
) -> Result<Vec<(i32, i32)>> {
    texts
        .iter()
        .map(|text| {
            let (a, b) = split_range(text);
            let value = |s: &str| {
                parse(s).ok_or_else(|| {
                    bad(format!(
                        "invalid {what} '{}'",
                        crate::types::truncate(s, 20)
                    ))
                })
            };
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(bad(format!(
                    "start {what} cannot be after end {what} in '{text}'"
                )));
            }
            Ok((a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> i64 {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[track_caller]
    fn check(intervals: serde_json::Value, instant: &str, expected: bool) {
        let timing = MuteTiming::parse(&intervals).unwrap();
        assert_eq!(
            timing.active_at(at(instant)),
            expected,
            "{intervals} at {instant}"
        );
    }

    #[test]
    fn alertmanager_time_interval_semantics() {
        use serde_json::json;
        // 2024-03-04 is a Monday.
        let office = json!([{"times": [{"start_time": "09:00", "end_time": "17:00"}],
                              "weekdays": ["monday:friday"]}]);
        check(office.clone(), "2024-03-04T09:00:00Z", true);
        check(office.clone(), "2024-03-04T16:59:59Z", true);
        check(office.clone(), "2024-03-04T17:00:00Z", false);
        check(office.clone(), "2024-03-04T08:59:59Z", false);
        check(office, "2024-03-09T12:00:00Z", false);
        check(
            json!([{"weekdays": ["saturday", "sunday"]}]),
            "2024-03-10T12:00:00Z",
            true,
        );
        check(
            json!([{"times": [{"start_time": "22:00", "end_time": "24:00"}]}]),
            "2024-03-04T23:59:00Z",
            true,
        );
        // Last day of the month, in a leap year and not.
        check(
            json!([{"days_of_month": ["-1"]}]),
            "2024-02-29T10:00:00Z",
            true,
        );
        check(
            json!([{"days_of_month": ["-1"]}]),
            "2024-02-28T10:00:00Z",
            false,
        );
        check(
            json!([{"days_of_month": ["-1"]}]),
            "2023-02-28T10:00:00Z",
            true,
        );
        check(
            json!([{"days_of_month": ["1:5", "-3:-1"]}]),
            "2024-04-29T00:00:00Z",
            true,
        );
        check(
            json!([{"days_of_month": ["1:5", "-3:-1"]}]),
            "2024-04-15T00:00:00Z",
            false,
        );
        check(
            json!([{"days_of_month": ["31"]}]),
            "2024-04-30T00:00:00Z",
            false,
        );
        check(
            json!([{"days_of_month": ["30:31"]}]),
            "2024-02-29T00:00:00Z",
            false,
        );
        check(
            json!([{"months": ["december", "1:2"]}]),
            "2024-02-10T00:00:00Z",
            true,
        );
        check(
            json!([{"months": ["december", "1:2"]}]),
            "2024-03-10T00:00:00Z",
            false,
        );
        check(
            json!([{"years": ["2020:2023"]}]),
            "2024-01-01T00:00:00Z",
            false,
        );
        check(
            json!([{"years": ["2020:2024"]}]),
            "2024-12-31T23:59:59Z",
            true,
        );
        // The location shifts everything: 23:30 UTC on a Sunday is Monday in Kolkata.
        let kolkata = json!([{"weekdays": ["monday"], "times": [{"start_time": "05:00", "end_time": "05:30"}],
                              "location": "Asia/Kolkata"}]);
        check(kolkata.clone(), "2024-03-03T23:30:00Z", true);
        check(kolkata, "2024-03-04T00:00:00Z", false);
        // Any interval of the list; an empty interval holds always.
        check(
            json!([{"years": ["1999"]}, {}]),
            "2024-01-01T00:00:00Z",
            true,
        );
        check(json!([]), "2024-01-01T00:00:00Z", false);
    }

    #[test]
    fn bad_intervals_are_refused() {
        use serde_json::json;
        for bad in [
            json!([{"times": [{"start_time": "10:00", "end_time": "09:00"}]}]),
            json!([{"times": [{"start_time": "24:00", "end_time": "24:00"}]}]),
            json!([{"times": [{"start_time": "9:00", "end_time": "10:00"}]}]),
            json!([{"weekdays": ["friday:monday"]}]),
            json!([{"weekdays": ["someday"]}]),
            json!([{"days_of_month": ["0"]}]),
            json!([{"days_of_month": ["5:1"]}]),
            json!([{"months": ["13"]}]),
            json!([{"years": ["2024:2020"]}]),
            json!([{"location": "Mars/Olympus"}]),
            json!({"weekdays": []}),
        ] {
            assert!(MuteTiming::parse(&bad).is_err(), "{bad}");
        }
        assert!(MuteTiming::parse(&json!([{"days_of_month": ["1:-1"]}])).is_ok());
    }
}
