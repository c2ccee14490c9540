//! [`AlertStore`]: the persistence of rules, their versions, alert instances, rule statuses
//! and shard leases, one trait with a sea-orm implementation ([`crate::SqlAlertStore`]).

use std::collections::HashMap;

use crate::{
    AlertInstance, AlertRule, FolderUid, InstanceState, OrgId, Provenance, Result, RuleSpec,
    RuleStatus, RuleUid, RuleVersion,
};

/// A rule to create.
#[derive(Clone, Debug)]
pub struct NewRule {
    /// The org.
    pub org_id: OrgId,
    /// The uid; generated when `None`.
    pub uid: Option<RuleUid>,
    /// The folder; must exist (checked by the caller).
    pub folder_uid: FolderUid,
    /// The group; the rule takes the group's interval, or `default_interval_seconds` when
    /// the group is new.
    pub rule_group: String,
    /// The rule.
    pub spec: RuleSpec,
    /// Who manages it.
    pub provenance: Provenance,
    /// The interval of a new group.
    pub default_interval_seconds: i64,
}

/// A rule to replace.
#[derive(Clone, Debug)]
pub struct UpdateRule {
    /// The org.
    pub org_id: OrgId,
    /// The rule.
    pub uid: RuleUid,
    /// The folder it moves to (or stays in).
    pub folder_uid: FolderUid,
    /// The group it moves to (or stays in).
    pub rule_group: String,
    /// The rule.
    pub spec: RuleSpec,
    /// The provenance of the request.
    pub provenance: Provenance,
    /// The version the caller read, if it knows one; otherwise the version read in the
    /// same transaction is the one compared.
    pub expected_version: Option<i64>,
    /// The interval when the rule moves into a group that does not exist yet.
    pub default_interval_seconds: i64,
}

/// Which API changes a group, for the provenance rules that apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupWriter {
    /// The provisioning API or a provisioning file: each rule's stored provenance must
    /// allow the request's ([`Provenance::allows`]).
    Provisioning(Provenance),
    /// The Ruler API: no affected group may hold a provisioned rule; rules get provenance
    /// `""`.
    Ruler,
}

/// One rule of a group to write; matched to a stored rule by uid.
#[derive(Clone, Debug)]
pub struct GroupRule {
    /// The uid: an existing rule (of this group or moved from another), or a new one;
    /// generated when `None`.
    pub uid: Option<RuleUid>,
    /// The rule.
    pub spec: RuleSpec,
}

/// A whole group to write: rules not listed are deleted, listed ones created or updated in
/// order, all with the group's interval.
#[derive(Clone, Debug)]
pub struct ReplaceGroup {
    /// The org.
    pub org_id: OrgId,
    /// The folder.
    pub folder_uid: FolderUid,
    /// The group's name.
    pub title: String,
    /// The interval, seconds.
    pub interval_seconds: i64,
    /// The rules; `None` keeps the stored rules and changes only the interval.
    pub rules: Option<Vec<GroupRule>>,
    /// Who writes.
    pub writer: GroupWriter,
}

/// What a group write changed, by uid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupChanges {
    /// Rules created.
    pub created: Vec<RuleUid>,
    /// Rules changed.
    pub updated: Vec<RuleUid>,
    /// Rules deleted.
    pub deleted: Vec<RuleUid>,
}

impl GroupChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// Which rules to list.
#[derive(Clone, Debug, Default)]
pub struct RuleFilter {
    /// Only this org's (`None`: every org's, for the scheduler).
    pub org_id: Option<OrgId>,
    /// Only this folder's.
    pub folder_uid: Option<FolderUid>,
    /// Only this group's (with `folder_uid`).
    pub rule_group: Option<String>,
}

/// A cheap summary of every stored rule: it changes whenever a rule is created, changed or
/// deleted, so the scheduler reloads the rules only then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RulesFingerprint {
    /// How many rules there are.
    pub count: i64,
    /// The sum of their versions.
    pub version_sum: i64,
    /// The largest row id.
    pub max_id: i64,
}

/// The instances one evaluation of one rule writes, all or nothing.
#[derive(Clone, Debug)]
pub struct InstanceWrite {
    /// The org.
    pub org_id: OrgId,
    /// The rule.
    pub rule_uid: RuleUid,
    /// The slot evaluated: every row is written only where its stored slot is older.
    pub slot: i64,
    /// Instances to insert or update.
    pub upserts: Vec<AlertInstance>,
    /// Instances to delete, by fingerprint.
    pub deletes: Vec<String>,
    /// For each upserted instance the evaluation found stored (by fingerprint), the state
    /// and reason it started from: such a row is written only while it still holds them, so
    /// an evaluator with a stale view writes nothing. Upserts not listed are new instances
    /// (or, without `history`, are written without this check).
    pub expected: HashMap<String, (InstanceState, String)>,
    /// When set, every upsert whose state or reason differs from what it started from
    /// (`Normal` for a new instance) is recorded as one of Grafana's state history
    /// annotations, in the same transaction: a change is recorded exactly once, by the
    /// evaluation that made it, whichever instance that was.
    pub history: Option<StateHistory>,
}

/// What a state history annotation says about its rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateHistory {
    /// The rule's numeric id (the annotation's `alertId`).
    pub rule_id: i64,
    /// The rule's title, first in the annotation's text.
    pub title: String,
    /// The dashboard the rule is linked to (its `__dashboardUid__` annotation).
    pub dashboard_uid: Option<String>,
    /// The panel (its `__panelId__` annotation); 0 for none.
    pub panel_id: i64,
}

