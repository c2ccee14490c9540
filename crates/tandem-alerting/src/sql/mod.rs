//! The sea-orm [`AlertStore`], over the tables of the alerting migration.
//!
//! Every write is one transaction ([`Database::transaction`], retried on busy and deadlock
//! errors); a closure may run more than once, so each reads the clock itself. A rule being
//! changed is read `FOR UPDATE` and then updated `WHERE version = ?`: the compare-and-swap.
//! Writes that lost a race on a unique index run again from the start and then see the
//! winner's row. Shard leases compare times taken from the database's clock (`now()` in the
//! statement), so a skewed instance clock can neither steal nor keep a lease.

mod entity;
mod history;
pub(crate) mod notify;
mod rules;
mod shards;
mod state;

use std::collections::BTreeMap;

use sea_orm::DbBackend;
use tandem_storage::Database;

use crate::sql::entity::{alert_instance, alert_rule, alert_rule_status};
use crate::store::{
    GroupChanges, GroupWriter, HolderLease, InstanceWrite, NewRule, ReplaceGroup, RuleFilter,
    RulesFingerprint, ShardClaim, UpdateRule,
};
use crate::{
    AlertInstance, AlertRule, AlertStore, Error, ExecErrState, FolderUid, InstanceState,
    NoDataState, OrgId, Provenance, Result, RuleSpec, RuleStatus, RuleUid, RuleVersion,
};

/// How many times a write that lost a race on a unique index runs again.
const UNIQUE_RETRIES: u32 = 3;

/// [`AlertStore`] over sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, migrated by
/// `tandem-migrations`.
#[derive(Clone, Debug)]
pub struct SqlAlertStore {
    db: Database,
}

impl SqlAlertStore {
    /// A store in `db`, whose schema must be migrated.
    pub fn new(db: Database) -> SqlAlertStore {
        SqlAlertStore { db }
    }

    /// Runs a write transaction, again from the start when it lost a race on a unique index.
    async fn write<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(tandem_storage::Tx) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match self.db.transaction(&mut f).await {
                Err(err) if err.is_unique_violation() && attempt < UNIQUE_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "alerting write lost a race on a unique key, retrying"
                    );
                }
                other => return other,
            }
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.connection().get_database_backend()
    }
}

#[async_trait::async_trait]
impl AlertStore for SqlAlertStore {
    async fn create_rule(&self, rule: NewRule) -> Result<AlertRule> {
        rules::create(self, rule).await
    }

    async fn get_rule(&self, org: OrgId, uid: &RuleUid) -> Result<Option<AlertRule>> {
        rules::get(self, org, uid).await
    }

    async fn list_rules(&self, filter: RuleFilter) -> Result<Vec<AlertRule>> {
        rules::list(self, filter).await
    }

    async fn update_rule(&self, update: UpdateRule) -> Result<AlertRule> {
        rules::update(self, update).await
    }

    async fn delete_rule(
        &self,
        org: OrgId,
        uid: &RuleUid,
        provenance: Provenance,
    ) -> Result<Option<AlertRule>> {
        rules::delete(self, org, uid, provenance).await
    }

    async fn replace_group(&self, group: ReplaceGroup) -> Result<GroupChanges> {
        rules::replace_group(self, group).await
    }

    async fn delete_group(
        &self,
        org: OrgId,
        folder: &FolderUid,
        group: &str,
        writer: GroupWriter,
    ) -> Result<Vec<RuleUid>> {
        rules::delete_group(self, org, folder, group, writer).await
    }

    async fn rule_versions(&self, org: OrgId, uid: &RuleUid) -> Result<Vec<RuleVersion>> {
        rules::versions(self, org, uid).await
    }

    async fn rules_fingerprint(&self) -> Result<RulesFingerprint> {
        rules::fingerprint(self).await
    }

    async fn load_instances(&self, org: OrgId, rules: &[RuleUid]) -> Result<Vec<AlertInstance>> {
        state::load_instances(self, org, rules).await
    }

    async fn list_instances(&self, org: Option<OrgId>) -> Result<Vec<AlertInstance>> {
        state::list_instances(self, org).await
    }

    async fn write_instances(&self, write: InstanceWrite) -> Result<bool> {
        state::write_instances(self, write).await
    }

    async fn mark_sent(
        &self,
        org: OrgId,
        rule: &RuleUid,
        fingerprint: &str,
        at: i64,
    ) -> Result<()> {
        state::mark_sent(self, org, rule, fingerprint, at).await
    }

    async fn write_status(&self, status: RuleStatus) -> Result<bool> {
        state::write_status(self, status).await
    }

    async fn list_statuses(&self, org: OrgId) -> Result<Vec<RuleStatus>> {
        state::list_statuses(self, org).await
    }

    async fn register_holder(
        &self,
        holder: &str,
        ttl_ms: i64,
        horizon_ms: i64,
    ) -> Result<HolderLease> {
        shards::register_holder(self, holder, ttl_ms, horizon_ms).await
    }

    async fn renew_holder(
        &self,
        holder: &str,
        ttl_ms: i64,
        horizon_ms: i64,
    ) -> Result<Option<HolderLease>> {
        shards::renew_holder(self, holder, ttl_ms, horizon_ms).await
    }

    async fn end_holder(&self, holder: &str) -> Result<()> {
        shards::end_holder(self, holder).await
    }

    async fn claim_shard(&self, shard: u32, holder: &str) -> Result<Option<ShardClaim>> {
        shards::claim_shard(self, shard, holder).await
    }

    async fn release_shard(
        &self,
        holder: &str,
        claim: ShardClaim,
        evaluated_until: i64,
    ) -> Result<()> {
        shards::release_shard(self, holder, claim, evaluated_until).await
    }
}

