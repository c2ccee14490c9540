//! The data source model: ids, the kinds Tandem can query, the stored data source, and the
//! create and update commands with their validation (Grafana 12's rules and the input
//! policy of `tandem_storage::input`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::RngExt;
use serde::{Deserialize, Deserializer, Serialize};
use tandem_storage::Secret;
use tandem_storage::input::{check_bounded_text, check_count};

use crate::{Error, Result};

/// The longest uid Grafana accepts.
pub const MAX_UID_LEN: usize = 40;
/// The longest name accepted, in characters (the unique index covers the whole name).
pub const MAX_NAME_LEN: usize = 190;
/// The longest URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;
/// The longest `user`, `database` and `basicAuthUser`, in characters.
pub const MAX_SHORT_TEXT_LEN: usize = 190;
/// The largest `jsonData`, serialised, in bytes.
pub const MAX_JSON_DATA_BYTES: usize = 64 * 1024;
/// The most secrets one data source may hold.
pub const MAX_SECRETS: usize = 64;
/// The longest secret name, in characters.
pub const MAX_SECRET_NAME_LEN: usize = 190;
/// The longest secret value, in characters (room for a PEM certificate chain).
pub const MAX_SECRET_LEN: usize = 16 * 1024;

/// An organisation's id (the number `tandem-sessions` uses; this crate does not depend on
/// it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A data source's numeric id (Grafana's legacy `id`), unique across orgs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataSourceId(pub i64);

/// A data source's version: 1 when created, one more on every update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub i64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A data source's uid, unique in its org.
///
/// Any string converts into one (`From`), so a lookup with a malformed uid simply finds
/// nothing; [`DataSourceUid::parse`] checks Grafana's rules, and every write checks them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataSourceUid(String);

impl DataSourceUid {
    /// A uid that passes [`validate_uid`] and is not empty.
    pub fn parse(uid: impl Into<String>) -> Result<DataSourceUid> {
        let uid = uid.into();
        validate_uid(&uid)?;
        if uid.is_empty() {
            return Err(Error::invalid("uid cannot be empty"));
        }
        Ok(DataSourceUid(uid))
    }

    /// A fresh random uid: 14 characters, a lower-case letter then lower-case letters and
    /// digits, as Grafana's newer generated uids look.
    pub fn generate() -> DataSourceUid {
        const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let pick = |rng: &mut rand::rngs::ThreadRng, set: &[u8]| {
            char::from(
                set.get(rng.random_range(0..set.len()))
                    .copied()
                    .unwrap_or(b'a'),
            )
        };
        let mut uid = String::with_capacity(14);
        uid.push(pick(&mut rng, LETTERS));
        for _ in 1..14 {
            uid.push(pick(&mut rng, ALPHANUMERIC));
        }
        DataSourceUid(uid)
    }

    /// The uid as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DataSourceUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for DataSourceUid {
    fn from(uid: String) -> DataSourceUid {
        DataSourceUid(uid)
    }
}

impl From<&str> for DataSourceUid {
    fn from(uid: &str) -> DataSourceUid {
        DataSourceUid(uid.to_owned())
    }
}

/// Checks Grafana's uid rules: at most 40 characters, each of `[a-zA-Z0-9-_]`.
pub fn validate_uid(uid: &str) -> Result<()> {
    if !uid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid("uid contains illegal characters"));
    }
    if uid.len() > MAX_UID_LEN {
        return Err(Error::invalid("uid too long, max 40 characters"));
    }
    Ok(())
}

/// How a caller names one data source: by id, uid or name (always within one org).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataSourceKey {
    /// By numeric id.
    Id(DataSourceId),
    /// By uid.
    Uid(DataSourceUid),
    /// By name (exact, case-sensitive).
    Name(String),
}

/// The kinds of data source Tandem can query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataSourceType {
    /// Prometheus, over its HTTP API.
    Prometheus,
    /// Grafana's built-in test data (`grafana-testdata-datasource`, formerly `testdata`).
    TestData,
}

impl DataSourceType {
    /// Every type, in order.
    pub const ALL: [DataSourceType; 2] = [DataSourceType::Prometheus, DataSourceType::TestData];

