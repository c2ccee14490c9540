//! Contact points: Grafana's "embedded contact points", one integration each; the
//! integrations sharing a name form one receiver of the policy tree.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::{Error, Provenance, Result};

/// What the API answers in place of a secret.
pub const REDACTED: &str = "[REDACTED]";
/// The name of the contact point every org starts with, as in Grafana.
pub const DEFAULT_RECEIVER: &str = "grafana-default-email";
/// The address of the default contact point, as in Grafana.
pub const DEFAULT_ADDRESS: &str = "<example@email.com>";
/// The longest contact point name.
pub const MAX_NAME_LEN: usize = 190;

/// The integration types Tandem sends to.
pub const KINDS: [&str; 2] = ["webhook", "email"];

/// One integration of a receiver.
#[derive(Clone, PartialEq)]
pub struct ContactPoint {
    /// Its uid, unique per org.
    pub uid: String,
    /// The receiver it belongs to.
    pub name: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// The settings without secrets.
    pub settings: Map<String, Value>,
    /// The secret settings in plain text (sealed at rest, never answered).
    pub secure: BTreeMap<String, String>,
    /// No notification when a group resolves.
    pub disable_resolve_message: bool,
    /// Who manages it.
    pub provenance: Provenance,
    /// Bumped by every change.
    pub version: i64,
}

impl fmt::Debug for ContactPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactPoint")
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("secure", &self.secure.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The settings of `kind` that are secrets (Grafana's `secure` fields).
pub fn secure_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "webhook" => &["password", "authorization_credentials"],
        _ => &[],
    }
}

