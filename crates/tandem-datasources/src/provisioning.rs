//! Data sources from files, as Grafana's `provisioning/datasources/*.yaml` describes them.
//!
//! A file has `apiVersion: 1`, a list `datasources` (Grafana's fields, plus `orgId`,
//! default 1, and `editable`, default false) and a list `deleteDatasources` (`name`,
//! `orgId`). String values may reference variables, `$VAR` or `${VAR}` (`$$` is a `$`),
//! looked up through the function the caller gives: this crate never reads the environment.
//!
//! Each run deletes what `deleteDatasources` names, then provisions every entry through
//! [`DataSourceStore::provision`]: an entry is written only when its SHA-256 (of the entry
//! after expansion) differs from the one recorded on the row, in one transaction that
//! locks the row, so several instances provisioning the same files at once make one row
//! and one version per change. A provisioned data source is read-only for the API unless
//! its entry says `editable: true`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    DataSourceSpec, DataSourceStore, DataSourceUid, Error, OrgId, ProvisionDataSource,
    ProvisionOutcome, Result, SecureJsonData,
};

/// The data sources and deletions of Grafana's provisioning files (`apiVersion: 1`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSourceProvisioning {
    /// The entries to create or update, in file order.
    pub datasources: Vec<ProvisionDataSource>,
    /// The `(orgId, name)` pairs of `deleteDatasources`, in file order.
    pub delete: Vec<(OrgId, String)>,
}

/// What one provisioning run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProvisioningReport {
    /// Data sources created from new entries.
    pub created: u64,
    /// Data sources updated because their entry changed.
    pub updated: u64,
    /// Entries whose data source was already up to date.
    pub unchanged: u64,
    /// Data sources deleted by `deleteDatasources`.
    pub deleted: u64,
    /// Entries that could not be provisioned (logged as warnings).
    pub failed: u64,
}

impl DataSourceProvisioning {
    /// Parses one provisioning file, expanding variables through `lookup` (for example
    /// `|name| std::env::var(name).ok()` in the binary); an unset variable is empty.
    pub fn from_yaml(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let invalid = |message: String| Error::InvalidProvisioningConfig(message);
        let mut document: Value =
            serde_saphyr::from_str(text).map_err(|err| invalid(err.to_string()))?;
        expand_all(&mut document, &lookup);
        let root = match document {
            Value::Object(root) => root,
            Value::Null => return Ok(DataSourceProvisioning::default()),
            _ => return Err(invalid("expected a mapping with apiVersion".to_owned())),
        };
        match root.get("apiVersion").and_then(whole_number) {
            Some(1) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "unsupported apiVersion {other}, expected 1"
                )));
            }
            None => return Err(invalid("apiVersion is missing, expected 1".to_owned())),
        }
        let list = |key: &str| -> Result<Vec<Value>> {
            match root.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(invalid(format!("{key} must be a list"))),
            }
        };
        let mut config = DataSourceProvisioning::default();
        for item in list("deleteDatasources")? {
            let name = text_of(item.get("name")).filter(|n| !n.trim().is_empty());
            let name =
                name.ok_or_else(|| invalid("a deleteDatasources entry needs a name".to_owned()))?;
            config.delete.push((org_of(&item)?, name));
        }
        for item in list("datasources")? {
            config.datasources.push(entry(&item)?);
        }
        config.check_defaults()?;
        Ok(config)
    }

    /// Reads every `*.yaml` and `*.yml` file of `dir` in name order; a missing directory
    /// provisions nothing. At most one data source per org may be the default.
    pub fn load_dir(dir: &Path, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DataSourceProvisioning::default());
            }
            Err(source) => return Err(io_error(dir, source)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| io_error(dir, source))?.path();
            let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut config = DataSourceProvisioning::default();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| io_error(&file, source))?;
            let parsed =
                DataSourceProvisioning::from_yaml(&text, &lookup).map_err(|err| match err {
                    Error::InvalidProvisioningConfig(message) => {
                        Error::InvalidProvisioningConfig(format!("{}: {message}", file.display()))
                    }
                    other => other,
                })?;
            config.datasources.extend(parsed.datasources);
            config.delete.extend(parsed.delete);
        }
        config.check_defaults()?;
        Ok(config)
    }

    /// Grafana refuses files that make two data sources of one org the default.
    fn check_defaults(&self) -> Result<()> {
        let mut orgs = HashSet::new();
        for ds in self.datasources.iter().filter(|ds| ds.spec.is_default) {
            if !orgs.insert(ds.org_id) {
                return Err(Error::InvalidProvisioningConfig(format!(
                    "only one datasource per organization can be marked as default (org {})",
                    ds.org_id.0
                )));
            }
        }
        Ok(())
    }
}