    /// The type's plugin id, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            DataSourceType::Prometheus => "prometheus",
            DataSourceType::TestData => "grafana-testdata-datasource",
        }
    }

    /// The plugin's display name (Grafana's `typeName`).
    pub fn type_name(self) -> &'static str {
        match self {
            DataSourceType::Prometheus => "Prometheus",
            DataSourceType::TestData => "TestData",
        }
    }

    /// The type a plugin id names; Grafana's old id `testdata` is an alias of
    /// `grafana-testdata-datasource`.
    pub fn parse(id: &str) -> Result<DataSourceType> {
        match id {
            "prometheus" => Ok(DataSourceType::Prometheus),
            "grafana-testdata-datasource" | "testdata" => Ok(DataSourceType::TestData),
            other => Err(Error::UnknownType(truncate(other, 100))),
        }
    }
}

impl fmt::Display for DataSourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DataSourceType {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A data source's secrets (`secureJsonData`), write-only: `Debug` shows the names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecureJsonData(pub BTreeMap<String, Secret>);

impl SecureJsonData {
    /// The secret named `key`, if it is set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(Secret::expose)
            .filter(|value| !value.is_empty())
    }

    /// The names of the secrets that are set to something other than the empty string:
    /// Grafana's `secureJsonFields`.
    pub fn fields(&self) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// How many secrets there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Grafana's update rule: the keys in `update` replace the stored ones (an empty value
    /// included: it clears the secret), keys not in `update` keep their stored value.
    pub fn merged_with(&self, update: &SecureJsonData) -> SecureJsonData {
        let mut merged = self.0.clone();
        for (key, value) in &update.0 {
            merged.insert(key.clone(), value.clone());
        }
        SecureJsonData(merged)
    }

    fn validate(&self) -> Result<()> {
        check_count("secureJsonData", self.0.len(), MAX_SECRETS)?;
        for (key, value) in &self.0 {
            check_bounded_text("secureJsonData key", key, MAX_SECRET_NAME_LEN)?;
            if key.is_empty() {
                return Err(Error::invalid("secureJsonData keys cannot be empty"));
            }
            check_bounded_text("secureJsonData value", value.expose(), MAX_SECRET_LEN)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SecureJsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<'de> Deserialize<'de> for SecureJsonData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let map = Option::<BTreeMap<String, Option<String>>>::deserialize(deserializer)?;
        Ok(SecureJsonData(
            map.unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, Secret::new(value.unwrap_or_default())))
                .collect(),
        ))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for SecureJsonData {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> SecureJsonData {
        SecureJsonData(
            iter.into_iter()
                .map(|(key, value)| (key.into(), Secret::new(value.into())))
                .collect(),
        )
    }
}

/// A stored data source, as `GET /api/datasources/uid/:uid` answers it (serialised with
/// Grafana's field names; `typeLogoUrl` is the HTTP layer's). Secrets are never in it:
/// [`DataSource::secure_json_fields`] only says which are set.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    /// The numeric id.
    pub id: DataSourceId,
    /// The uid.
    pub uid: DataSourceUid,
    /// The org it belongs to.
    pub org_id: OrgId,
    /// The name, unique in the org.
    pub name: String,
    /// The type (plugin id).
    #[serde(rename = "type")]
    pub kind: DataSourceType,
    /// The type's display name.
    pub type_name: &'static str,
    /// `proxy` (the server queries it) or `direct` (the browser does; kept for Grafana's
    /// sake, Tandem queries every data source from the server).
    pub access: String,
    /// The backend's URL.
    pub url: String,
    /// The user name some backends take (Grafana's `user`).
    pub user: String,
    /// The database name some backends take.
    pub database: String,
    /// Whether requests carry basic auth (`basicAuthUser` and the secret
    /// `basicAuthPassword`).
    pub basic_auth: bool,
    /// The basic auth user.
    pub basic_auth_user: String,
    /// Whether the browser sends cookies (kept for Grafana's sake).
    pub with_credentials: bool,
    /// Whether it is the org's default; at most one per org.
    pub is_default: bool,
    /// Free settings of the type (`httpMethod`, `timeInterval`, `httpHeaderName1` …).
    pub json_data: serde_json::Map<String, serde_json::Value>,
    /// Which secrets are set (`{"basicAuthPassword": true}`).
    #[serde(serialize_with = "serialize_fields")]
    pub secure_json_fields: BTreeSet<String>,
    /// The version, for compare-and-swap updates.
    pub version: Version,
    /// Provisioned from a file without `editable`: the API may not change it.
    pub read_only: bool,
}

fn serialize_fields<S: serde::Serializer>(
    fields: &BTreeSet<String>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(fields.len()))?;
    for field in fields {
        map.serialize_entry(field, &true)?;
    }
    map.end()
}

