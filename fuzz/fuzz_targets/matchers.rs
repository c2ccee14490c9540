//! Alertmanager's label matchers: the text form of `filter` query parameters
//! (`name=~"regex"`, `notify::silence::parse_matcher` and `parse_filter`) and the JSON
//! form of the Prometheus-style API's `matcher` parameters (`Matcher::from_json`).
//!
//! Asserts: no panic, compiled regexes included; a parsed text matcher written back in
//! Alertmanager's quoted form parses to the same matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_alerting::notify::silence::{SilenceMatcher, parse_filter, parse_matcher};
use tandem_alerting::{Labels, Matcher};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labels: Labels = [
        ("alertname".to_owned(), "HighLatency".to_owned()),
        ("team".to_owned(), text.to_owned()),
    ]
    .into();

    if let Ok(matcher) = parse_matcher(text) {
        let written = write(&matcher);
        let again = parse_matcher(&written)
            .unwrap_or_else(|err| panic!("{written:?} does not parse back: {err}"));
        assert_eq!(matcher, again, "{written:?}");
        if let Ok(compiled) = matcher.compile() {
            let _ = compiled.matches(&labels);
            let _ = compiled.matches_empty();
        }
    }
    if let Ok(filter) = parse_filter(text.split('\n')) {
        for matcher in &filter {
            let _ = matcher.matches(&labels);
        }
    }
    if let Ok(matcher) = Matcher::from_json(text) {
        let _ = matcher.matches(&labels);
        let _ = matcher.matches_empty();
    }
});

/// Alertmanager's text form with the value quoted and escaped.
fn write(matcher: &SilenceMatcher) -> String {
    let operator = match (matcher.is_regex, matcher.is_equal) {
        (false, true) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (true, false) => "!~",
    };
    let mut value = String::new();
    for c in matcher.value.chars() {
        match c {
            '"' => value.push_str("\\\""),
            '\\' => value.push_str("\\\\"),
            '\n' => value.push_str("\\n"),
            c => value.push(c),
        }
    }
    format!("{}{operator}\"{value}\"", matcher.name)
}
