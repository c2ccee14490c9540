//! The hostile variants of one route's example request, by class.

use serde_json::Value;
use tandem_http::RouteSpec;

/// A class of hostile input, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Class {
    /// NUL in a path parameter, a query value or a body string.
    Nul,
    /// A number at a boundary, or something that is not a number, where a number goes.
    Number,
    /// A string of 60 000 characters (a search pattern, a name).
    LongText,
    /// A list of 25 000 items (tags, uids) in a body, or 2 000 repeats of a query key.
    BigCollection,
    /// JSON that does not parse, nests 100 000 deep, or is not the expected shape.
    MalformedJson,
    /// A form body where JSON is expected.
    WrongContentType,
    /// Basic credentials whose login holds NUL.
    NulCredentials,
}

/// One request to send.
pub(crate) struct Case {
    pub(crate) class: Class,
    /// What was changed, for failure messages.
    pub(crate) what: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) body: Option<String>,
    pub(crate) content_type: &'static str,
    /// `Authorization` to send instead of the session cookie.
    pub(crate) authorization: Option<String>,
    /// Whether the case can reach the database, and so runs on every backend; a case
    /// refused while the request is parsed (broken JSON, a form body, a path or query value
    /// no integer type holds) is the same on each and runs on SQLite only.
    pub(crate) every_backend: bool,
}

/// Where a number can go: the boundaries of `i32`, `i64` and `u64`, a float, a negative, and
/// text that is no number at all.
pub(crate) const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "1e16",
    "abc",
];

/// The values of [`NUMBERS`] that no integer type holds: a path or query parameter with
/// one is refused while it is parsed (or, where text goes, is text like any other).
const PARSED_AWAY: &[&str] = &["18446744073709551616", "1e16", "abc"];

/// A text longer than any limit: SQLite refuses `LIKE` patterns over 50 000 bytes.
pub(crate) fn long_text() -> String {
    "x".repeat(60_000)
}