/// Applies [`DataSourceProvisioning`] to a store; see the module documentation.
#[derive(Clone)]
pub struct DataSourceProvisioner {
    store: Arc<dyn DataSourceStore>,
}

impl std::fmt::Debug for DataSourceProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSourceProvisioner")
            .finish_non_exhaustive()
    }
}

impl DataSourceProvisioner {
    /// A provisioner writing to `store`.
    pub fn new(store: Arc<dyn DataSourceStore>) -> DataSourceProvisioner {
        DataSourceProvisioner { store }
    }

    /// Deletes, then provisions, once. An entry that cannot be provisioned (an unknown
    /// type, a bad URL …) is logged and counted as failed, and the run goes on; a database
    /// failure ends the run with the error.
    pub async fn apply(&self, config: &DataSourceProvisioning) -> Result<ProvisioningReport> {
        let mut report = ProvisioningReport::default();
        for (org, name) in &config.delete {
            if self.store.delete_provisioned(*org, name).await?.is_some() {
                tracing::info!(org = org.0, name = %name, "deleted a provisioned data source");
                report.deleted += 1;
            }
        }
        for entry in &config.datasources {
            match self.store.provision(entry.clone()).await {
                Ok(ProvisionOutcome::Created(ds)) => {
                    tracing::info!(org = ds.org_id.0, uid = %ds.uid, name = %ds.name, "provisioned a data source");
                    report.created += 1;
                }
                Ok(ProvisionOutcome::Updated(ds)) => {
                    tracing::info!(org = ds.org_id.0, uid = %ds.uid, name = %ds.name, version = %ds.version, "updated a provisioned data source");
                    report.updated += 1;
                }
                Ok(ProvisionOutcome::Unchanged) => report.unchanged += 1,
                Err(Error::Storage(err)) => return Err(Error::Storage(err)),
                Err(err) => {
                    tracing::warn!(org = entry.org_id.0, name = %entry.spec.name, error = %err, "cannot provision data source");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Reads `dir` and applies it now and then every `interval` until `cancel` fires, so a
    /// changed file is applied without a restart; failures are logged and retried at the
    /// next tick.
    pub async fn run(
        &self,
        dir: &Path,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync,
        interval: Duration,
        cancel: CancellationToken,
    ) {
        loop {
            let once = async {
                let config = DataSourceProvisioning::load_dir(dir, &lookup)?;
                self.apply(&config).await
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                outcome = once => match outcome {
                    Ok(report) => tracing::debug!(?report, "data source provisioning ran"),
                    Err(err) => tracing::warn!(error = %err, "data source provisioning failed"),
                },
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// One `datasources` entry.
fn entry(item: &Value) -> Result<ProvisionDataSource> {
    let invalid = |message: String| Error::InvalidProvisioningConfig(message);
    let Value::Object(map) = item else {
        return Err(invalid("a datasources entry must be a mapping".to_owned()));
    };
    let name = text_of(map.get("name")).unwrap_or_default();
    if name.trim().is_empty() {
        return Err(invalid("a datasources entry needs a name".to_owned()));
    }
    let flag = |key: &str| -> Result<bool> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(value) => boolean(value).ok_or_else(|| {
                invalid(format!("data source {name:?}: {key} must be true or false"))
            }),
        }
    };
    let json_data = match map.get("jsonData") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(value @ Value::Object(_)) => value.clone(),
        Some(_) => {
            return Err(invalid(format!(
                "data source {name:?}: jsonData must be a mapping"
            )));
        }
    };
    let mut secrets: BTreeMap<String, String> = match map.get("secureJsonData") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(values)) => values
            .iter()
            .map(|(k, v)| (k.clone(), text_of(Some(v)).unwrap_or_default()))
            .collect(),
        Some(_) => {
            return Err(invalid(format!(
                "data source {name:?}: secureJsonData must be a mapping"
            )));
        }
    };
    // Grafana's deprecated top-level passwords still provision as secrets.
    for key in ["password", "basicAuthPassword"] {
        if let Some(value) = text_of(map.get(key)).filter(|v| !v.is_empty()) {
            secrets.entry(key.to_owned()).or_insert(value);
        }
    }
    let spec = DataSourceSpec {
        name: name.clone(),
        kind: text_of(map.get("type")).unwrap_or_default(),
        access: text_of(map.get("access")).unwrap_or_default(),
        url: text_of(map.get("url")).unwrap_or_default(),
        user: text_of(map.get("user")).unwrap_or_default(),
        database: text_of(map.get("database")).unwrap_or_default(),
        basic_auth: flag("basicAuth")?,
        basic_auth_user: text_of(map.get("basicAuthUser")).unwrap_or_default(),
        with_credentials: flag("withCredentials")?,
        is_default: flag("isDefault")?,
        json_data,
        secure_json_data: secrets.into_iter().collect::<SecureJsonData>(),
    };
    let uid = text_of(map.get("uid"))
        .map(|uid| uid.trim().to_owned())
        .filter(|uid| !uid.is_empty())
        .map(DataSourceUid::from);
    let (org_id, editable) = (org_of(item)?, flag("editable")?);
    // The checksum covers what the entry says once parsed (so `orgId: 2` and `orgId: "2"`
    // agree), and only the names of the secrets: a hash of a secret in the database would
    // let whoever reads it test guesses. The store compares secret values itself.
    let canonical = serde_json::json!({
        "orgId": org_id.0,
        "uid": uid.as_ref().map(DataSourceUid::as_str),
        "name": spec.name, "type": spec.kind, "access": spec.access, "url": spec.url,
        "user": spec.user, "database": spec.database, "basicAuth": spec.basic_auth,
        "basicAuthUser": spec.basic_auth_user, "withCredentials": spec.with_credentials,
        "isDefault": spec.is_default, "jsonData": spec.json_data, "editable": editable,
        "secureJsonFields": spec.secure_json_data.0.keys().collect::<Vec<_>>(),
    });
    Ok(ProvisionDataSource {
        org_id,
        uid,
        spec,
        editable,
        // serde_json's maps are sorted, so equal entries have equal text.
        checksum: hex_sha256(canonical.to_string().as_bytes()),
    })
}

fn org_of(item: &Value) -> Result<OrgId> {
    match item.get("orgId") {
        None | Some(Value::Null) => Ok(OrgId(1)),
        Some(value) => whole_number(value)
            .filter(|id| *id > 0)
            .map(OrgId)
            .ok_or_else(|| {
                Error::InvalidProvisioningConfig("orgId must be a positive number".to_owned())
            }),
    }
}

/// A string, or a number or boolean written as text.
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number, also as text (after expansion, `orgId: $ORG` is text).
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, also as text.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Expands variable references in every string of `value`.
fn expand_all(value: &mut Value, lookup: &impl Fn(&str) -> Option<String>) {
    match value {
        Value::String(text) if text.contains('$') => *text = expand(text, lookup),
        Value::Array(items) => items.iter_mut().for_each(|v| expand_all(v, lookup)),
        Value::Object(map) => map.values_mut().for_each(|v| expand_all(v, lookup)),
        _ => {}
    }
}

/// `$NAME`, `${NAME}` → the variable (empty when unset); `$$` → `$`; any other `$` stays.
fn expand(text: &str, lookup: &impl Fn(&str) -> Option<String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some((_, '$')) => {
                chars.next();
                out.push('$');
            }
            Some((start, '{')) => {
                let rest = text.get(start + 1..).unwrap_or("");
                match rest.find('}') {
                    Some(end) => {
                        out.push_str(&lookup(rest.get(..end).unwrap_or("")).unwrap_or_default());
                        // Skip the name and both braces.
                        let consumed = rest.get(..=end).map_or(0, |s| s.chars().count()) + 1;
                        for _ in 0..consumed {
                            chars.next();
                        }
                    }
                    None => out.push('$'),
                }
            }
            Some((start, next)) if is_name(next) => {
                let rest = text.get(start..).unwrap_or("");
                let len = rest.find(|c: char| !is_name(c)).unwrap_or(rest.len());
                out.push_str(&lookup(rest.get(..len).unwrap_or("")).unwrap_or_default());
                for _ in 0..len {
                    chars.next();
                }
            }
            _ => out.push('$'),
        }
    }
    out
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PROM_URL" => Some("http://prometheus:9090".to_owned()),
            "PASSWORD" => Some("s3cret".to_owned()),
            "ORG" => Some("2".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn grafanas_file_format_is_read() {
        let config = DataSourceProvisioning::from_yaml(
            r#"
apiVersion: 1
deleteDatasources:
  - name: Old
    orgId: $ORG
datasources:
  - name: Prometheus
    type: prometheus
    access: proxy
    uid: prom
    url: ${PROM_URL}
    isDefault: true
    basicAuth: "true"
    basicAuthUser: grafana
    jsonData:
      httpMethod: POST
      timeInterval: 15s
    secureJsonData:
      basicAuthPassword: $PASSWORD
      httpHeaderValue1: "cost $$5 $UNSET"
    editable: true
  - name: TestData
    type: testdata
    orgId: ${ORG}
"#,
            env,
        )
        .expect("valid");
        assert_eq!(config.delete, [(OrgId(2), "Old".to_owned())]);
        let prom = &config.datasources[0];
        assert_eq!(prom.org_id, OrgId(1));
        assert_eq!(prom.uid.as_ref().map(DataSourceUid::as_str), Some("prom"));
        assert_eq!(prom.spec.url, "http://prometheus:9090");
        assert!(prom.spec.is_default && prom.spec.basic_auth && prom.editable);
        assert_eq!(prom.spec.json_data["timeInterval"], "15s");
        assert_eq!(
            prom.spec.secure_json_data.get("basicAuthPassword"),
            Some("s3cret")
        );
        assert_eq!(
            prom.spec.secure_json_data.get("httpHeaderValue1"),
            Some("cost $5 ")
        );
        assert!(prom.spec.validate().is_ok());
        let testdata = &config.datasources[1];
        assert_eq!(testdata.org_id, OrgId(2));
        assert!(!testdata.editable);
        assert_ne!(prom.checksum, testdata.checksum);
        // The same text gives the same checksums; a changed value another.
        let again = DataSourceProvisioning::from_yaml(
            "apiVersion: 1\ndatasources:\n  - {name: TestData, type: testdata, orgId: 2}\n",
            env,
        )
        .unwrap();
        assert_eq!(again.datasources[0].checksum, testdata.checksum);
    }

    #[test]
    fn broken_files_are_refused() {
        for yaml in [
            "datasources: []",
            "apiVersion: 2",
            "apiVersion: 1\ndatasources: {name: x}",
            "apiVersion: 1\ndatasources:\n  - type: prometheus",
            "apiVersion: 1\ndatasources:\n  - {name: x, orgId: zero}",
            "apiVersion: 1\ndatasources:\n  - {name: x, isDefault: maybe}",
            "apiVersion: 1\ndeleteDatasources:\n  - orgId: 1",
            "apiVersion: 1\ndatasources: [",
        ] {
            assert!(
                matches!(
                    DataSourceProvisioning::from_yaml(yaml, env),
                    Err(Error::InvalidProvisioningConfig(_))
                ),
                "{yaml:?} is refused"
            );
        }
        assert_eq!(
            DataSourceProvisioning::from_yaml("", env).unwrap(),
            DataSourceProvisioning::default()
        );
    }

    #[test]
    fn variables_expand_like_grafana() {
        assert_eq!(expand("$PROM_URL/x", &env), "http://prometheus:9090/x");
        assert_eq!(expand("${PASSWORD}!", &env), "s3cret!");
        assert_eq!(
            expand("$$ and $ and ${UNSET} and $-", &env),
            "$ and $ and  and $-"
        );
        assert_eq!(expand("é$ORGé", &env), "é2é");
        assert_eq!(expand("${unterminated", &env), "${unterminated");
    }
}
