//! Silences as Alertmanager keeps them: label matchers and a time range during which the
//! alerts they match are not notified, per org, in the shared database (so a silence made
//! through one instance mutes on every instance at the next flush).
//!
//! The rules are Alertmanager 0.25's (`silence.Silences.Set`, `canUpdate`, `Expire`): a
//! silence is pending before `startsAt`, active until `endsAt`, expired after; a write
//! naming an existing silence updates it in place only when its matchers are unchanged and
//! its times may still change (see [`can_update`]), otherwise the old silence is expired
//! and a new one, with a new id, is created; a new silence that starts in the past starts
//! now. Times come from the database's clock, so every instance agrees on a state.

use serde::{Deserialize, Serialize};
use tandem_storage::input::{check_bounded_text, check_count};

use crate::{Error, Labels, Matcher, OrgId, Result};

/// The most matchers one silence may have.
pub const MAX_SILENCE_MATCHERS: usize = 100;
/// The longest matcher name, in characters.
pub const MAX_MATCHER_NAME_LEN: usize = crate::MAX_LABEL_NAME_LEN;
/// The longest matcher value, in characters.
pub const MAX_MATCHER_VALUE_LEN: usize = 10_000;
/// The longest regular expression of a matcher, in characters.
pub const MAX_MATCHER_REGEX_LEN: usize = 1_000;
/// The longest `createdBy`, in characters.
pub const MAX_CREATED_BY_LEN: usize = 190;
/// The longest `comment`, in characters.
pub const MAX_COMMENT_LEN: usize = 10_000;
/// The latest time accepted, 9999-12-31T23:59:59.999Z, so every time prints in RFC 3339.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// One matcher as Alertmanager's API writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    /// The label name.
    pub name: String,
    /// The value, or a regular expression when `is_regex`.
    pub value: String,
    /// Whether `value` is a regular expression (anchored, as Alertmanager's are).
    #[serde(rename = "isRegex", default)]
    pub is_regex: bool,
    /// `=`/`=~` when true, `!=`/`!~` when false.
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    /// The compiled matcher.
    pub fn compile(&self) -> Result<Matcher> {
        Matcher::new(&self.name, &self.value, self.is_regex, self.is_equal)
    }
}

/// Where a silence is in its life, by the database's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SilenceState {
    /// It starts later.
    Pending,
    /// It mutes now.
    Active,
    /// It ended.
    Expired,
}

impl SilenceState {
    /// The state at `now` of a silence from `starts_at` to `ends_at` (epoch ms).
    pub fn at(starts_at: i64, ends_at: i64, now: i64) -> SilenceState {
        if now < starts_at {
            SilenceState::Pending
        } else if now < ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Alertmanager's name: `pending`, `active` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    /// Its id, a UUID.
    pub id: String,
    /// The org it mutes alerts of.
    pub org_id: OrgId,
    /// Every matcher must match an alert's labels for the silence to mute it.
    pub matchers: Vec<SilenceMatcher>,
    /// When it starts muting (epoch ms).
    pub starts_at: i64,
    /// When it stops (epoch ms).
    pub ends_at: i64,
    /// When it was last written (database clock, epoch ms).
    pub updated_at: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Its state when it was read (database clock).
    pub state: SilenceState,
}

/// A silence to create, or to update when `id` names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostableSilence {
    /// The silence to update; `None` creates one.
    pub id: Option<String>,
    /// See [`Silence::matchers`].
    pub matchers: Vec<SilenceMatcher>,
    /// See [`Silence::starts_at`].
    pub starts_at: i64,
    /// See [`Silence::ends_at`].
    pub ends_at: i64,
    /// See [`Silence::created_by`].
    pub created_by: String,
    /// See [`Silence::comment`].
    pub comment: String,
}

