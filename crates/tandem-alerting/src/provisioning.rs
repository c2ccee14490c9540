//! Grafana's alerting provisioning files, `provisioning/alerting/*.yaml`: the rule groups
//! (`groups`) and `deleteRules`, and through [`crate::notify::provision`] the notifier's
//! sections (contact points, policies, mute timings, templates).
//!
//! Every instance applies the same files; a group is written through the same path as the
//! provisioning API with provenance `file`, and rules identical to the stored ones are not
//! written, so instances never flip-flop and replaying a file changes nothing. A file's
//! folder is named by title and created when missing, as in Grafana.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::notify::provision::{
    NotifierProvisioner, NotifierProvisioning, NotifierProvisioningReport,
};
use crate::notify::store::NotificationStore;
use crate::store::{GroupRule, GroupWriter};
use crate::{
    AlertQuery, AlertRules, Error, ExecErrState, NoDataState, OrgId, Provenance, Result, RuleSpec,
    RuleUid, parse_duration,
};

/// One rule group of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvisionedGroup {
    /// The org (`orgId`, default 1).
    pub org_id: OrgId,
    /// The group's name.
    pub name: String,
    /// The folder's title.
    pub folder: String,
    /// The interval, seconds.
    pub interval_seconds: i64,
    /// The rules, each with its uid.
    pub rules: Vec<(RuleUid, RuleSpec)>,
}

/// The alerting provisioning of one instance: every file's groups and deletions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertProvisioning {
    /// The groups, in file order.
    pub groups: Vec<ProvisionedGroup>,
    /// `deleteRules`: (org, uid).
    pub delete_rules: Vec<(OrgId, RuleUid)>,
    /// The contact points, policies, mute timings and templates.
    pub notifier: NotifierProvisioning,
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertProvisioningReport {
    /// Rules created.
    pub created: u64,
    /// Rules updated.
    pub updated: u64,
    /// Rules deleted (by `deleteRules` or because a group no longer lists them).
    pub deleted: u64,
    /// Groups that could not be provisioned (logged).
    pub failed: u64,
    /// What the notifier's sections did.
    pub notifier: NotifierProvisioningReport,
}

impl AlertProvisioning {
    /// Parses one file; `lookup` resolves `$VAR` and `${VAR}` (query models are left as
    /// they are, annotations expand only `${VAR}`, as Grafana does).
    pub fn from_yaml(source: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_file("(inline)", source, &lookup)
    }

    /// [`AlertProvisioning::from_yaml`] of the file named `file`, which names the place of
    /// every notifier item it refuses.
    fn from_file(
        file: &str,
        source: &str,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let invalid = |message: String| Error::InvalidProvisioningConfig(message);
        let document: Value =
            serde_saphyr::from_str(source).map_err(|err| invalid(err.to_string()))?;
        let root = match document {
            Value::Object(root) => root,
            Value::Null => return Ok(AlertProvisioning::default()),
            _ => return Err(invalid("expected a mapping with apiVersion".to_owned())),
        };
        let list = |key: &str| -> Result<Vec<Value>> {
            match root.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(invalid(format!("{key} must be a list"))),
            }
        };
        let mut out = AlertProvisioning::default();
        for item in list("deleteRules")? {
            let uid = text(&item, "uid", &lookup);
            if uid.is_empty() {
                return Err(invalid("a deleteRules entry needs a uid".to_owned()));
            }
            out.delete_rules
                .push((org(&item, &lookup), RuleUid::from(uid)));
        }
        for item in list("groups")? {
            out.groups.push(group(&item, &lookup)?);
        }
        out.notifier = NotifierProvisioning::from_document(file, &root, lookup)?;
        Ok(out)
    }

    /// Reads every `*.yaml`, `*.yml` and `*.json` file of `dir` in name order; a missing
    /// directory provisions nothing.
    pub fn load_dir(dir: &Path, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let io = |path: &Path, source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(io(dir, source)),
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| io(dir, source))?.path();
            let known = path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
            if known && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut out = AlertProvisioning::default();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| io(&file, source))?;
            let name = file.display().to_string();
            let parsed = Self::from_file(&name, &text, &lookup).map_err(|err| match err {
                Error::InvalidProvisioningConfig(m) if !m.starts_with(&name) => {
                    Error::InvalidProvisioningConfig(format!("{name}: {m}"))
                }
                other => other,
            })?;
            out.groups.extend(parsed.groups);
            out.delete_rules.extend(parsed.delete_rules);
            out.notifier.extend(parsed.notifier);
        }
        Ok(out)
    }
}

