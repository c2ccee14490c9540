//! [`AlertRules`]: what the HTTP layer calls to read and write rules and to read their
//! state, with the checks that need more than the rule itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tandem_datasources::{DataSourceKey, DataSourceStore, DataSourceUid};

use crate::store::{
    GroupChanges, GroupRule, GroupWriter, NewRule, ReplaceGroup, RuleFilter, UpdateRule,
};
use crate::validate::{validate_group_name, validate_interval, validate_spec};
use crate::{
    AlertInstance, AlertRule, AlertStore, Error, FolderUid, OrgId, Provenance, Result, RuleSpec,
    RuleStatus, RuleUid, validate_uid,
};

/// How rules are evaluated across the cluster (`[cluster] alerting_evaluation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvaluationMode {
    /// Every instance evaluates every rule (Grafana's semantics).
    #[default]
    All,
    /// Each rule is evaluated by one live instance.
    Sharded,
}

/// Typed settings of alerting; `Default` is the documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertingSettings {
    /// Whether this instance evaluates rules at all (`[unified_alerting] execute_alerts`).
    pub execute_alerts: bool,
    /// The base interval: group intervals are multiples of it (`min_interval`).
    pub min_interval: Duration,
    /// How long one evaluation attempt may take (`evaluation_timeout`).
    pub evaluation_timeout: Duration,
    /// How many times a failing evaluation is attempted (`max_attempts`).
    pub max_attempts: u32,
    /// `all` or `sharded` (`[cluster] alerting_evaluation`).
    pub mode: EvaluationMode,
    /// How many shards the rules are spread over in sharded mode.
    pub shards: u32,
    /// An unchanged alert instance is rewritten after this many evaluations, so that
    /// steady-state writes stay at 1/N of the evaluations.
    pub refresh_evaluations: i64,
    /// How many evaluations run at once on this instance.
    pub max_concurrent_evaluations: usize,
    /// Whether state changes are recorded as annotations
    /// (`[unified_alerting.state_history] enabled`).
    pub state_history: bool,
}

impl Default for AlertingSettings {
    fn default() -> AlertingSettings {
        AlertingSettings {
            execute_alerts: true,
            min_interval: Duration::from_secs(10),
            evaluation_timeout: Duration::from_secs(30),
            max_attempts: 3,
            mode: EvaluationMode::All,
            shards: 64,
            refresh_evaluations: 200,
            max_concurrent_evaluations: 64,
            state_history: true,
        }
    }
}

impl AlertingSettings {
    /// The base interval in whole seconds (at least 1).
    pub fn base_interval_seconds(&self) -> i64 {
        i64::try_from(self.min_interval.as_secs())
            .unwrap_or(10)
            .max(1)
    }

    /// The interval of a group created without one: Grafana's 60 s, or the base interval
    /// when that is longer.
    pub fn default_interval_seconds(&self) -> i64 {
        self.base_interval_seconds().max(60)
    }
}

/// A folder as alerting needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// Its uid.
    pub uid: FolderUid,
    /// Its title (the `grafana_folder` label, the namespace of the Ruler API).
    pub title: String,
}

/// Folders, which belong to the dashboards domain: the composition layer implements this
/// over it, so alerting does not depend on it.
#[async_trait::async_trait]
pub trait FolderLookup: Send + Sync {
    /// The folder with this uid in the org.
    async fn folder(&self, org: OrgId, uid: &FolderUid) -> Result<Option<Folder>>;
    /// Every folder of the org.
    async fn folders(&self, org: OrgId) -> Result<Vec<Folder>>;
    /// The folder with this title at the org's root, created when missing (file
    /// provisioning names folders by title).
    async fn ensure_folder(&self, org: OrgId, title: &str) -> Result<Folder>;
}

/// Rules and their state, with every check Grafana makes before a write.
#[derive(Clone)]
pub struct AlertRules {
    store: Arc<dyn AlertStore>,
    folders: Arc<dyn FolderLookup>,
    datasources: Arc<dyn DataSourceStore>,
    settings: AlertingSettings,
}

