//! The plain types of the alerting domain: rules, their queries, and alert instances.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Labels or annotations: names to values, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// An org's id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct OrgId(pub i64);

/// The longest uid of a rule or a folder, Grafana's limit.
pub const MAX_UID_LEN: usize = 40;
/// The longest rule title and rule group name, Grafana's `AlertRuleMaxTitleLength`.
pub const MAX_TITLE_LEN: usize = 190;
/// The most labels, annotations or queries one rule may have.
pub const MAX_ITEMS: usize = 100;
/// The longest label or annotation name.
pub const MAX_LABEL_NAME_LEN: usize = 190;
/// The longest label or annotation value (a runbook or a description).
pub const MAX_LABEL_VALUE_LEN: usize = 20_000;
/// The largest query model, in bytes of JSON.
pub const MAX_MODEL_BYTES: usize = 64 * 1024;
/// The most rules one group may hold.
pub const MAX_GROUP_RULES: usize = 1_000;
/// The longest duration a rule may carry (`for`, `keep_firing_for`, an interval): a year.
pub const MAX_DURATION_MS: i64 = 365 * 24 * 3_600_000;

macro_rules! uid_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A uid that keeps Grafana's rules: 1 to 40 characters of `[a-zA-Z0-9-_]`.
            pub fn parse(uid: impl Into<String>) -> Result<$name> {
                let uid = uid.into();
                validate_uid(&uid)?;
                Ok($name(uid))
            }

            /// The uid as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            /// Wraps stored or looked-up text without checking it (a lookup of a malformed
            /// uid simply finds nothing).
            fn from(uid: &str) -> $name {
                $name(uid.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(uid: String) -> $name {
                $name(uid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

uid_type!(
    /// A rule's uid, unique per org.
    RuleUid
);
uid_type!(
    /// A folder's uid (folders belong to the dashboards domain).
    FolderUid
);

/// Checks Grafana's uid rules (`util.ValidateUID`).
pub fn validate_uid(uid: &str) -> Result<()> {
    if uid.is_empty() || uid.chars().count() > MAX_UID_LEN {
        return Err(Error::invalid(format!(
            "cannot create rule with UID '{}': uid too long, max 40 characters",
            truncate(uid, 60)
        )));
    }
    if !uid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(format!(
            "cannot create rule with UID '{}': invalid format of UID. Only letters, numbers, '-' and '_' are allowed",
            truncate(uid, 60)
        )));
    }
    Ok(())
}

/// A random uid as Grafana generates them: 14 lower-case letters and digits.
pub fn generate_uid() -> String {
    use rand::RngExt;
    const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..14)
        .map(|i| {
            let from = if i == 0 {
                ALPHANUMERIC.get(..26).unwrap_or(ALPHANUMERIC)
            } else {
                ALPHANUMERIC
            };
            let at = rng.random_range(0..from.len());
            char::from(from.get(at).copied().unwrap_or(b'a'))
        })
        .collect()
}

/// What a rule does when its queries return no data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoDataState {
    /// Fire.
    Alerting,
    /// Enter the `NoData` state (Grafana's default).
    #[default]
    NoData,
    /// Count as normal.
    #[serde(rename = "OK")]
    Ok,
    /// Keep the state the instance had.
    KeepLast,
}

/// What a rule does when its evaluation fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecErrState {
    /// Fire.
    Alerting,
    /// Enter the `Error` state (Grafana's default).
    #[default]
    Error,
    /// Count as normal.
    #[serde(rename = "OK")]
    Ok,
    /// Keep the state the instance had.
    KeepLast,
}

impl NoDataState {
    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NoDataState::Alerting => "Alerting",
            NoDataState::NoData => "NoData",
            NoDataState::Ok => "OK",
            NoDataState::KeepLast => "KeepLast",
        }
    }

    /// Parses Grafana's spelling, with Grafana's message when it is unknown.
    pub fn parse(text: &str) -> Result<NoDataState> {
        Ok(match text {
            "Alerting" => NoDataState::Alerting,
            "NoData" => NoDataState::NoData,
            "OK" => NoDataState::Ok,
            "KeepLast" => NoDataState::KeepLast,
            other => {
                return Err(Error::invalid(format!(
                    "unknown NoData state option {}",
                    truncate(other, 60)
                )));
            }
        })
    }
}

impl ExecErrState {
    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecErrState::Alerting => "Alerting",
            ExecErrState::Error => "Error",
            ExecErrState::Ok => "OK",
            ExecErrState::KeepLast => "KeepLast",
        }
    }

    /// Parses Grafana's spelling, with Grafana's message when it is unknown.
    pub fn parse(text: &str) -> Result<ExecErrState> {
        Ok(match text {
            "Alerting" => ExecErrState::Alerting,
            "Error" => ExecErrState::Error,
            "OK" => ExecErrState::Ok,
            "KeepLast" => ExecErrState::KeepLast,
            other => {
                return Err(Error::invalid(format!(
                    "unknown Error state option {}",
                    truncate(other, 60)
                )));
            }
        })
    }
}