/// Applies an [`AlertProvisioning`] through [`AlertRules`].
#[derive(Clone, Debug)]
pub struct AlertProvisioner {
    rules: AlertRules,
    config: AlertProvisioning,
    notifier: Option<NotifierProvisioner>,
}

impl AlertProvisioner {
    /// A provisioner of `config`'s rules; [`AlertProvisioner::with_notifications`] adds its
    /// notifier sections.
    pub fn new(rules: AlertRules, config: AlertProvisioning) -> AlertProvisioner {
        AlertProvisioner {
            rules,
            config,
            notifier: None,
        }
    }

    /// Applies the notifier's sections through `store` too.
    pub fn with_notifications(mut self, store: Arc<dyn NotificationStore>) -> AlertProvisioner {
        self.notifier = Some(NotifierProvisioner::new(
            store,
            self.config.notifier.clone(),
        ));
        self
    }

    /// Whether there is anything to provision.
    pub fn is_empty(&self) -> bool {
        self.config.groups.is_empty()
            && self.config.delete_rules.is_empty()
            && self
                .notifier
                .as_ref()
                .is_none_or(NotifierProvisioner::is_empty)
    }

    /// Applies the files once: the notifier's sections first, so that rules find their
    /// contact points; a group or item that fails is logged and counted, the others go on.
    pub async fn run_once(&self) -> AlertProvisioningReport {
        let mut report = AlertProvisioningReport::default();
        if let Some(notifier) = &self.notifier {
            report.notifier = notifier.run_once().await;
        }
        for (org, uid) in &self.config.delete_rules {
            match self
                .rules
                .store()
                .delete_rule(*org, uid, Provenance::File)
                .await
            {
                Ok(Some(_)) => report.deleted += 1,
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(rule_uid = %uid, error = %err, "deleting a provisioned alert rule failed");
                    report.failed += 1;
                }
            }
        }
        for group in &self.config.groups {
            // Two instances provisioning the same change race on the version: the loser
            // reads again and finds nothing left to do.
            let mut outcome = Err(Error::VersionMismatch);
            for _ in 0..3 {
                outcome = self.apply(group).await;
                if !matches!(&outcome, Err(Error::VersionMismatch))
                    && !outcome.as_ref().is_err_and(Error::is_unique_violation)
                {
                    break;
                }
            }
            match outcome {
                Ok(changes) => {
                    report.created += changes.created.len() as u64;
                    report.updated += changes.updated.len() as u64;
                    report.deleted += changes.deleted.len() as u64;
                }
                Err(err) => {
                    tracing::warn!(group = %group.name, folder = %group.folder, error = %err, "provisioning an alert rule group failed");
                    report.failed += 1;
                }
            }
        }
        report
    }

    async fn apply(&self, group: &ProvisionedGroup) -> Result<crate::GroupChanges> {
        let folder = self
            .rules
            .folders()
            .ensure_folder(group.org_id, &group.folder)
            .await?;
        let rules = group
            .rules
            .iter()
            .map(|(uid, spec)| GroupRule {
                uid: Some(uid.clone()),
                spec: spec.clone(),
            })
            .collect();
        self.rules
            .replace_group(
                group.org_id,
                folder.uid,
                group.name.clone(),
                group.interval_seconds,
                Some(rules),
                GroupWriter::Provisioning(Provenance::File),
            )
            .await
    }

    /// Applies the files every `interval` until `cancel`.
    pub async fn run(&self, interval: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            let report = self.run_once().await;
            if report != AlertProvisioningReport::default() {
                tracing::info!(?report, "provisioned alerting");
            }
        }
    }
}

