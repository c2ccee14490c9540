//! The input policy at the edge ([`tandem_storage::input`] says what it is): text from a
//! client, in a path, a query string or a JSON body, is valid UTF-8 without NUL, checked
//! before any handler runs, so a new route gets the rule without doing anything.
//!
//! [`check_uri`] is a middleware over every route; [`check_json_text`] is called by the
//! [`JsonBody`](crate::JsonBody) extractor, the one way handlers read a body.

use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tandem_storage::input::InputError;

use crate::ApiError;

/// Refuses a request whose path parameters or query parameters hold NUL or bytes that are
/// not UTF-8 once percent-decoded: 400 naming the parameter.
///
/// It runs inside the router (a route layer sees the matched route's parameters).
pub(crate) async fn check_uri(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    // Parameters that are not UTF-8 are refused by axum's own extractor, with a 400.
    if let Ok(params) = RawPathParams::from_request_parts(&mut parts, &()).await {
        for (name, value) in &params {
            if let Err(err) = tandem_storage::input::check_text(name.to_owned(), value) {
                return ApiError::from(err).into_response();
            }
        }
    }
    if let Some(query) = parts.uri.query()
        && let Err(err) = check_query(query)
    {
        return err.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Checks every key and value of a query string.
pub(crate) fn check_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_component(key)
            .ok_or_else(|| ApiError::bad_request("a query parameter name is not valid UTF-8"))?;
        let value = decode_component(value).ok_or_else(|| {
            ApiError::bad_request(format!("query parameter {key} is not valid UTF-8"))
        })?;
        if key.contains('\0') {
            return Err(ApiError::bad_request(
                "a query parameter name must not contain a NUL character",
            ));
        }
        tandem_storage::input::check_text(format!("query parameter {key}"), &value)?;
    }
    Ok(())
}

/// Percent-decodes one `application/x-www-form-urlencoded` component (`+` is a space);
/// `None` when the bytes are not UTF-8.
fn decode_component(component: &str) -> Option<String> {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(decoded) => {
                        out.push(decoded);
                        i += 2;
                    }
                    // A `%` not followed by two hex digits stays as it is, as browsers do.
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Refuses a JSON body with NUL in any string or key: 400 naming the field by its path
/// (`dashboard.panels[2].title`).
///
/// JSON can only carry NUL as the escape `\u0000`, so bodies without that sequence (all but
/// hostile ones) are not parsed twice.
pub(crate) fn check_json_text(body: &[u8]) -> Result<(), InputError> {
    if !contains(body, b"\\u0000") {
        return Ok(());
    }
    // A body that does not parse is refused by the caller's own parse.
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let mut path = String::new();
    match find_nul(&value, &mut path) {
        true => Err(InputError::Nul {
            field: if path.is_empty() {
                "the body".into()
            } else {
                path.into()
            },
        }),
        false => Ok(()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Whether `value` holds NUL; if so, `path` names where.
fn find_nul(value: &Value, path: &mut String) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find_nul(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Object(fields) => fields.iter().any(|(key, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&key.replace('\0', "\\u0000"));
            let found = key.contains('\0') || find_nul(item, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_nul_is_found_with_its_path() {
        let check = |body: &str| check_json_text(body.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(check(r#"{"title":"ok","tags":["a"]}"#), Ok(()));
        assert_eq!(
            check(r#"{"dashboard":{"tags":["a","b\u0000"]}}"#),
            Err("dashboard.tags[1] must not contain a NUL character".to_owned())
        );
        assert_eq!(
            check(r#"{"a\u0000":1}"#),
            Err("a\\u0000 must not contain a NUL character".to_owned())
        );
        // An escaped backslash followed by the text `u0000` is no NUL.
        assert_eq!(check(r#"{"title":"C:\\u0000"}"#), Ok(()));
        assert_eq!(
            check(r#""\u0000""#),
            Err("the body must not contain a NUL character".to_owned())
        );
    }

    #[test]
    fn query_text_is_decoded_and_checked() {
        assert!(check_query("query=a+b&tag=x%20y&empty=&flag").is_ok());
        assert!(check_query("query=%e2%82%ac").is_ok());
        let nul = check_query("tag=a&query=x%00y").unwrap_err();
        assert_eq!(
            nul.message,
            "query parameter query must not contain a NUL character"
        );
        let bad = check_query("query=%ff").unwrap_err();
        assert_eq!(bad.message, "query parameter query is not valid UTF-8");
        assert!(check_query("q=100%").is_ok());
    }
}