/// The settings of a data source that a create or an update gives: Grafana's request body
/// of `POST /api/datasources` and `PUT /api/datasources/uid/:uid` (unknown fields are
/// ignored, missing ones take Grafana's defaults).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataSourceSpec {
    /// The name: required, trimmed, at most [`MAX_NAME_LEN`] characters.
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    /// The type (plugin id); see [`DataSourceType::parse`].
    #[serde(rename = "type")]
    #[serde(deserialize_with = "null_as_default")]
    pub kind: String,
    /// `proxy` (the default when empty) or `direct`.
    #[serde(deserialize_with = "null_as_default")]
    pub access: String,
    /// The URL; a Prometheus data source needs an absolute `http`/`https` URL.
    #[serde(deserialize_with = "null_as_default")]
    pub url: String,
    /// `user`.
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    /// `database`.
    #[serde(deserialize_with = "null_as_default")]
    pub database: String,
    /// `basicAuth`.
    #[serde(deserialize_with = "null_as_default")]
    pub basic_auth: bool,
    /// `basicAuthUser`.
    #[serde(deserialize_with = "null_as_default")]
    pub basic_auth_user: String,
    /// `withCredentials`.
    #[serde(deserialize_with = "null_as_default")]
    pub with_credentials: bool,
    /// `isDefault`: making it the default takes the flag from the org's previous default.
    #[serde(deserialize_with = "null_as_default")]
    pub is_default: bool,
    /// `jsonData`: a JSON object (null is `{}`), at most [`MAX_JSON_DATA_BYTES`].
    pub json_data: serde_json::Value,
    /// `secureJsonData`: secrets to set. On an update, keys given replace the stored ones
    /// (an empty value clears one) and keys not given are kept, as Grafana does.
    pub secure_json_data: SecureJsonData,
}

/// `null` as the type's default: clients post back what they read, `null`s included.
fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A valid [`DataSourceSpec`], as [`DataSourceSpec::validate`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    /// The spec, normalised: name and URL trimmed, `access` set, `jsonData` an object.
    pub spec: DataSourceSpec,
    /// The parsed type.
    pub kind: DataSourceType,
    /// `jsonData` as an object.
    pub json_data: serde_json::Map<String, serde_json::Value>,
}

impl DataSourceSpec {
    /// Checks every field against Grafana's rules and the input policy; nothing is written
    /// for a spec that fails.
    pub fn validate(&self) -> Result<ValidSpec> {
        let name = self.name.trim();
        check_bounded_text("name", name, MAX_NAME_LEN)?;
        if name.is_empty() {
            return Err(Error::invalid("Name is required"));
        }
        check_bounded_text("type", &self.kind, MAX_SHORT_TEXT_LEN)?;
        let kind = DataSourceType::parse(self.kind.trim())?;
        let access = match self.access.trim() {
            "" | "proxy" => "proxy",
            "direct" => "direct",
            _ => return Err(Error::invalid("access must be proxy or direct")),
        };
        let url = self.url.trim();
        check_bounded_text("url", url, MAX_URL_LEN)?;
        if kind == DataSourceType::Prometheus || !url.is_empty() {
            validate_url(url)?;
        }
        for (field, value) in [
            ("user", &self.user),
            ("database", &self.database),
            ("basicAuthUser", &self.basic_auth_user),
        ] {
            check_bounded_text(field, value, MAX_SHORT_TEXT_LEN)?;
        }
        let json_data = match &self.json_data {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(map) => map.clone(),
            _ => return Err(Error::invalid("jsonData must be a JSON object")),
        };
        let size = serde_json::to_vec(&json_data)
            .map(|bytes| bytes.len())
            .unwrap_or(usize::MAX);
        if size > MAX_JSON_DATA_BYTES {
            return Err(Error::invalid(format!(
                "jsonData must be at most {MAX_JSON_DATA_BYTES} bytes"
            )));
        }
        if contains_nul(&serde_json::Value::Object(json_data.clone())) {
            return Err(Error::invalid("jsonData must not contain a NUL character"));
        }
        self.secure_json_data.validate()?;
        Ok(ValidSpec {
            spec: DataSourceSpec {
                name: name.to_owned(),
                kind: kind.as_str().to_owned(),
                access: access.to_owned(),
                url: url.to_owned(),
                json_data: serde_json::Value::Object(json_data.clone()),
                ..self.clone()
            },
            kind,
            json_data,
        })
    }
}

/// A data source to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDataSource {
    /// The org it goes to.
    pub org_id: OrgId,
    /// The uid; generated when `None` or empty.
    pub uid: Option<DataSourceUid>,
    /// Its settings.
    pub spec: DataSourceSpec,
}