impl std::fmt::Debug for AlertRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertRules")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AlertRules {
    /// Rules in `store`, with folders from `folders` and data sources from `datasources`.
    pub fn new(
        store: Arc<dyn AlertStore>,
        folders: Arc<dyn FolderLookup>,
        datasources: Arc<dyn DataSourceStore>,
        settings: AlertingSettings,
    ) -> AlertRules {
        AlertRules {
            store,
            folders,
            datasources,
            settings,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AlertStore> {
        &self.store
    }

    /// The folders.
    pub fn folders(&self) -> &Arc<dyn FolderLookup> {
        &self.folders
    }

    /// The settings.
    pub fn settings(&self) -> &AlertingSettings {
        &self.settings
    }

    /// The folder, or `FolderNotFound`.
    pub async fn folder(&self, org: OrgId, uid: &FolderUid) -> Result<Folder> {
        self.folders
            .folder(org, uid)
            .await?
            .ok_or(Error::FolderNotFound)
    }

    /// The titles of the org's folders, by uid.
    pub async fn folder_titles(&self, org: OrgId) -> Result<HashMap<FolderUid, String>> {
        Ok(self
            .folders
            .folders(org)
            .await?
            .into_iter()
            .map(|f| (f.uid, f.title))
            .collect())
    }

    /// Everything about a rule that must hold before it is written: Grafana's validation,
    /// the group's name, the folder, and every data source a query names.
    pub async fn check(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: &str,
        spec: &RuleSpec,
    ) -> Result<()> {
        validate_spec(spec)?;
        validate_group_name(group)?;
        if folder.as_str().is_empty() {
            return Err(Error::invalid("folderUID must be set"));
        }
        self.folder(org, folder).await?;
        for query in spec.data.iter().filter(|q| !q.is_expression()) {
            let key = DataSourceKey::Uid(DataSourceUid::from(query.datasource_uid.clone()));
            if self
                .datasources
                .get(tandem_datasources::OrgId(org.0), &key)
                .await?
                .is_none()
            {
                return Err(Error::invalid(format!(
                    "failed to build query '{}': data source not found",
                    query.ref_id
                )));
            }
        }
        Ok(())
    }

    /// Creates a rule (Grafana's provisioning `POST`): it joins its group with the group's
    /// interval, or starts one with the default interval.
    pub async fn create(
        &self,
        org: OrgId,
        uid: Option<&str>,
        folder: FolderUid,
        group: String,
        spec: RuleSpec,
        provenance: Provenance,
    ) -> Result<AlertRule> {
        let uid = match uid.filter(|u| !u.is_empty()) {
            Some(uid) => {
                validate_uid(uid)?;
                Some(RuleUid::from(uid))
            }
            None => None,
        };
        self.check(org, &folder, &group, &spec).await?;
        self.store
            .create_rule(NewRule {
                org_id: org,
                uid,
                folder_uid: folder,
                rule_group: group,
                spec,
                provenance,
                default_interval_seconds: self.settings.default_interval_seconds(),
            })
            .await
    }

    /// Replaces a rule (Grafana's provisioning `PUT`).
    pub async fn update(
        &self,
        org: OrgId,
        uid: &RuleUid,
        folder: FolderUid,
        group: String,
        spec: RuleSpec,
        provenance: Provenance,
    ) -> Result<AlertRule> {
        if self.store.get_rule(org, uid).await?.is_none() {
            return Err(Error::RuleNotFound);
        }
        self.check(org, &folder, &group, &spec).await?;
        self.store
            .update_rule(UpdateRule {
                org_id: org,
                uid: uid.clone(),
                folder_uid: folder,
                rule_group: group,
                spec,
                provenance,
                expected_version: None,
                default_interval_seconds: self.settings.default_interval_seconds(),
            })
            .await
    }

    /// The rule, or `RuleNotFound`.
    pub async fn get(&self, org: OrgId, uid: &RuleUid) -> Result<AlertRule> {
        self.store
            .get_rule(org, uid)
            .await?
            .ok_or(Error::RuleNotFound)
    }

    /// The org's rules.
    pub async fn list(&self, org: OrgId) -> Result<Vec<AlertRule>> {
        self.store
            .list_rules(RuleFilter {
                org_id: Some(org),
                ..RuleFilter::default()
            })
            .await
    }

    /// The rules of a folder, optionally of one group.
    pub async fn list_in(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: Option<&str>,
    ) -> Result<Vec<AlertRule>> {
        self.store
            .list_rules(RuleFilter {
                org_id: Some(org),
                folder_uid: Some(folder.clone()),
                rule_group: group.map(str::to_owned),
            })
            .await
    }

    /// The group's rules, or `GroupNotFound`.
    pub async fn group(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: &str,
    ) -> Result<Vec<AlertRule>> {
        let rules = self.list_in(org, folder, Some(group)).await?;
        if rules.is_empty() {
            return Err(Error::GroupNotFound);
        }
        Ok(rules)
    }

    /// Deletes a rule.
    pub async fn delete(&self, org: OrgId, uid: &RuleUid, provenance: Provenance) -> Result<()> {
        self.store.delete_rule(org, uid, provenance).await?;
        Ok(())
    }

    /// Writes a whole group after checking every rule in it.
    pub async fn replace_group(
        &self,
        org: OrgId,
        folder: FolderUid,
        title: String,
        interval_seconds: i64,
        rules: Option<Vec<GroupRule>>,
        writer: GroupWriter,
    ) -> Result<GroupChanges> {
        validate_group_name(&title)?;
        validate_interval(interval_seconds, self.settings.base_interval_seconds())?;
        tandem_storage::input::check_count(
            "rules",
            rules.as_ref().map_or(0, Vec::len),
            crate::MAX_GROUP_RULES,
        )?;
        self.folder(org, &folder).await?;
        let mut seen = std::collections::HashSet::new();
        for (index, rule) in rules.iter().flatten().enumerate() {
            if let Some(uid) = &rule.uid {
                validate_uid(uid.as_str())?;
                if !seen.insert(uid.clone()) {
                    return Err(Error::BadRequest(format!(
                        "rule [{index}] has UID {uid} that is already assigned to another rule"
                    )));
                }
            }
            self.check(org, &folder, &title, &rule.spec).await?;
        }
        self.store
            .replace_group(ReplaceGroup {
                org_id: org,
                folder_uid: folder,
                title,
                interval_seconds,
                rules,
                writer,
            })
            .await
    }

    /// Deletes a group.
    pub async fn delete_group(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: &str,
        writer: GroupWriter,
    ) -> Result<Vec<RuleUid>> {
        self.store.delete_group(org, folder, group, writer).await
    }

    /// The org's alert instances, as stored.
    pub async fn instances(&self, org: OrgId) -> Result<Vec<AlertInstance>> {
        self.store.list_instances(Some(org)).await
    }

    /// The org's rule statuses, as stored.
    pub async fn statuses(&self, org: OrgId) -> Result<Vec<RuleStatus>> {
        self.store.list_statuses(org).await
    }
}
