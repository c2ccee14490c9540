//! `GET /api/admin/settings`: the configuration this instance runs with, by section, as
//! Grafana answers it (`{"section": {"key": "value"}}`, every value a string), for server
//! admins only.
//!
//! Secrets never leave the server: a key whose name says it holds one (a password, a
//! secret, a token, a private key or certificate key) answers `*********`, as Grafana
//! redacts them, and so does the password inside a URL's user info (`[database] url`,
//! `[live] ha_engine_address`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::{ApiError, AppState, CurrentUser};

/// Grafana's mask for a secret.
const MASK: &str = "*********";

/// `GET /api/admin/settings`.
pub(crate) async fn settings(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require_server_admin()?;
    let mut sections: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    for (section, key, value) in state.effective_config.iter() {
        sections
            .entry(section)
            .or_default()
            .insert(key, shown(key, value));
    }
    Ok(Json(serde_json::to_value(sections).unwrap_or(Value::Null)))
}

/// The value as the endpoint shows it.
fn shown(key: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let key = key.to_ascii_lowercase();
    let secret = [
        "password", "secret", "token", "private", "cert_key", "key_file",
    ]
    .iter()
    .any(|word| key.contains(word));
    if secret {
        return MASK.to_owned();
    }
    mask_url_password(value)
}

/// `scheme://user:password@host…` with the password masked; anything else unchanged.
fn mask_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return value.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{MASK}@{host}{tail}"),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_shown() {
        assert_eq!(shown("password", "hunter2"), MASK);
        assert_eq!(shown("secret_key", "abc"), MASK);
        assert_eq!(shown("ha_engine_password", "x"), MASK);
        assert_eq!(shown("password", ""), "");
        assert_eq!(shown("http_port", "3000"), "3000");
        assert_eq!(
            shown(
                "url",
                "postgres://grafana:hunter2@db:5432/grafana?sslmode=off"
            ),
            format!("postgres://grafana:{MASK}@db:5432/grafana?sslmode=off")
        );
        assert_eq!(
            shown("url", "postgres://grafana@db/grafana"),
            "postgres://grafana@db/grafana"
        );
        assert_eq!(
            shown("root_url", "http://localhost:3000/"),
            "http://localhost:3000/"
        );
        assert_eq!(
            shown("ha_engine_address", "redis://:pw@cache:6379/0"),
            format!("redis://:{MASK}@cache:6379/0")
        );
    }
}