// ---- conversions between rows and the plain types

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| Error::Corrupt(err.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::Corrupt(format!("{column}: {err}")))
}

fn rule_from_row(row: alert_rule::Model) -> Result<AlertRule> {
    Ok(AlertRule {
        id: row.id,
        org_id: OrgId(row.org_id),
        uid: RuleUid::from(row.uid),
        folder_uid: FolderUid::from(row.folder_uid),
        rule_group: row.rule_group,
        group_index: i64::from(row.rule_group_idx),
        interval_seconds: row.interval_seconds,
        version: row.version,
        provenance: Provenance::from_stored(&row.provenance),
        updated: row.updated,
        spec: RuleSpec {
            title: row.title,
            condition: row.condition_ref,
            data: from_json("data", &row.data)?,
            no_data_state: NoDataState::parse(&row.no_data_state).unwrap_or_default(),
            exec_err_state: ExecErrState::parse(&row.exec_err_state).unwrap_or_default(),
            for_ms: row.for_ms,
            keep_firing_for_ms: row.keep_firing_for_ms,
            missing_series_evals: row.missing_series_evals.map(i64::from),
            labels: from_json("labels", &row.labels)?,
            annotations: from_json("annotations", &row.annotations)?,
            is_paused: row.is_paused,
        },
    })
}

/// The rule as a version row stores it.
fn rule_document(rule: &AlertRule) -> Result<String> {
    let spec = &rule.spec;
    to_json(&serde_json::json!({
        "uid": rule.uid.as_str(),
        "orgID": rule.org_id.0,
        "folderUID": rule.folder_uid.as_str(),
        "ruleGroup": rule.rule_group,
        "ruleGroupIndex": rule.group_index,
        "intervalSeconds": rule.interval_seconds,
        "version": rule.version,
        "provenance": rule.provenance.as_str(),
        "updated": rule.updated,
        "title": spec.title,
        "condition": spec.condition,
        "data": spec.data,
        "noDataState": spec.no_data_state,
        "execErrState": spec.exec_err_state,
        "forMs": spec.for_ms,
        "keepFiringForMs": spec.keep_firing_for_ms,
        "missingSeriesEvalsToResolve": spec.missing_series_evals,
        "labels": spec.labels,
        "annotations": spec.annotations,
        "isPaused": spec.is_paused,
    }))
}

fn rule_from_document(version: i64, text: &str) -> Result<AlertRule> {
    let doc: serde_json::Value = from_json("rule", text)?;
    let text_of = |key: &str| {
        doc.get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let int_of = |key: &str| {
        doc.get(key)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let field = |key: &str| doc.get(key).cloned().unwrap_or(serde_json::Value::Null);
    Ok(AlertRule {
        id: 0,
        org_id: OrgId(int_of("orgID")),
        uid: RuleUid::from(text_of("uid")),
        folder_uid: FolderUid::from(text_of("folderUID")),
        rule_group: text_of("ruleGroup"),
        group_index: int_of("ruleGroupIndex"),
        interval_seconds: int_of("intervalSeconds"),
        version,
        provenance: Provenance::from_stored(&text_of("provenance")),
        updated: int_of("updated"),
        spec: RuleSpec {
            title: text_of("title"),
            condition: text_of("condition"),
            data: serde_json::from_value(field("data")).unwrap_or_default(),
            no_data_state: serde_json::from_value(field("noDataState")).unwrap_or_default(),
            exec_err_state: serde_json::from_value(field("execErrState")).unwrap_or_default(),
            for_ms: int_of("forMs"),
            keep_firing_for_ms: int_of("keepFiringForMs"),
            missing_series_evals: doc
                .get("missingSeriesEvalsToResolve")
                .and_then(serde_json::Value::as_i64),
            labels: serde_json::from_value(field("labels")).unwrap_or_default(),
            annotations: serde_json::from_value(field("annotations")).unwrap_or_default(),
            is_paused: doc.get("isPaused").and_then(serde_json::Value::as_bool) == Some(true),
        },
    })
}

fn instance_from_row(row: alert_instance::Model) -> Result<AlertInstance> {
    let values: BTreeMap<String, Option<f64>> = from_json("eval_values", &row.eval_values)?;
    Ok(AlertInstance {
        org_id: OrgId(row.org_id),
        rule_uid: RuleUid::from(row.rule_uid),
        fingerprint: row.labels_hash,
        labels: from_json("labels", &row.labels)?,
        state: InstanceState::from_stored(&row.state),
        reason: row.reason,
        started_at: row.started_at,
        ends_at: row.ends_at,
        last_slot: row.last_slot,
        last_eval_at: row.last_eval_at,
        values,
        annotations: from_json("annotations", &row.annotations)?,
        error: row.error,
        resolved_at: row.resolved_at,
        last_sent_at: row.last_sent_at,
        missing_evals: i64::from(row.missing_evals),
        written_at: row.written_at,
        generator_url: None,
    })
}

fn status_from_row(row: alert_rule_status::Model) -> RuleStatus {
    RuleStatus {
        org_id: OrgId(row.org_id),
        rule_uid: RuleUid::from(row.rule_uid),
        last_slot: row.last_slot,
        duration_ms: row.duration_ms,
        health: row.health,
        last_error: row.last_error,
        written_at: row.written_at,
    }
}

/// The database's clock in epoch milliseconds, as an SQL expression.
fn db_now(backend: DbBackend) -> &'static str {
    tandem_storage::db_now_sql(backend)
}

/// `sql` with `?` placeholders, numbered (`$1`, `$2` …) for PostgreSQL.
fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}
