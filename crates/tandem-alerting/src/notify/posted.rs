//! Alerts posted to the Alertmanager v2 API (`POST …/api/v2/alerts`) by an outside
//! generator, such as a Prometheus server whose `alerting.alertmanagers` points at Tandem:
//! their validation, the defaults Alertmanager gives them, how a repeated post of the same
//! label set merges into the stored alert, and how one is shown to the dispatcher as an
//! [`AlertInstance`] so it is routed, grouped, silenced and sent exactly once as the rule
//! state's alerts are.
//!
//! Times follow Alertmanager: a missing `startsAt` is the post's time (or `endsAt` when
//! only that is given); a missing `endsAt` is the post's time plus the resolve timeout
//! (5 minutes), after which an alert not posted again is resolved. An alert whose `endsAt`
//! has passed is resolved. The post's time is the database's clock, so every instance
//! agrees on it.

use serde::Deserialize;
use serde_json::Value;

use crate::notify::silence::parse_time;
use crate::types::fingerprint;
use crate::{AlertInstance, Error, InstanceState, Labels, OrgId, Result};

/// Alertmanager's `resolve_timeout` default: how long an alert posted without `endsAt`
/// fires unless posted again.
pub const RESOLVE_TIMEOUT_MS: i64 = 5 * 60 * 1000;
/// The most alerts one post may carry (Prometheus sends at most 256 at a time).
pub const MAX_ALERTS_PER_POST: usize = 10_000;
/// The most labels (and, separately, annotations) one alert may carry.
pub const MAX_PAIRS: usize = 64;
/// The longest label or annotation name.
pub const MAX_NAME_LEN: usize = 256;
/// The longest label value.
pub const MAX_LABEL_VALUE_LEN: usize = 4096;
/// The longest annotation value.
pub const MAX_ANNOTATION_VALUE_LEN: usize = 16_384;
/// The longest `generatorURL`.
pub const MAX_GENERATOR_URL_LEN: usize = 2048;

/// One alert as Alertmanager's `postableAlert` carries it, times parsed, not yet defaulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostableAlert {
    /// The identifying labels (at least one).
    pub labels: Labels,
    /// The annotations.
    pub annotations: Labels,
    /// `startsAt`, epoch ms, when given.
    pub starts_at: Option<i64>,
    /// `endsAt`, epoch ms, when given.
    pub ends_at: Option<i64>,
    /// `generatorURL`, or empty.
    pub generator_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    labels: Option<Labels>,
    #[serde(default)]
    annotations: Option<Labels>,
    #[serde(default, rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_pairs(what: &str, pairs: &Labels, max_value: usize) -> Result<()> {
    if pairs.len() > MAX_PAIRS {
        return Err(Error::BadRequest(format!(
            "{what}: at most {MAX_PAIRS} pairs, not {}",
            pairs.len()
        )));
    }
    for (name, value) in pairs {
        if name.len() > MAX_NAME_LEN || !valid_name(name) {
            return Err(Error::BadRequest(format!(
                "invalid {what} name {:?}",
                name.chars().take(60).collect::<String>()
            )));
        }
        if value.len() > max_value {
            return Err(Error::BadRequest(format!(
                "{what} {name}: the value is longer than {max_value} bytes"
            )));
        }
    }
    Ok(())
}

fn optional_time(field: &str, text: Option<&str>) -> Result<Option<i64>> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        // Go's zero time, which Alertmanager's clients send for "unset".
        Some(t) if t.starts_with("0001-01-01T00:00:00") => Ok(None),
        Some(t) => parse_time(field, t).map(Some),
    }
}