/// Who manages a rule: the API (`api`), a provisioning file (`file`), or nobody in
/// particular (`""`, what the UI and `X-Disable-Provenance` make).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// Editable by anyone who may edit rules.
    #[default]
    None,
    /// Created through the provisioning API.
    Api,
    /// Provisioned from a file; the API refuses to change it.
    File,
}

impl Provenance {
    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::None => "",
            Provenance::Api => "api",
            Provenance::File => "file",
        }
    }

    /// Reads a stored spelling; unknown text is `None`.
    pub fn from_stored(text: &str) -> Provenance {
        match text {
            "api" => Provenance::Api,
            "file" => Provenance::File,
            _ => Provenance::None,
        }
    }

    /// Grafana's `CanUpdateProvenanceInRuleGroup`: a request with provenance `provided` may
    /// change a rule stored with `self`.
    pub fn allows(self, provided: Provenance) -> bool {
        self == provided
            || self == Provenance::None
            || (self == Provenance::Api && provided == Provenance::None)
    }
}

/// A query's time range relative to the evaluation time, in seconds before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelativeTimeRange {
    /// How far back the range starts.
    #[serde(default)]
    pub from: i64,
    /// How far back it ends (usually 0).
    #[serde(default)]
    pub to: i64,
}

/// One query or expression of a rule, as Grafana stores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertQuery {
    /// Its name; the condition and other expressions refer to it.
    #[serde(rename = "refId", default)]
    pub ref_id: String,
    /// An optional query type.
    #[serde(rename = "queryType", default)]
    pub query_type: String,
    /// The time range, relative to the evaluation time.
    #[serde(rename = "relativeTimeRange", default)]
    pub relative_time_range: RelativeTimeRange,
    /// The data source's uid; `__expr__` for an expression.
    #[serde(rename = "datasourceUid", default)]
    pub datasource_uid: String,
    /// The query itself, as the data source reads it.
    #[serde(default)]
    pub model: Map<String, Value>,
}

impl AlertQuery {
    /// Whether this is a server-side expression.
    pub fn is_expression(&self) -> bool {
        self.datasource_uid == tandem_datasources::EXPRESSION_UID
    }
}

/// What a rule says, independent of where it lives: everything a client writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSpec {
    /// The title, unique in its folder.
    pub title: String,
    /// The refId whose result decides.
    pub condition: String,
    /// The queries and expressions.
    pub data: Vec<AlertQuery>,
    /// What no data means.
    pub no_data_state: NoDataState,
    /// What a failed evaluation means.
    pub exec_err_state: ExecErrState,
    /// How long a condition must hold before the alert fires (ms).
    pub for_ms: i64,
    /// How long a firing alert keeps firing after the condition stops holding (ms).
    pub keep_firing_for_ms: i64,
    /// After how many evaluations without its series an instance is resolved (`None`:
    /// Grafana's default, 2).
    pub missing_series_evals: Option<i64>,
    /// Labels, templated per instance.
    pub labels: Labels,
    /// Annotations, templated per instance.
    pub annotations: Labels,
    /// A paused rule is not evaluated.
    pub is_paused: bool,
}

impl RuleSpec {
    /// `missing_series_evals` or Grafana's default of 2.
    pub fn missing_series_evals_to_resolve(&self) -> i64 {
        self.missing_series_evals.unwrap_or(2)
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRule {
    /// The row id.
    pub id: i64,
    /// The org.
    pub org_id: OrgId,
    /// The uid.
    pub uid: RuleUid,
    /// The folder it lives in.
    pub folder_uid: FolderUid,
    /// The group's name.
    pub rule_group: String,
    /// The rule's position in its group, from 1.
    pub group_index: i64,
    /// The group's evaluation interval, in seconds.
    pub interval_seconds: i64,
    /// Grows by one with every change.
    pub version: i64,
    /// Who manages it.
    pub provenance: Provenance,
    /// When it last changed (epoch ms).
    pub updated: i64,
    /// What it says.
    pub spec: RuleSpec,
}

/// One version of a rule, kept for every change.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleVersion {
    /// The version number.
    pub version: i64,
    /// When it was written (epoch ms).
    pub created: i64,
    /// The rule as it was.
    pub rule: AlertRule,
}

/// The state of an alert instance, Grafana's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceState {
    /// The condition does not hold.
    #[default]
    Normal,
    /// The condition holds, for less than `for` so far.
    Pending,
    /// Firing.
    Alerting,
    /// The condition stopped holding, for less than `keep_firing_for` so far; still firing.
    Recovering,
    /// The queries returned no data (and `noDataState` is `NoData`).
    NoData,
    /// The evaluation failed (and `execErrState` is `Error`).
    Error,
}