impl ContactPoint {
    /// Splits `settings` of a request into plain and secret values, keeping the stored
    /// secret where the request says `[REDACTED]` (what it read back), and checks the
    /// integration's required fields.
    pub fn from_request(
        uid: String,
        name: String,
        kind: String,
        settings: Map<String, Value>,
        disable_resolve_message: bool,
        provenance: Provenance,
        stored: Option<&ContactPoint>,
    ) -> Result<ContactPoint> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::BadRequest(
                "invalid object specification: name must not be empty".to_owned(),
            ));
        }
        tandem_storage::input::check_bounded_text("name", &name, MAX_NAME_LEN)?;
        if !KINDS.contains(&kind.as_str()) {
            return Err(Error::BadRequest(format!(
                "invalid object specification: unsupported integration type '{}' (Tandem sends webhook and email)",
                crate::types::truncate(&kind, 40)
            )));
        }
        let mut plain = Map::new();
        let mut secure = BTreeMap::new();
        for (key, value) in settings {
            if let Value::String(text) = &value {
                // Sealed secrets are stored in a 64 KiB column on MySQL.
                tandem_storage::input::check_bounded_text("settings", text, 8_192)?;
            }
            if secure_fields(&kind).contains(&key.as_str()) {
                match value {
                    Value::String(s) if s == REDACTED => {
                        if let Some(old) = stored.and_then(|s| s.secure.get(&key)) {
                            secure.insert(key, old.clone());
                        }
                    }
                    Value::String(s) if s.is_empty() => {}
                    Value::String(s) => {
                        secure.insert(key, s);
                    }
                    Value::Null => {}
                    other => {
                        secure.insert(key, other.to_string());
                    }
                }
            } else {
                plain.insert(key, value);
            }
        }
        let point = ContactPoint {
            uid,
            name,
            kind,
            settings: plain,
            secure,
            disable_resolve_message,
            provenance,
            version: stored.map_or(1, |s| s.version + 1),
        };
        point.check()?;
        Ok(point)
    }

    fn check(&self) -> Result<()> {
        let invalid = |what: String| {
            Err(Error::BadRequest(format!(
                "failed to validate integration \"{}\" (UID {}) of type \"{}\": {what}",
                crate::types::truncate(&self.name, 60),
                self.uid,
                self.kind
            )))
        };
        match self.kind.as_str() {
            "webhook" => {
                let Some(url) = self.text("url") else {
                    return invalid("required field 'url' is not specified".to_owned());
                };
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || reqwest::Url::parse(url).is_err()
                {
                    return invalid(format!("invalid url '{}'", crate::types::truncate(url, 80)));
                }
                if let Some(method) = self.text("httpMethod")
                    && !matches!(method, "" | "POST" | "PUT")
                {
                    return invalid("the HTTP method must be POST or PUT".to_owned());
                }
                if self.text("username").is_some_and(|u| !u.is_empty())
                    && self.secure.contains_key("authorization_credentials")
                {
                    return invalid(
                        "both HTTP Basic Authentication and Authorization Header are set, only 1 is permitted"
                            .to_owned(),
                    );
                }
                if let Some(max) = self.settings.get("maxAlerts")
                    && !(max.is_u64()
                        || max
                            .as_str()
                            .is_some_and(|s| s.is_empty() || s.parse::<u64>().is_ok()))
                {
                    return invalid("maxAlerts must be a non-negative number".to_owned());
                }
            }
            "email" if self.addresses().is_empty() => {
                return invalid("could not find addresses in settings".to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    /// A text setting.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str)
    }

    /// The email addresses (`;`, `,` or newline separated, as Grafana splits them).
    pub fn addresses(&self) -> Vec<String> {
        self.text("addresses")
            .unwrap_or("")
            .split([';', ',', '\n'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `maxAlerts`, 0 meaning no limit.
    pub fn max_alerts(&self) -> usize {
        match self.settings.get("maxAlerts") {
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0),
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// The settings as the API answers them: secrets as `[REDACTED]`.
    pub fn redacted_settings(&self) -> Map<String, Value> {
        let mut out = self.settings.clone();
        for key in self.secure.keys() {
            out.insert(key.clone(), Value::String(REDACTED.to_owned()));
        }
        out
    }

    /// The contact point every org starts with.
    pub fn default_point(uid: String) -> ContactPoint {
        let mut settings = Map::new();
        settings.insert(
            "addresses".to_owned(),
            Value::String(DEFAULT_ADDRESS.to_owned()),
        );
        ContactPoint {
            uid,
            name: DEFAULT_RECEIVER.to_owned(),
            kind: "email".to_owned(),
            settings,
            secure: BTreeMap::new(),
            disable_resolve_message: false,
            provenance: Provenance::None,
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn secrets_are_split_and_kept_when_redacted() {
        let point = ContactPoint::from_request(
            "u".into(),
            "hook".into(),
            "webhook".into(),
            settings(serde_json::json!({"url": "http://x/y", "username": "me", "password": "pw"})),
            false,
            Provenance::Api,
            None,
        )
        .unwrap();
        assert_eq!(point.secure.get("password").unwrap(), "pw");
        assert!(!point.settings.contains_key("password"));
        assert_eq!(point.redacted_settings()["password"], REDACTED);
        assert!(!format!("{point:?}").contains("pw\""));
        let again = ContactPoint::from_request(
            "u".into(),
            "hook".into(),
            "webhook".into(),
            settings(
                serde_json::json!({"url": "http://x/z", "username": "me", "password": REDACTED}),
            ),
            false,
            Provenance::Api,
            Some(&point),
        )
        .unwrap();
        assert_eq!(again.secure.get("password").unwrap(), "pw");
        assert_eq!(again.version, 2);
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"url": "ftp://x"}),
            serde_json::json!({"url": "http://x", "httpMethod": "GET"}),
        ] {
            assert!(
                ContactPoint::from_request(
                    "u".into(),
                    "h".into(),
                    "webhook".into(),
                    settings(bad),
                    false,
                    Provenance::Api,
                    None
                )
                .is_err()
            );
        }
        assert!(
            ContactPoint::from_request(
                "u".into(),
                "h".into(),
                "slack".into(),
                Map::new(),
                false,
                Provenance::Api,
                None
            )
            .is_err()
        );
    }
}