pub(crate) fn text(item: &Value, key: &str, lookup: &impl Fn(&str) -> Option<String>) -> String {
    match item.get(key) {
        Some(Value::String(s)) => expand(s, lookup, false),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub(crate) fn org(item: &Value, lookup: &impl Fn(&str) -> Option<String>) -> OrgId {
    OrgId(
        text(item, "orgId", lookup)
            .trim()
            .parse::<i64>()
            .unwrap_or(1)
            .max(1),
    )
}

fn group(item: &Value, lookup: &impl Fn(&str) -> Option<String>) -> Result<ProvisionedGroup> {
    let invalid = |message: String| Error::InvalidProvisioningConfig(message);
    let name = text(item, "name", lookup);
    if name.trim().is_empty() {
        return Err(invalid("rule group has no name set".to_owned()));
    }
    let folder = text(item, "folder", lookup);
    if folder.trim().is_empty() {
        return Err(invalid("rule group has no folder set".to_owned()));
    }
    let interval = text(item, "interval", lookup);
    let interval_ms = parse_duration(&interval)
        .ok_or_else(|| invalid(format!("not a valid duration string: {interval:?}")))?;
    let mut rules = Vec::new();
    for rule in item
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        rules.push(rule_of(rule, lookup)?);
    }
    Ok(ProvisionedGroup {
        org_id: org(item, lookup),
        name,
        folder,
        interval_seconds: interval_ms / 1000,
        rules,
    })
}

fn rule_of(item: &Value, lookup: &impl Fn(&str) -> Option<String>) -> Result<(RuleUid, RuleSpec)> {
    let invalid = |message: String| Error::InvalidProvisioningConfig(message);
    let title = text(item, "title", lookup);
    if title.is_empty() {
        return Err(invalid("rule has no title set".to_owned()));
    }
    let uid = text(item, "uid", lookup);
    if uid.is_empty() {
        return Err(invalid(format!(
            "rule '{title}' failed to parse: no UID set"
        )));
    }
    let duration = |key: &str| -> Result<i64> {
        let value = text(item, key, lookup);
        if value.is_empty() {
            return Ok(0);
        }
        parse_duration(&value)
            .ok_or_else(|| invalid(format!("rule '{title}' failed to parse '{key}' field: not a valid duration string: {value:?}")))
    };
    let no_data = text(item, "noDataState", lookup);
    let exec_err = text(item, "execErrState", lookup);
    let map = |key: &str, braced_only: bool| -> crate::Labels {
        item.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => expand(s, lookup, braced_only),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut data = Vec::new();
    for query in item
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut parsed: AlertQuery = serde_json::from_value(query.clone())
            .map_err(|err| invalid(format!("rule '{title}' failed to parse: {err}")))?;
        parsed.ref_id = text(query, "refId", lookup);
        parsed.datasource_uid = text(query, "datasourceUid", lookup);
        if parsed.model.is_empty() {
            parsed.model = Map::new();
        }
        data.push(parsed);
    }
    if data.is_empty() {
        return Err(invalid(format!(
            "rule '{title}' failed to parse: no data set"
        )));
    }
    let condition = text(item, "condition", lookup);
    if condition.is_empty() {
        return Err(invalid(format!(
            "rule '{title}' failed to parse: no condition set"
        )));
    }
    let missing = match item.get("missing_series_evals_to_resolve") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid(format!("rule '{title}' failed to parse 'missing_series_evals_to_resolve' field: cannot be negative")))?,
        ),
    };
    let paused = matches!(item.get("isPaused"), Some(Value::Bool(true)))
        || text(item, "isPaused", lookup).eq_ignore_ascii_case("true");
    let spec = RuleSpec {
        title: title.clone(),
        condition,
        data,
        no_data_state: if no_data.trim().is_empty() {
            NoDataState::NoData
        } else {
            NoDataState::parse(no_data.trim())
                .map_err(|err| invalid(format!("rule '{title}' failed to parse: {err}")))?
        },
        exec_err_state: if exec_err.trim().is_empty() {
            ExecErrState::Alerting
        } else {
            ExecErrState::parse(exec_err.trim())
                .map_err(|err| invalid(format!("rule '{title}' failed to parse: {err}")))?
        },
        for_ms: duration("for")?,
        keep_firing_for_ms: duration("keepFiringFor")?,
        missing_series_evals: missing,
        labels: map("labels", false),
        annotations: map("annotations", true),
        is_paused: paused,
    };
    Ok((RuleUid::from(uid), spec))
}