/// An update of a data source: every setting is replaced by `spec` (secrets merged as
/// [`DataSourceSpec::secure_json_data`] says).
#[derive(Clone, Debug, PartialEq)]
pub struct UpdateDataSource {
    /// The version the caller read. `Some(v)` fails with
    /// [`Error::VersionMismatch`] when the stored version is newer than `v`; `None` (or 0,
    /// as Grafana's clients send when they do not know it) updates whatever is stored.
    pub version: Option<Version>,
    /// The new settings.
    pub spec: DataSourceSpec,
}

/// Checks that `url` is an absolute `http` or `https` URL with a host.
pub fn validate_url(url: &str) -> Result<()> {
    let invalid = || Error::invalid("Validation error, invalid URL");
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(())
}

fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        _ => false,
    }
}

/// At most `max` characters of `text`, for echoing client input in messages.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, url: &str) -> DataSourceSpec {
        DataSourceSpec {
            name: "Prom".to_owned(),
            kind: kind.to_owned(),
            url: url.to_owned(),
            ..DataSourceSpec::default()
        }
    }

    #[test]
    fn types_and_aliases() {
        assert_eq!(
            DataSourceType::parse("testdata").unwrap(),
            DataSourceType::TestData
        );
        assert_eq!(
            DataSourceType::TestData.as_str(),
            "grafana-testdata-datasource"
        );
        assert!(matches!(
            DataSourceType::parse("mysql"),
            Err(Error::UnknownType(_))
        ));
    }

    #[test]
    fn validation_follows_grafana() {
        let valid = spec("prometheus", " http://localhost:9090 ")
            .validate()
            .unwrap();
        assert_eq!(valid.spec.url, "http://localhost:9090");
        assert_eq!(valid.spec.access, "proxy");
        assert!(valid.json_data.is_empty());
        assert!(spec("testdata", "").validate().is_ok());
        for bad in [
            spec("prometheus", ""),
            spec("prometheus", "localhost:9090"),
            spec("prometheus", "ftp://host/"),
            spec("prometheus", "http://"),
            DataSourceSpec {
                name: "  ".to_owned(),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                name: "x".repeat(MAX_NAME_LEN + 1),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                json_data: serde_json::json!([1]),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                json_data: serde_json::json!({"a": "x\u{0}"}),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                json_data: serde_json::json!({"a": "x".repeat(MAX_JSON_DATA_BYTES)}),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                secure_json_data: (0..=MAX_SECRETS).map(|i| (format!("k{i}"), "v")).collect(),
                ..spec("testdata", "")
            },
            DataSourceSpec {
                access: "sideways".to_owned(),
                ..spec("testdata", "")
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn uids_follow_grafana() {
        assert!(DataSourceUid::parse("P1809F7CD0C75ACF3").is_ok());
        assert!(DataSourceUid::parse("a/b").is_err());
        assert!(DataSourceUid::parse("x".repeat(41)).is_err());
        assert!(DataSourceUid::parse("").is_err());
        let generated = DataSourceUid::generate();
        assert!(DataSourceUid::parse(generated.as_str()).is_ok());
        assert_ne!(generated, DataSourceUid::generate());
    }

    #[test]
    fn secrets_merge_and_stay_out_of_debug() {
        let stored: SecureJsonData = [
            ("basicAuthPassword", "hunter2"),
            ("httpHeaderValue1", "tok"),
        ]
        .into_iter()
        .collect();
        let update: SecureJsonData = [("httpHeaderValue1", ""), ("new", "n")]
            .into_iter()
            .collect();
        let merged = stored.merged_with(&update);
        assert_eq!(merged.get("basicAuthPassword"), Some("hunter2"));
        assert_eq!(merged.get("httpHeaderValue1"), None);
        assert_eq!(
            merged.fields().into_iter().collect::<Vec<_>>(),
            ["basicAuthPassword", "new"]
        );
        let debug = format!("{merged:?}");
        assert!(!debug.contains("hunter2") && debug.contains("basicAuthPassword"));
        let parsed: DataSourceSpec = serde_json::from_value(serde_json::json!({
            "name": "p", "type": "prometheus", "secureJsonData": {"basicAuthPassword": "s3cret"}
        }))
        .unwrap();
        assert!(!format!("{parsed:?}").contains("s3cret"));
        assert_eq!(
            parsed.secure_json_data.get("basicAuthPassword"),
            Some("s3cret")
        );
    }
}