impl InstanceState {
    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Normal => "Normal",
            InstanceState::Pending => "Pending",
            InstanceState::Alerting => "Alerting",
            InstanceState::Recovering => "Recovering",
            InstanceState::NoData => "NoData",
            InstanceState::Error => "Error",
        }
    }

    /// Reads a stored spelling (unknown text is `Normal`).
    pub fn from_stored(text: &str) -> InstanceState {
        match text {
            "Pending" => InstanceState::Pending,
            "Alerting" => InstanceState::Alerting,
            "Recovering" => InstanceState::Recovering,
            "NoData" => InstanceState::NoData,
            "Error" => InstanceState::Error,
            _ => InstanceState::Normal,
        }
    }

    /// Whether a notification should say it fires (Alerting, and Recovering which keeps
    /// firing).
    pub fn is_firing(self) -> bool {
        matches!(self, InstanceState::Alerting | InstanceState::Recovering)
    }

    /// Every state, in Grafana's order of importance.
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Alerting,
        InstanceState::Pending,
        InstanceState::Recovering,
        InstanceState::Error,
        InstanceState::NoData,
        InstanceState::Normal,
    ];
}

/// One alert instance of a rule, as persisted in `alert_instance`: what the read APIs show
/// and what notifications (the next issue) are made from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertInstance {
    /// The rule's org.
    pub org_id: OrgId,
    /// The rule.
    pub rule_uid: RuleUid,
    /// The labels' fingerprint, 16 hex digits (Prometheus' `LabelSet.Fingerprint`); also
    /// the instance's key within its rule.
    pub fingerprint: String,
    /// Every label: the rule's (templated), the series', `alertname`, `grafana_folder`.
    pub labels: Labels,
    /// The state.
    pub state: InstanceState,
    /// Why the state differs from the result (`NoData`, `Error`, `MissingSeries`,
    /// `KeepLast`), or empty.
    pub reason: String,
    /// When the current state started (epoch ms): Grafana's `activeAt`/`startsAt`.
    pub started_at: i64,
    /// When a firing alert is considered over unless evaluated again (epoch ms).
    pub ends_at: i64,
    /// The evaluation slot that last wrote the row (epoch ms).
    pub last_slot: i64,
    /// When that evaluation ran (epoch ms).
    pub last_eval_at: i64,
    /// The value of every refId at that evaluation, for `values` and `valueString`.
    pub values: BTreeMap<String, Option<f64>>,
    /// The annotations, templated.
    pub annotations: Labels,
    /// The evaluation error, if the state comes from one.
    pub error: String,
    /// When a firing alert was resolved (epoch ms), until it fires again.
    pub resolved_at: Option<i64>,
    /// When a notification was last sent (set by the notifier).
    pub last_sent_at: Option<i64>,
    /// How many evaluations in a row missed its series.
    pub missing_evals: i64,
    /// When the row was last written (epoch ms).
    pub written_at: i64,
    /// Where the alert came from, for alerts posted by an outside generator (Prometheus'
    /// `generatorURL`); `None` for a rule's instance, whose URL is its rule's page.
    pub generator_url: Option<String>,
}

/// The health of a rule's last recorded evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleStatus {
    /// The org.
    pub org_id: OrgId,
    /// The rule.
    pub rule_uid: RuleUid,
    /// The slot evaluated (epoch ms).
    pub last_slot: i64,
    /// How long the evaluation took (ms).
    pub duration_ms: i64,
    /// `ok`, `error` or `nodata`.
    pub health: String,
    /// The error, if any.
    pub last_error: String,
    /// When the row was written (epoch ms).
    pub written_at: i64,
}

/// Prometheus' label-set fingerprint (FNV-1a 64 over sorted `name 0xff value 0xff`), as 16
/// hex digits: the `fingerprint` of Grafana's webhook and the instance key.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// At most `max` characters of `text`, for messages.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or("")),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_prometheus() {
        // Prometheus' fingerprint of the empty set is the FNV-1a offset basis.
        assert_eq!(fingerprint(&Labels::new()), "cbf29ce484222325");
        let a: Labels = [("a".to_owned(), "1".to_owned())].into();
        let b: Labels = [("a".to_owned(), "2".to_owned())].into();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn uids_follow_grafana() {
        assert!(validate_uid("abc-DEF_123").is_ok());
        assert!(validate_uid("").is_err());
        assert!(validate_uid(&"a".repeat(41)).is_err());
        assert!(validate_uid("a b").is_err());
        let uid = generate_uid();
        assert_eq!(uid.len(), 14);
        assert!(validate_uid(&uid).is_ok());
    }

    #[test]
    fn provenance_transitions_follow_grafana() {
        use Provenance::*;
        assert!(None.allows(Api) && None.allows(File) && Api.allows(Api) && Api.allows(None));
        assert!(!File.allows(Api) && !File.allows(None) && !Api.allows(File));
    }
}