impl StateHistory {
    /// The history context of `rule`.
    pub fn of(rule: &AlertRule) -> StateHistory {
        let annotations = &rule.spec.annotations;
        StateHistory {
            rule_id: rule.id,
            title: rule.spec.title.clone(),
            dashboard_uid: annotations
                .get("__dashboardUid__")
                .map(|uid| uid.trim().to_owned())
                .filter(|uid| !uid.is_empty()),
            panel_id: annotations
                .get("__panelId__")
                .and_then(|id| id.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

/// A shard claimed by a holder: it may evaluate the slots of the shard's rules from `start`
/// (inclusive) up to its lease's [`HolderLease::claimed_until`] (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardClaim {
    /// The shard.
    pub shard: u32,
    /// The fencing token of this claim.
    pub token: i64,
    /// The first slot time this holder may evaluate: where the previous holder's claim
    /// ended.
    pub start: i64,
}

/// A holder's lease, which covers every shard it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HolderLease {
    /// The slot time before which the holder may evaluate its shards' rules.
    pub claimed_until: i64,
}

/// Persistence of alert rules and alert state, shared by every instance.
///
/// Every write is one transaction. Rule changes are compare-and-swaps on the rule's
/// version, and each committed change writes one `alert_rule_version` row, so two
/// instances editing one rule never lose an edit: the second gets
/// [`Error::VersionMismatch`](crate::Error::VersionMismatch). Titles are unique per folder,
/// uids per org. Instance writes are conditional on the slot: an older evaluation never
/// overwrites a newer one. Times in shard statements come from the database's clock.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync {
    /// Creates a rule (version 1). `UidTaken`, `TitleTaken`.
    async fn create_rule(&self, rule: NewRule) -> Result<AlertRule>;
    /// The rule with this uid in the org.
    async fn get_rule(&self, org: OrgId, uid: &RuleUid) -> Result<Option<AlertRule>>;
    /// Rules matching the filter, by folder, group and index.
    async fn list_rules(&self, filter: RuleFilter) -> Result<Vec<AlertRule>>;
    /// Replaces a rule; it keeps its group's interval (or takes the new group's).
    /// `RuleNotFound`, `VersionMismatch`, `TitleTaken`, `ProvenanceChange`.
    async fn update_rule(&self, update: UpdateRule) -> Result<AlertRule>;
    /// Deletes a rule with its instances and status; `ProvenanceMismatch` when the stored
    /// provenance does not allow it. Deleting a missing rule is not an error (`None`).
    async fn delete_rule(
        &self,
        org: OrgId,
        uid: &RuleUid,
        provenance: Provenance,
    ) -> Result<Option<AlertRule>>;
    /// Writes a whole group (see [`ReplaceGroup`]); rules identical to the stored ones are
    /// not written, so replaying a group changes nothing.
    async fn replace_group(&self, group: ReplaceGroup) -> Result<GroupChanges>;
    /// Deletes a group's rules. `GroupNotFound` when it has none.
    async fn delete_group(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: &str,
        writer: GroupWriter,
    ) -> Result<Vec<RuleUid>>;
    /// The rule's versions, newest first.
    async fn rule_versions(&self, org: OrgId, uid: &RuleUid) -> Result<Vec<RuleVersion>>;
    /// A summary that changes with every rule change.
    async fn rules_fingerprint(&self) -> Result<RulesFingerprint>;

    /// The instances of these rules.
    async fn load_instances(&self, org: OrgId, rules: &[RuleUid]) -> Result<Vec<AlertInstance>>;
    /// Every instance of the org (`None`: of every org), by rule and fingerprint: what the
    /// read APIs and the notifier read.
    async fn list_instances(&self, org: Option<OrgId>) -> Result<Vec<AlertInstance>>;
    /// Writes one evaluation's changes; `false` (and nothing written) when a row already
    /// holds this slot or a newer one.
    async fn write_instances(&self, write: InstanceWrite) -> Result<bool>;
    /// Records when a notification was sent for an instance (the notifier's seam).
    async fn mark_sent(&self, org: OrgId, rule: &RuleUid, fingerprint: &str, at: i64)
    -> Result<()>;
    /// Writes a rule's status unless a newer slot's is stored; `false` when not written.
    async fn write_status(&self, status: RuleStatus) -> Result<bool>;
    /// The statuses of the org's rules.
    async fn list_statuses(&self, org: OrgId) -> Result<Vec<RuleStatus>>;

    /// Starts the lease of `holder`, a name never used before, for `ttl_ms` (by the
    /// database's clock), claiming the slots up to `horizon_ms` past now.
    async fn register_holder(
        &self,
        holder: &str,
        ttl_ms: i64,
        horizon_ms: i64,
    ) -> Result<HolderLease>;
    /// Renews the lease of `holder`, and with it every shard it holds, in one row write.
    /// `None` when the lease had expired or was taken over: the holder has lost every shard
    /// and must register under a new name.
    async fn renew_holder(
        &self,
        holder: &str,
        ttl_ms: i64,
        horizon_ms: i64,
    ) -> Result<Option<HolderLease>>;
    /// Ends the lease of `holder` now (a graceful stop, after releasing its shards): shards
    /// it still names are free from its watermark on.
    async fn end_holder(&self, holder: &str) -> Result<()>;
    /// Claims `shard` for `holder`, whose lease must be live, when the shard is new,
    /// released, or held under an expired lease (which is then ended for good, so its holder
    /// cannot renew it). The claim starts where the previous holder's ended.
    async fn claim_shard(&self, shard: u32, holder: &str) -> Result<Option<ShardClaim>>;
    /// Gives a shard up: its claim ends at `evaluated_until` (never before its start), so
    /// the next holder evaluates from there.
    async fn release_shard(
        &self,
        holder: &str,
        claim: ShardClaim,
        evaluated_until: i64,
    ) -> Result<()>;
}