/// `$NAME` and `${NAME}` (only the braced form when `braced_only`) → the variable (empty
/// when unset); `$$` → `$`; any other `$` stays.
pub(crate) fn expand(
    text: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    braced_only: bool,
) -> String {
    if !text.contains('$') {
        return text.to_owned();
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let after = rest.get(at + 1..).unwrap_or("");
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            out.push_str(&lookup(braced.get(..end).unwrap_or("")).unwrap_or_default());
            rest = braced.get(end + 1..).unwrap_or("");
        } else if !braced_only && after.starts_with(is_name) {
            let len = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            out.push_str(&lookup(after.get(..len).unwrap_or("")).unwrap_or_default());
            rest = after.get(len..).unwrap_or("");
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_files_are_read() {
        let yaml = r#"
apiVersion: 1
groups:
  - orgId: 1
    name: my_group
    folder: ${FOLDER}
    interval: 1m
    rules:
      - uid: my_rule
        title: High $ENVNAME
        condition: B
        data:
          - refId: A
            relativeTimeRange: {from: 600, to: 0}
            datasourceUid: td
            model: {scenarioId: predictable_pulse, expr: "rate($__interval)"}
          - refId: B
            datasourceUid: __expr__
            model: {type: reduce, expression: A, reducer: last}
        for: 5m
        keepFiringFor: 1m
        annotations: {summary: "on ${FOLDER} $notexpanded"}
        labels: {team: $TEAM}
        isPaused: false
deleteRules:
  - orgId: 1
    uid: old_rule
"#;
        let lookup = |name: &str| match name {
            "FOLDER" => Some("Ops".to_owned()),
            "TEAM" => Some("sre".to_owned()),
            "ENVNAME" => Some("prod".to_owned()),
            _ => None,
        };
        let parsed = AlertProvisioning::from_yaml(yaml, lookup).unwrap();
        assert_eq!(parsed.delete_rules, [(OrgId(1), RuleUid::from("old_rule"))]);
        let group = &parsed.groups[0];
        assert_eq!((group.folder.as_str(), group.interval_seconds), ("Ops", 60));
        let (uid, spec) = &group.rules[0];
        assert_eq!(uid.as_str(), "my_rule");
        assert_eq!(spec.title, "High prod");
        assert_eq!((spec.for_ms, spec.keep_firing_for_ms), (300_000, 60_000));
        assert_eq!(spec.labels["team"], "sre");
        assert_eq!(spec.annotations["summary"], "on Ops $notexpanded");
        assert_eq!(spec.exec_err_state, ExecErrState::Alerting);
        assert_eq!(spec.data[0].model["expr"], "rate($__interval)");
        assert_eq!(spec.data[0].relative_time_range.from, 600);
        for bad in [
            "apiVersion: 1\ngroups: [{name: g, folder: f, interval: 1x, rules: []}]",
            "apiVersion: 1\ngroups: [{name: '', folder: f, interval: 1m}]",
            "apiVersion: 1\ngroups: [{name: g, folder: f, interval: 1m, rules: [{title: t}]}]",
        ] {
            assert!(
                AlertProvisioning::from_yaml(bad, |_| None).is_err(),
                "{bad}"
            );
        }
    }
}