/// Parses and validates the body of `POST alerts` (a JSON array of `postableAlert`); the
/// first fault, with the alert's index, as `BadRequest`. Nothing is taken when one alert
/// is bad, so a refused post changes nothing.
pub fn parse_postable_alerts(body: &Value) -> Result<Vec<PostableAlert>> {
    let Some(items) = body.as_array() else {
        return Err(Error::BadRequest(
            "the body must be a JSON array of alerts".to_owned(),
        ));
    };
    if items.len() > MAX_ALERTS_PER_POST {
        return Err(Error::BadRequest(format!(
            "at most {MAX_ALERTS_PER_POST} alerts per request, not {}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_one(item).map_err(|err| at_index(i, err)))
        .collect()
}

fn at_index(i: usize, err: Error) -> Error {
    match err {
        Error::BadRequest(why) => Error::BadRequest(format!("alert {i}: {why}")),
        other => other,
    }
}

fn parse_one(item: &Value) -> Result<PostableAlert> {
    let wire: Wire =
        serde_json::from_value(item.clone()).map_err(|err| Error::BadRequest(err.to_string()))?;
    let labels = wire.labels.unwrap_or_default();
    if labels.is_empty() {
        return Err(Error::BadRequest(
            "at least one label pair required".to_owned(),
        ));
    }
    check_pairs("label", &labels, MAX_LABEL_VALUE_LEN)?;
    let annotations = wire.annotations.unwrap_or_default();
    check_pairs("annotation", &annotations, MAX_ANNOTATION_VALUE_LEN)?;
    let generator_url = wire.generator_url.unwrap_or_default();
    if generator_url.len() > MAX_GENERATOR_URL_LEN {
        return Err(Error::BadRequest(format!(
            "generatorURL is longer than {MAX_GENERATOR_URL_LEN} bytes"
        )));
    }
    let starts_at = optional_time("startsAt", wire.starts_at.as_deref())?;
    let ends_at = optional_time("endsAt", wire.ends_at.as_deref())?;
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e < s
    {
        return Err(Error::BadRequest(
            "start time must be before end time".to_owned(),
        ));
    }
    Ok(PostableAlert {
        labels,
        annotations,
        starts_at,
        ends_at,
        generator_url,
    })
}

/// A posted alert as stored: keyed by (org, fingerprint of its labels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAlert {
    /// The org it was posted to.
    pub org_id: OrgId,
    /// Prometheus' fingerprint of the labels.
    pub fingerprint: String,
    /// The labels.
    pub labels: Labels,
    /// The annotations of the latest post.
    pub annotations: Labels,
    /// When it started firing (epoch ms).
    pub starts_at: i64,
    /// When it ends or ended (epoch ms).
    pub ends_at: i64,
    /// `true` when `ends_at` is the resolve timeout's, not the generator's.
    pub timeout: bool,
    /// The generator's URL.
    pub generator_url: String,
    /// When it was last posted (database clock, epoch ms).
    pub updated_at: i64,
}

impl PostableAlert {
    /// The alert as stored for a post at `now` (database clock), Alertmanager's defaults
    /// applied.
    pub fn at(&self, org: OrgId, now: i64) -> ExternalAlert {
        let (ends_at, timeout) = match self.ends_at {
            Some(e) => (e, false),
            None => (now.saturating_add(RESOLVE_TIMEOUT_MS), true),
        };
        let starts_at = self.starts_at.or(self.ends_at).unwrap_or(now);
        ExternalAlert {
            org_id: org,
            fingerprint: fingerprint(&self.labels),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at,
            ends_at,
            timeout,
            generator_url: self.generator_url.clone(),
            updated_at: now,
        }
    }
}

impl ExternalAlert {
    /// Resolved at `now`: its end has passed.
    pub fn resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }

    /// The alert to store when `new` is posted over `self` (the stored one, same
    /// fingerprint). Overlapping activity merges as Alertmanager merges: the earliest
    /// start, the latest post's annotations, and the latest post's end unless the stored
    /// end is later and was the generator's own. A post that does not overlap (the stored
    /// alert had resolved) replaces it: the alert fires anew.
    pub fn merged(&self, new: ExternalAlert) -> ExternalAlert {
        let (old_start, new_start) = (self.starts_at, new.starts_at);
        let overlaps = (new.ends_at > old_start && new.ends_at < self.ends_at)
            || (new_start >= old_start && new_start <= self.ends_at);
        if !overlaps {
            return new;
        }
        let mut out = new;
        out.starts_at = old_start.min(out.starts_at);
        if out.ends_at <= out.updated_at {
            // The post resolves it: the latest explicit resolution wins.
            if self.ends_at <= out.updated_at && self.ends_at > out.ends_at {
                out.ends_at = self.ends_at;
            }
        } else if self.ends_at > out.ends_at && !self.timeout {
            out.ends_at = self.ends_at;
            out.timeout = false;
        }
        out
    }

    /// The alert as the dispatcher and the read API see alert instances, at `now`:
    /// firing (`Alerting`) until its end, then resolved at its end. It belongs to no rule.
    pub fn instance(&self, now: i64) -> AlertInstance {
        let resolved = self.resolved(now);
        AlertInstance {
            org_id: self.org_id,
            fingerprint: self.fingerprint.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            state: if resolved {
                InstanceState::Normal
            } else {
                InstanceState::Alerting
            },
            started_at: self.starts_at,
            ends_at: self.ends_at,
            last_eval_at: self.updated_at,
            written_at: self.updated_at,
            resolved_at: resolved.then_some(self.ends_at),
            generator_url: Some(self.generator_url.clone()),
            ..AlertInstance::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn post(body: Value) -> Result<Vec<PostableAlert>> {
        parse_postable_alerts(&body)
    }

    #[test]
    fn prometheus_posts_parse_with_their_times() {
        let alerts = post(json!([{
            "labels": {"alertname": "Up", "job": "node"},
            "annotations": {"summary": "it is up"},
            "startsAt": "2026-12-03T10:00:00.000Z",
            "endsAt": "2026-12-03T10:04:00Z",
            "generatorURL": "http://prom:9090/graph?g0.expr=up"
        }]))
        .unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].labels["job"], "node");
        assert_eq!(
            alerts[0].ends_at.unwrap() - alerts[0].starts_at.unwrap(),
            240_000
        );
        assert_eq!(alerts[0].generator_url, "http://prom:9090/graph?g0.expr=up");
    }

    #[test]
    fn bad_alerts_are_refused_with_their_index() {
        for (body, needle) in [
            (json!({"labels": {"a": "b"}}), "JSON array"),
            (json!([{"labels": {}}]), "alert 0: at least one label pair"),
            (
                json!([{"annotations": {"a": "b"}}]),
                "at least one label pair",
            ),
            (
                json!([{"labels": {"a": "b"}}, {"labels": {"1bad": "x"}}]),
                "alert 1: invalid label name",
            ),
            (
                json!([{"labels": {"a": "b"}, "annotations": {"with space": "x"}}]),
                "invalid annotation name",
            ),
            (
                json!([{"labels": {"a": "b"}, "startsAt": "yesterday"}]),
                "startsAt must be an RFC 3339 time",
            ),
            (
                json!([{"labels": {"a": "b"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}]),
                "start time must be before end time",
            ),
            (json!([{"labels": {"a": "b"}, "extra": 1}]), "unknown field"),
            (json!([{"labels": {"a": 1}}]), "invalid type"),
            (
                json!([{"labels": {"a": "x".repeat(MAX_LABEL_VALUE_LEN + 1)}}]),
                "longer than",
            ),
        ] {
            let err = post(body.clone()).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
        let many: Vec<Value> = (0..=MAX_PAIRS).map(|i| json!(format!("v{i}"))).collect();
        let labels: serde_json::Map<String, Value> = many
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("l{i}"), v.clone()))
            .collect();
        assert!(post(json!([{"labels": labels}])).is_err());
    }

    #[test]
    fn defaults_follow_alertmanager() {
        let labels: Labels = [("alertname".to_owned(), "X".to_owned())].into();
        let bare = PostableAlert {
            labels: labels.clone(),
            annotations: Labels::new(),
            starts_at: None,
            ends_at: None,
            generator_url: String::new(),
        };
        let stored = bare.at(OrgId(1), 1_000);
        assert_eq!(stored.starts_at, 1_000);
        assert_eq!(stored.ends_at, 1_000 + RESOLVE_TIMEOUT_MS);
        assert!(stored.timeout);
        assert_eq!(stored.fingerprint, fingerprint(&labels));
        let only_end = PostableAlert {
            ends_at: Some(500),
            ..bare
        };
        let stored = only_end.at(OrgId(1), 1_000);
        assert_eq!((stored.starts_at, stored.ends_at), (500, 500));
        assert!(stored.resolved(1_000));
        let instance = stored.instance(1_000);
        assert_eq!(instance.state, InstanceState::Normal);
        assert_eq!(instance.resolved_at, Some(500));
    }

    fn stored(starts: i64, ends: i64, timeout: bool, at: i64) -> ExternalAlert {
        ExternalAlert {
            org_id: OrgId(1),
            fingerprint: "f".into(),
            labels: Labels::new(),
            annotations: Labels::new(),
            starts_at: starts,
            ends_at: ends,
            timeout,
            generator_url: String::new(),
            updated_at: at,
        }
    }

    #[test]
    fn reposts_merge_and_a_resolved_alert_fires_anew() {
        // Prometheus re-sends a firing alert with a later end: the start is kept.
        let old = stored(100, 1_000, false, 100);
        let merged = old.merged(stored(100, 2_000, false, 500));
        assert_eq!((merged.starts_at, merged.ends_at), (100, 2_000));
        // A post that resolves it ends it.
        let resolved = merged.merged(stored(100, 900, false, 900));
        assert_eq!(resolved.ends_at, 900);
        assert!(resolved.resolved(900));
        // A post after it resolved starts it again.
        let again = resolved.merged(stored(5_000, 9_000, false, 5_000));
        assert_eq!((again.starts_at, again.ends_at), (5_000, 9_000));
        // A generator's explicit later end is not cut short by a timeout default.
        let explicit = stored(100, 3_000, false, 100);
        let merged = explicit.merged(stored(200, 2_500, true, 200));
        assert_eq!((merged.ends_at, merged.timeout), (3_000, false));
        // A timeout end is replaced by the next post's.
        let timed = stored(100, 3_000, true, 100);
        assert_eq!(timed.merged(stored(200, 2_500, false, 200)).ends_at, 2_500);
    }

    #[test]
    fn firing_instances_carry_the_generator_url() {
        let mut a = stored(100, 1_000, false, 100);
        a.generator_url = "http://prom/graph".into();
        let i = a.instance(500);
        assert_eq!(i.state, InstanceState::Alerting);
        assert_eq!(i.resolved_at, None);
        assert_eq!(i.generator_url.as_deref(), Some("http://prom/graph"));
    }
}