/// Every hostile variant of `spec`'s example request, the path parameters filled by
/// `fixture`.
pub(crate) fn cases(spec: &RouteSpec, fixture: &dyn Fn(&str, &str) -> String) -> Vec<Case> {
    let params = params(spec.path);
    let valid = |param: &str| fixture(spec.path, param);
    let fill = |garbage: Option<(&str, &str)>| {
        let mut path = spec.path.to_owned();
        for param in &params {
            let value = match garbage {
                Some((name, value)) if name == param => value.to_owned(),
                _ => valid(param),
            };
            path = path.replace(&format!("{{{param}}}"), &value);
        }
        path
    };
    let valid_path = fill(None);
    let base = |class: Class, what: String| Case {
        class,
        what,
        path: valid_path.clone(),
        query: spec.query.to_owned(),
        body: spec.body.map(str::to_owned),
        content_type: "application/json",
        authorization: None,
        every_backend: !matches!(class, Class::MalformedJson | Class::WrongContentType),
    };
    let mut cases = Vec::new();

    for param in &params {
        for (class, value) in [(Class::Nul, "a%00b".to_owned())]
            .into_iter()
            .chain(NUMBERS.iter().map(|n| (Class::Number, (*n).to_owned())))
            .chain([(Class::LongText, long_text())])
        {
            let mut case = base(class, format!("path {{{param}}} = {}", short(&value)));
            case.path = fill(Some((param, &value)));
            case.every_backend &= !PARSED_AWAY.contains(&value.as_str());
            cases.push(case);
        }
    }

    let pairs: Vec<(String, String)> = spec
        .query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    for (index, (key, _)) in pairs.iter().enumerate() {
        let with = |value: &str| {
            pairs
                .iter()
                .enumerate()
                .map(|(i, (k, v))| format!("{k}={}", if i == index { value } else { v }))
                .collect::<Vec<_>>()
                .join("&")
        };
        for (class, value) in [
            (Class::Nul, "a%00b".to_owned()),
            (Class::Nul, "%ff".to_owned()),
        ]
        .into_iter()
        .chain(NUMBERS.iter().map(|n| (Class::Number, (*n).to_owned())))
        .chain([(Class::LongText, long_text())])
        {
            let mut case = base(class, format!("query {key} = {}", short(&value)));
            case.query = with(&value);
            case.every_backend &= !PARSED_AWAY.contains(&value.as_str());
            cases.push(case);
        }
        let mut case = base(
            Class::BigCollection,
            format!("query {key} repeated 2000 times"),
        );
        case.query = (0..2000)
            .map(|i| format!("{key}=v{i}"))
            .collect::<Vec<_>>()
            .join("&");
        cases.push(case);
    }

    if let Some(text) = spec
        .body
        .filter(|body| serde_json::from_str::<Value>(body).is_err())
    {
        // A body that is not JSON (line protocol): NUL in it, over-long, and JSON instead.
        for (class, body) in [
            (Class::Nul, format!("{text}\0")),
            (Class::LongText, format!("{text} {}", long_text())),
            (Class::MalformedJson, "{\"a\": [1, 2".to_owned()),
        ] {
            let mut case = base(class, format!("a {:?} body", class));
            case.body = Some(body);
            case.content_type = "text/plain";
            cases.push(case);
        }
    } else if let Some(example) = spec.body {
        let example: Value = serde_json::from_str(example).expect("the example body is JSON");
        for (pointer, leaf) in leaves(&example) {
            let mut replacements: Vec<(Class, Value)> = Vec::new();
            match leaf {
                Value::String(_) => {
                    replacements.push((Class::Nul, Value::String("a\0b".to_owned())));
                    replacements.push((Class::LongText, Value::String(long_text())));
                    replacements.push((Class::Number, big_number("9223372036854775808")));
                }
                Value::Number(_) => {
                    replacements.extend(NUMBERS.iter().map(|n| (Class::Number, number(n))));
                    replacements.push((Class::Nul, Value::String("1\0".to_owned())));
                }
                Value::Bool(_) | Value::Null => {
                    replacements.push((Class::Number, big_number("18446744073709551616")));
                    replacements.push((Class::Nul, Value::String("\0".to_owned())));
                }
                Value::Array(items) => {
                    let first = items.first().cloned().unwrap_or(Value::String("x".into()));
                    let many = (0..25_000)
                        .map(|i| match &first {
                            Value::String(text) => Value::String(format!("{text}-{i}")),
                            other => other.clone(),
                        })
                        .collect();
                    replacements.push((Class::BigCollection, Value::Array(many)));
                }
                Value::Object(_) => {}
            }
            for (class, replacement) in replacements {
                let mut body = example.clone();
                if let Some(slot) = body.pointer_mut(&pointer) {
                    *slot = replacement;
                }
                let mut case = base(class, format!("body {pointer}"));
                case.body = Some(body.to_string());
                cases.push(case);
            }
        }
        let text = example.to_string();
        for (what, body) in [
            ("truncated", text[..text.len() / 2].to_owned()),
            ("an array", "[]".to_owned()),
            ("a string", "\"x\"".to_owned()),
            ("nested 100 000 deep", "[".repeat(100_000)),
            ("NUL in a key", r#"{"a\u0000":1}"#.to_owned()),
        ] {
            let mut case = base(Class::MalformedJson, format!("body {what}"));
            case.body = Some(body);
            cases.push(case);
        }
        let mut case = base(Class::WrongContentType, "a form body".to_owned());
        case.body = Some("name=x&title=y".to_owned());
        case.content_type = "application/x-www-form-urlencoded";
        cases.push(case);
    } else if spec.method == axum::http::Method::GET {
        // A body on a GET is ignored, whatever it holds.
        let mut case = base(Class::MalformedJson, "a GET with a broken body".to_owned());
        case.body = Some("{\"a\u{0}\":".to_owned());
        cases.push(case);
    }

    if !spec.public {
        let mut case = base(Class::NulCredentials, "Basic login with NUL".to_owned());
        let credentials = base64_encode(b"ad\0min:admin");
        case.authorization = Some(format!("Basic {credentials}"));
        cases.push(case);
    }
    cases
}

/// The `{param}` names of a path template.
pub(crate) fn params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// JSON pointers to every leaf, array and nested object of `value` (the root excluded).
fn leaves(value: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a Value)>) {
    if !pointer.is_empty() {
        out.push((pointer.clone(), value));
    }
    match value {
        Value::Object(fields) => {
            for (key, item) in fields {
                walk(item, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A JSON number, or text where the token is no number.
fn number(token: &str) -> Value {
    serde_json::from_str(token).unwrap_or_else(|_| Value::String(token.to_owned()))
}

/// A number beyond `u64`: serde_json keeps it as a float, so it is written as a float.
fn big_number(token: &str) -> Value {
    number(token)
}

fn short(value: &str) -> String {
    if value.len() > 24 {
        format!("{}… ({} bytes)", &value[..12], value.len())
    } else {
        value.to_owned()
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