impl PostableSilence {
    /// The checks that need no clock: the input policy, Alertmanager's matcher rules and
    /// the order of the times.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.id {
            validate_silence_id(id)?;
        }
        check_count("matchers", self.matchers.len(), MAX_SILENCE_MATCHERS)?;
        if self.matchers.is_empty() {
            return Err(Error::BadRequest(
                "invalid silence: at least one matcher required".to_owned(),
            ));
        }
        let mut all_match_empty = true;
        for m in &self.matchers {
            check_bounded_text("matchers.name", &m.name, MAX_MATCHER_NAME_LEN)?;
            let max = if m.is_regex {
                MAX_MATCHER_REGEX_LEN
            } else {
                MAX_MATCHER_VALUE_LEN
            };
            check_bounded_text("matchers.value", &m.value, max)?;
            if m.name.is_empty() {
                return Err(Error::BadRequest(
                    "invalid silence: invalid label matcher: the name cannot be blank".to_owned(),
                ));
            }
            let compiled = m.compile().map_err(|err| {
                Error::BadRequest(format!("invalid silence: invalid label matcher: {err}"))
            })?;
            all_match_empty &= compiled.matches_empty();
        }
        if all_match_empty {
            return Err(Error::BadRequest(
                "invalid silence: at least one matcher must not match the empty string".to_owned(),
            ));
        }
        check_bounded_text("createdBy", &self.created_by, MAX_CREATED_BY_LEN)?;
        check_bounded_text("comment", &self.comment, MAX_COMMENT_LEN)?;
        for (field, at) in [("startsAt", self.starts_at), ("endsAt", self.ends_at)] {
            tandem_storage::input::check_range(field, i128::from(at), 1, i128::from(MAX_TIME_MS))?;
        }
        if self.starts_at >= self.ends_at {
            return Err(Error::BadRequest(
                "Failed to create silence: start time must be before end time".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Whether `prev` may be changed in place into `next` at `now` (Alertmanager's
/// `canUpdate`): the same matchers, and times that respect its state (an active silence
/// keeps its start and may not end in the past; a pending one may not start in the past;
/// an expired one never changes).
pub fn can_update(prev: &Silence, next: &PostableSilence, now: i64) -> bool {
    if prev.matchers != next.matchers {
        return false;
    }
    match SilenceState::at(prev.starts_at, prev.ends_at, now) {
        SilenceState::Active => next.starts_at == prev.starts_at && next.ends_at >= now,
        SilenceState::Pending => next.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// A silence's id must look like the UUIDs Tandem and Alertmanager give.
pub fn validate_silence_id(id: &str) -> Result<()> {
    let shape = id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if shape {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "invalid silence id {:?}: not a UUID",
            id.chars().take(60).collect::<String>()
        )))
    }
}

/// A new random (version 4) UUID.
pub fn new_silence_id() -> String {
    let mut v: u128 = rand::random();
    v = (v & !(0xf << 76)) | (0x4 << 76);
    v = (v & !(0x3 << 62)) | (0x2 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}

/// Parses an RFC 3339 time (`2026-12-03T06:00:00Z`, with or without fractions or an
/// offset) into epoch ms.
pub fn parse_time(field: &str, text: &str) -> Result<i64> {
    let at: jiff::Timestamp = text.trim().parse().map_err(|_| {
        Error::BadRequest(format!(
            "{field} must be an RFC 3339 time, not {:?}",
            text.chars().take(60).collect::<String>()
        ))
    })?;
    Ok(at.as_millisecond())
}

/// Epoch ms as RFC 3339 in UTC with milliseconds, as Alertmanager writes times.
pub fn format_time(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "0001-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Parses one matcher in Alertmanager's text form (`name="value"`, `name=~"regex"`,
/// `name!=value`, `name!~"regex"`), as the `filter` query parameters of its API carry
/// them; a quoted value may escape `"`, `\\` and newlines (`\\n`) with a backslash.
pub fn parse_matcher(text: &str) -> Result<SilenceMatcher> {
    let bad = |why: &str| {
        Error::BadRequest(format!(
            "bad matcher format: {why}: {:?}",
            text.chars().take(100).collect::<String>()
        ))
    };
    let text = text.trim();
    let name_len = text
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()))
        })
        .map_or(text.len(), |(i, _)| i);
    let (name, rest) = text.split_at(name_len);
    if name.is_empty() {
        return Err(bad("no label name"));
    }
    let rest = rest.trim_start();
    let (is_regex, is_equal, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (true, true, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (false, false, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (true, false, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (false, true, r)
    } else {
        return Err(bad("no operator"));
    };
    let raw = rest.trim();
    let raw = match raw.strip_prefix('"') {
        Some(inner) => match inner.strip_suffix('"') {
            Some(inner) if !inner.ends_with('\\') || inner.ends_with("\\\\") => inner,
            _ => return Err(bad("unterminated quote")),
        },
        None => raw,
    };
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some(e @ ('"' | '\\')) => value.push(e),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            '"' => return Err(bad("unescaped double quote")),
            c => value.push(c),
        }
    }
    Ok(SilenceMatcher {
        name: name.to_owned(),
        value,
        is_regex,
        is_equal,
    })
}

/// Compiles the `filter` values of a request (at most [`MAX_SILENCE_MATCHERS`]).
pub fn parse_filter<'a>(values: impl Iterator<Item = &'a str>) -> Result<Vec<Matcher>> {
    let mut out = Vec::new();
    for text in values {
        check_count("filter", out.len() + 1, MAX_SILENCE_MATCHERS)?;
        check_bounded_text("filter", text, MAX_MATCHER_VALUE_LEN)?;
        let m = parse_matcher(text)?;
        if m.is_regex {
            check_bounded_text("filter", &m.value, MAX_MATCHER_REGEX_LEN)?;
        }
        out.push(
            m.compile()
                .map_err(|err| Error::BadRequest(format!("bad matcher format: {err}")))?,
        );
    }
    Ok(out)
}

/// Whether `silence` passes a `filter` of `GET silences`, as Alertmanager decides it: each
/// filter matcher matches the value of the silence's matcher of the same name (the empty
/// string when it has none).
pub fn silence_matches_filter(silence: &Silence, filter: &[Matcher]) -> bool {
    let values: Labels = silence
        .matchers
        .iter()
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect();
    filter.iter().all(|f| f.matches(&values))
}

/// Sorts as Alertmanager answers `GET silences`: active ones first by end, then pending
/// ones by start, then expired ones, the latest ended first.
pub fn sort_silences(silences: &mut [Silence]) {
    let rank = |s: SilenceState| match s {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    silences.sort_by(|a, b| {
        rank(a.state)
            .cmp(&rank(b.state))
            .then_with(|| match a.state {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
    });
}

/// The active silences of an org, compiled, for muting and for `silencedBy`.
#[derive(Clone, Debug, Default)]
pub struct Silencer {
    silences: Vec<(OrgId, String, Vec<Matcher>)>,
}

impl Silencer {
    /// Compiles `silences`, keeping only the active ones; a stored silence whose matchers
    /// no longer compile (they were checked when written) is logged and mutes nothing.
    pub fn new(silences: &[Silence]) -> Silencer {
        let mut out = Vec::new();
        for s in silences.iter().filter(|s| s.state == SilenceState::Active) {
            match s.matchers.iter().map(SilenceMatcher::compile).collect() {
                Ok(matchers) => out.push((s.org_id, s.id.clone(), matchers)),
                Err(err) => {
                    tracing::warn!(id = %s.id, error = %err, "a stored silence is invalid; it mutes nothing")
                }
            }
        }
        Silencer { silences: out }
    }

    /// The ids of the silences of `org` that mute an alert with `labels`.
    pub fn silenced_by(&self, org: OrgId, labels: &Labels) -> Vec<String> {
        self.silences
            .iter()
            .filter(|(o, _, matchers)| *o == org && matchers.iter().all(|m| m.matches(labels)))
            .map(|(_, id, _)| id.clone())
            .collect()
    }

    /// Whether a silence of `org` mutes an alert with `labels`.
    pub fn mutes(&self, org: OrgId, labels: &Labels) -> bool {
        self.silences
            .iter()
            .any(|(o, _, matchers)| *o == org && matchers.iter().all(|m| m.matches(labels)))
    }

    /// Whether there is no active silence at all.
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn postable(matchers: Vec<SilenceMatcher>, starts_at: i64, ends_at: i64) -> PostableSilence {
        PostableSilence {
            id: None,
            matchers,
            starts_at,
            ends_at,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn validation_follows_alertmanager() {
        let ok = postable(vec![m("team", "db", false, true)], 1_000, 2_000);
        ok.validate().unwrap();
        let err = |p: PostableSilence| p.validate().unwrap_err().to_string();
        assert!(err(postable(vec![], 1, 2)).contains("at least one matcher"));
        assert!(err(postable(vec![m("team", "", false, true)], 1, 2)).contains("empty string"));
        assert!(err(postable(vec![m("team", ".*", true, true)], 1, 2)).contains("empty string"));
        assert!(err(postable(vec![m("team", "(", true, true)], 1, 2)).contains("regular"));
        assert!(err(postable(vec![m("", "x", false, true)], 1, 2)).contains("blank"));
        assert!(err(postable(vec![m("a", "x", false, true)], 2, 2)).contains("before end"));
        assert!(err(postable(vec![m("a", "x\0", false, true)], 1, 2)).contains("NUL"));
        let long = "a".repeat(MAX_MATCHER_REGEX_LEN + 1);
        assert!(
            postable(vec![m("a", &long, true, true)], 1, 2)
                .validate()
                .is_err()
        );
        postable(vec![m("a", &long, false, true)], 1, 2)
            .validate()
            .unwrap();
        let many = vec![m("a", "x", false, true); MAX_SILENCE_MATCHERS + 1];
        assert!(postable(many, 1, 2).validate().is_err());
        let mut bad_id = ok.clone();
        bad_id.id = Some("nope".into());
        assert!(bad_id.validate().is_err());
    }

    #[test]
    fn states_and_updates() {
        assert_eq!(SilenceState::at(10, 20, 5), SilenceState::Pending);
        assert_eq!(SilenceState::at(10, 20, 10), SilenceState::Active);
        assert_eq!(SilenceState::at(10, 20, 20), SilenceState::Expired);
        let prev = Silence {
            id: new_silence_id(),
            org_id: OrgId(1),
            matchers: vec![m("a", "b", false, true)],
            starts_at: 10,
            ends_at: 100,
            updated_at: 10,
            created_by: "me".into(),
            comment: "c".into(),
            state: SilenceState::Active,
        };
        let next = |starts, ends| postable(vec![m("a", "b", false, true)], starts, ends);
        assert!(
            can_update(&prev, &next(10, 200), 50),
            "an active one ends later"
        );
        assert!(
            !can_update(&prev, &next(20, 200), 50),
            "but keeps its start"
        );
        assert!(
            !can_update(&prev, &next(10, 40), 50),
            "and may not end before now"
        );
        let other = postable(vec![m("a", "c", false, true)], 10, 200);
        assert!(
            !can_update(&prev, &other, 50),
            "other matchers: a new silence"
        );
        assert!(can_update(&prev, &next(60, 200), 5), "a pending one moves");
        assert!(
            !can_update(&prev, &next(1, 200), 5),
            "but not into the past"
        );
        assert!(
            !can_update(&prev, &next(10, 200), 500),
            "an expired one never"
        );
    }

    #[test]
    fn ids_and_times() {
        let id = new_silence_id();
        validate_silence_id(&id).unwrap();
        assert_eq!(id.chars().nth(14), Some('4'));
        assert_ne!(id, new_silence_id());
        assert_eq!(
            parse_time("t", "2026-12-03T06:00:00.5+01:00").unwrap(),
            parse_time("t", "2026-12-03T05:00:00.500Z").unwrap()
        );
        assert!(parse_time("t", "yesterday").is_err());
        let ms = parse_time("t", "2026-12-03T06:00:00.123Z").unwrap();
        assert_eq!(format_time(ms), "2026-12-03T06:00:00.123Z");
    }

    #[test]
    fn text_matchers_parse_as_alertmanager_parses_them() {
        let p = |t: &str| parse_matcher(t).unwrap();
        assert_eq!(p(r#"alertname="x""#), m("alertname", "x", false, true));
        assert_eq!(p(r#" team =~ "d.*" "#), m("team", "d.*", true, true));
        assert_eq!(p("env!=prod"), m("env", "prod", false, false));
        assert_eq!(p(r#"a!~"b|c""#), m("a", "b|c", true, false));
        assert_eq!(
            p(r#"a="say \"hi\"\n""#),
            m("a", "say \"hi\"\n", false, true)
        );
        assert_eq!(p(r#"a="""#), m("a", "", false, true));
        for bad in ["", "=x", "a", r#"a="x"#, r#"a=x"y"#, "1a=b", r#"a="x\""#] {
            assert!(parse_matcher(bad).is_err(), "{bad}");
        }
        let filter = parse_filter([r#"team="db""#].into_iter()).unwrap();
        let mut s = Silence {
            id: String::new(),
            org_id: OrgId(1),
            matchers: vec![m("team", "db", false, true)],
            starts_at: 0,
            ends_at: 1,
            updated_at: 0,
            created_by: String::new(),
            comment: String::new(),
            state: SilenceState::Active,
        };
        assert!(silence_matches_filter(&s, &filter));
        s.matchers = vec![m("team", "web", false, true)];
        assert!(!silence_matches_filter(&s, &filter));
        assert!(parse_filter(std::iter::repeat_n("a=b", 101)).is_err());
    }

    #[test]
    fn the_silencer_matches_every_matcher_in_its_org() {
        let silence = |id: &str, org: i64, state| Silence {
            id: id.into(),
            org_id: OrgId(org),
            matchers: vec![m("team", "d.*", true, true), m("env", "dev", false, false)],
            starts_at: 0,
            ends_at: 1,
            updated_at: 0,
            created_by: String::new(),
            comment: String::new(),
            state,
        };
        let s = Silencer::new(&[
            silence("a", 1, SilenceState::Active),
            silence("b", 2, SilenceState::Active),
            silence("c", 1, SilenceState::Expired),
        ]);
        let labels = |team: &str, env: &str| -> Labels {
            [("team".into(), team.into()), ("env".into(), env.into())].into()
        };
        assert_eq!(s.silenced_by(OrgId(1), &labels("db", "prod")), ["a"]);
        assert!(!s.mutes(OrgId(1), &labels("db", "dev")));
        assert!(!s.mutes(OrgId(1), &labels("web", "prod")));
        assert!(!s.mutes(OrgId(3), &labels("db", "prod")));
    }
}
