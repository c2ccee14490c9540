//! Label matchers as Alertmanager writes them in JSON (`{"name","value","isRegex",
//! "isEqual"}`), for the `matcher` filter of the Prometheus-style API and for silences.

use serde::Deserialize;

use crate::{Error, Labels, Result};

/// The largest compiled regular expression accepted, so a hostile pattern cannot exhaust
/// memory.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// One matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    name: String,
    value: String,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Equal,
    NotEqual,
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(alias = "Name", default)]
    name: String,
    #[serde(alias = "Value", default)]
    value: String,
    #[serde(rename = "isRegex", default)]
    is_regex: bool,
    #[serde(rename = "isEqual", default = "yes")]
    is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// Parses Alertmanager's JSON form; the regex is anchored, as Alertmanager's are.
    pub fn from_json(text: &str) -> Result<Matcher> {
        let raw: Raw = serde_json::from_str(text)
            .map_err(|err| Error::BadRequest(format!("bad matcher: {err}")))?;
        Matcher::new(&raw.name, &raw.value, raw.is_regex, raw.is_equal)
            .map_err(|err| Error::BadRequest(format!("bad matcher: {err}")))
    }

    /// A matcher of `name` against `value` (a regular expression when `is_regex`, anchored
    /// as Alertmanager's are; negated unless `is_equal`).
    pub fn new(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Result<Matcher> {
        if name.is_empty() {
            return Err(Error::BadRequest("the name cannot be blank".to_owned()));
        }
        let compile = |value: &str| {
            regex::RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(MAX_REGEX_BYTES)
                .build()
                .map_err(|err| Error::BadRequest(format!("invalid regular expression: {err}")))
        };
        let kind = match (is_regex, is_equal) {
            (false, true) => Kind::Equal,
            (false, false) => Kind::NotEqual,
            (true, true) => Kind::Regex(compile(value)?),
            (true, false) => Kind::NotRegex(compile(value)?),
        };
        Ok(Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            kind,
        })
    }

    /// Whether an absent label (the empty string) satisfies it.
    pub fn matches_empty(&self) -> bool {
        self.matches(&Labels::new())
    }

    /// Whether `labels` satisfy it (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match &self.kind {
            Kind::Equal => value == self.value,
            Kind::NotEqual => value != self.value,
            Kind::Regex(re) => re.is_match(value),
            Kind::NotRegex(re) => !re.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_matchers() {
        let labels: Labels = [("team".to_owned(), "db".to_owned())].into();
        let m = |json: &str| Matcher::from_json(json).unwrap().matches(&labels);
        assert!(m(
            r#"{"name":"team","value":"db","isRegex":false,"isEqual":true}"#
        ));
        assert!(!m(r#"{"name":"team","value":"d","isRegex":false}"#));
        assert!(m(r#"{"name":"team","value":"d.*","isRegex":true}"#));
        assert!(
            !m(r#"{"name":"team","value":"d","isRegex":true}"#),
            "anchored"
        );
        assert!(m(r#"{"name":"team","value":"web","isEqual":false}"#));
        assert!(m(r#"{"name":"other","value":""}"#));
        assert!(Matcher::from_json(r#"{"name":"","value":"x"}"#).is_err());
        assert!(Matcher::from_json(r#"{"name":"a","value":"(","isRegex":true}"#).is_err());
    }
}
