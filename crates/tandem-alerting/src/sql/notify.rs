//! The sea-orm [`NotificationStore`]: raw statements over the tables of the notifications
//! migration, with times of claims and groups from the database's clock.

mod claims;
mod posted;
mod silence;

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};
use tandem_storage::{Database, Sealer, now_ms};

use crate::notify::contact::ContactPoint;
use crate::notify::contact::DEFAULT_RECEIVER;
use crate::notify::policy::{Route, default_tree};
use crate::notify::posted::{ExternalAlert, PostableAlert};
use crate::notify::silence::{PostableSilence, Silence};
use crate::notify::store::{
    Claim, ClaimStatus, DocumentKind, FlushPlan, GroupState, LogEntry, NamedDocument, NewGroup,
    NotificationStore,
};
use crate::sql::{db_now, placeholders};
use crate::{Error, OrgId, Provenance, Result};

/// The purpose contact point secrets are sealed for.
const SEAL_PURPOSE: &str = "alerting.contact_points";

/// [`NotificationStore`] over sea-orm, on the three backends.
#[derive(Clone)]
pub struct SqlNotificationStore {
    db: Database,
    sealer: Sealer,
}

impl std::fmt::Debug for SqlNotificationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlNotificationStore")
            .finish_non_exhaustive()
    }
}

impl SqlNotificationStore {
    /// A store in `db` (migrated), sealing secrets with a key derived from `secret_key`.
    pub fn new(db: Database, secret_key: &str) -> SqlNotificationStore {
        SqlNotificationStore {
            db,
            sealer: Sealer::new(secret_key, SEAL_PURPOSE),
        }
    }

    fn backend(&self) -> DbBackend {
        self.db.connection().get_database_backend()
    }

    fn stmt(&self, sql: &str, values: Vec<Value>) -> Statement {
        let backend = self.backend();
        Statement::from_sql_and_values(backend, placeholders(backend, sql), values)
    }

    fn now(&self) -> &'static str {
        db_now(self.backend())
    }

    async fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>> {
        let stmt = self.stmt(sql, values);
        Ok(self
            .db
            .read(|conn| {
                let stmt = stmt.clone();
                async move { conn.query_all_raw(stmt).await }
            })
            .await?)
    }

    async fn execute(&self, sql: &str, values: Vec<Value>) -> Result<u64> {
        let stmt = self.stmt(sql, values);
        self.db
            .transaction(|tx| {
                let stmt = stmt.clone();
                async move { Ok::<_, Error>(tx.execute_raw(stmt).await?.rows_affected()) }
            })
            .await
    }

    fn point_from_row(&self, row: &QueryResult) -> Result<ContactPoint> {
        let settings: String = row.try_get("", "settings")?;
        let sealed: String = row.try_get("", "secure_settings")?;
        let secure = if sealed.is_empty() {
            Default::default()
        } else {
            let opened = self
                .sealer
                .open(&sealed)
                .map_err(|err| Error::Corrupt(format!("secure_settings: {err}")))?;
            serde_json::from_slice(&opened)
                .map_err(|err| Error::Corrupt(format!("secure_settings: {err}")))?
        };
        Ok(ContactPoint {
            uid: row.try_get("", "uid")?,
            name: row.try_get("", "name")?,
            kind: row.try_get("", "kind")?,
            settings: serde_json::from_str(&settings)
                .map_err(|err| Error::Corrupt(format!("settings: {err}")))?,
            secure,
            disable_resolve_message: row.try_get("", "disable_resolve_message")?,
            provenance: Provenance::from_stored(&row.try_get::<String>("", "provenance")?),
            version: row.try_get("", "version")?,
        })
    }

    fn point_values(&self, org: OrgId, point: &ContactPoint) -> Result<Vec<Value>> {
        let secure = if point.secure.is_empty() {
            String::new()
        } else {
            let json =
                serde_json::to_vec(&point.secure).map_err(|err| Error::Corrupt(err.to_string()))?;
            self.sealer.seal(&json)
        };
        let settings = serde_json::to_string(&point.settings)
            .map_err(|err| Error::Corrupt(err.to_string()))?;
        Ok(vec![
            Value::from(point.name.clone()),
            Value::from(point.kind.clone()),
            Value::from(settings),
            Value::from(secure),
            Value::from(point.disable_resolve_message),
            Value::from(point.provenance.as_str()),
            Value::from(point.version),
            Value::from(now_ms()),
            Value::from(org.0),
            Value::from(point.uid.clone()),
        ])
    }

    fn claim_from_row(row: &QueryResult) -> Result<Claim> {
        let payload: String = row.try_get("", "payload")?;
        Ok(Claim {
            id: row.try_get("", "id")?,
            flush_key: row.try_get("", "flush_key")?,
            org_id: OrgId(row.try_get("", "org_id")?),
            integration_uid: row.try_get("", "integration_uid")?,
            receiver: row.try_get("", "receiver")?,
            payload: serde_json::from_str(&payload)
                .map_err(|err| Error::Corrupt(format!("payload: {err}")))?,
            token: row.try_get("", "token")?,
            attempts: i64::from(row.try_get::<i32>("", "attempts")?),
        })
    }
}

/// The uid of an org's default contact point.
fn default_uid(org: OrgId) -> String {
    format!("default-email-{}", org.0)
}

fn table(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::MuteTiming => "alert_mute_timing",
        DocumentKind::Template => "alert_notification_template",
    }
}

/// The deterministic key of one integration's notification of one flush.
pub(crate) fn flush_key(group_id: &str, epoch: i64, seq: i64, integration: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{group_id}\n{epoch}\n{seq}\n{integration}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const POINT_COLUMNS: &str =
    "uid, name, kind, settings, secure_settings, disable_resolve_message, provenance, version";
const CLAIM_COLUMNS: &str =
    "id, flush_key, org_id, integration_uid, receiver, payload, token, attempts";

/// How many flushes one transaction of [`NotificationStore::plan_flushes`] plans.
const FLUSH_BATCH: usize = 64;

/// The statements of one flush: the compare-and-swap on the group, its delete when the
/// group ends, and each notification's insert with the select of its claim.
#[derive(Clone)]
struct FlushStatements {
    advance: Statement,
    delete: Option<Statement>,
    inserts: Vec<(Statement, Statement)>,
}

impl SqlNotificationStore {
    fn flush_statements(&self, plan: &FlushPlan) -> Result<FlushStatements> {
        let now = self.now();
        let firing =
            serde_json::to_string(&plan.firing).map_err(|err| Error::Corrupt(err.to_string()))?;
        let advance = self.stmt(
            &format!("UPDATE alert_notification_group SET seq = seq + 1, next_due = {now} + ?, last_sent_at = {now}, sent_firing = ? WHERE group_id = ? AND epoch = ? AND seq = ? AND next_due <= {now}"),
            vec![Value::from(plan.group_interval_ms), Value::from(firing), Value::from(plan.group_id.clone()), Value::from(plan.epoch), Value::from(plan.seq)],
        );
        let delete = plan.ends.then(|| {
            self.stmt(
                "DELETE FROM alert_notification_group WHERE group_id = ? AND epoch = ?",
                vec![Value::from(plan.group_id.clone()), Value::from(plan.epoch)],
            )
        });
        let seq = plan.seq + 1;
        let mut inserts = Vec::new();
        for n in &plan.notifications {
            let key = flush_key(&plan.group_id, plan.epoch, seq, &n.integration_uid);
            let payload =
                serde_json::to_string(&n.payload).map_err(|err| Error::Corrupt(err.to_string()))?;
            let insert = self.stmt(
                &format!("INSERT INTO alert_notification_log (flush_key, org_id, group_id, seq, integration_uid, receiver, payload, status, holder, token, expires_at, attempts, created_at, sent_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, 1, {now} + ?, 0, {now}, NULL, '')"),
                vec![
                    Value::from(key.clone()),
                    Value::from(plan.org_id.0),
                    Value::from(plan.group_id.clone()),
                    Value::from(seq),
                    Value::from(n.integration_uid.clone()),
                    Value::from(plan.receiver.clone()),
                    Value::from(payload),
                    Value::from(plan.holder.clone()),
                    Value::from(plan.ttl_ms),
                ],
            );
            let select = self.stmt(
                &format!("SELECT {CLAIM_COLUMNS} FROM alert_notification_log WHERE flush_key = ?"),
                vec![Value::from(key)],
            );
            inserts.push((insert, select));
        }
        Ok(FlushStatements {
            advance,
            delete,
            inserts,
        })
    }

    /// Runs one flush's statements in `tx`: its claims, or `None` when the compare-and-swap
    /// lost (another instance planned it, or it is not due).
    async fn apply_flush(
        &self,
        tx: &impl ConnectionTrait,
        statements: FlushStatements,
    ) -> Result<Option<Vec<Claim>>> {
        if tx.execute_raw(statements.advance).await?.rows_affected() != 1 {
            return Ok(None);
        }
        if let Some(delete) = statements.delete {
            tx.execute_raw(delete).await?;
        }
        let mut claims = Vec::new();
        for (insert, select) in statements.inserts {
            tx.execute_raw(insert).await?;
            if let Some(row) = tx.query_one_raw(select).await? {
                claims.push(SqlNotificationStore::claim_from_row(&row)?);
            }
        }
        Ok(Some(claims))
    }
}

#[async_trait::async_trait]
impl NotificationStore for SqlNotificationStore {
    async fn ensure_defaults(&self, org: OrgId) -> Result<()> {
        let exists = self
            .query(
                "SELECT org_id FROM alert_notification_config WHERE org_id = ?",
                vec![Value::from(org.0)],
            )
            .await?;
        if !exists.is_empty() {
            return Ok(());
        }
        let tree = serde_json::to_string(&default_tree(DEFAULT_RECEIVER))
            .map_err(|err| Error::Corrupt(err.to_string()))?;
        let point = ContactPoint::default_point(default_uid(org));
        let point_values = self.point_values(org, &point)?;
        let insert_config = self.stmt(
            "INSERT INTO alert_notification_config (org_id, policy, provenance, version, updated) VALUES (?, ?, '', 1, ?)",
            vec![Value::from(org.0), Value::from(tree), Value::from(now_ms())],
        );
        let insert_point = self.stmt(
            "INSERT INTO alert_contact_point (name, kind, settings, secure_settings, disable_resolve_message, provenance, version, updated, org_id, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            point_values,
        );
        let outcome = self
            .db
            .transaction(|tx| {
                let (a, b) = (insert_config.clone(), insert_point.clone());
                async move {
                    tx.execute_raw(a).await?;
                    tx.execute_raw(b).await?;
                    Ok::<_, Error>(())
                }
            })
            .await;
        match outcome {
            Err(err) if err.is_unique_violation() => Ok(()),
            other => other,
        }
    }

    async fn contact_points(&self, org: OrgId) -> Result<Vec<ContactPoint>> {
        let configured = !self
            .query(
                "SELECT org_id FROM alert_notification_config WHERE org_id = ?",
                vec![Value::from(org.0)],
            )
            .await?
            .is_empty();
        if !configured {
            // Reads write nothing: an org not configured yet has Grafana's default, which
            // the first write stores.
            return Ok(vec![ContactPoint::default_point(default_uid(org))]);
        }
        let rows = self
            .query(
                &format!("SELECT {POINT_COLUMNS} FROM alert_contact_point WHERE org_id = ? ORDER BY name, uid"),
                vec![Value::from(org.0)],
            )
            .await?;
        rows.iter().map(|r| self.point_from_row(r)).collect()
    }

    async fn contact_point(&self, org: OrgId, uid: &str) -> Result<Option<ContactPoint>> {
        let rows = self
            .query(
                &format!(
                    "SELECT {POINT_COLUMNS} FROM alert_contact_point WHERE org_id = ? AND uid = ?"
                ),
                vec![Value::from(org.0), Value::from(uid)],
            )
            .await?;
        rows.first().map(|r| self.point_from_row(r)).transpose()
    }

    async fn create_contact_point(&self, org: OrgId, point: &ContactPoint) -> Result<()> {
        let values = self.point_values(org, point)?;
        match self
            .execute(
                "INSERT INTO alert_contact_point (name, kind, settings, secure_settings, disable_resolve_message, provenance, version, updated, org_id, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            .await
        {
            Err(err) if err.is_unique_violation() => Err(Error::NotificationConflict(
                "a contact point with this uid already exists".to_owned(),
            )),
            other => other.map(|_| ()),
        }
    }

    async fn update_contact_point(
        &self,
        org: OrgId,
        point: &ContactPoint,
        rename_from: Option<&str>,
    ) -> Result<()> {
        let mut values = self.point_values(org, point)?;
        values.push(Value::from(point.version - 1));
        let update = self.stmt(
            "UPDATE alert_contact_point SET name = ?, kind = ?, settings = ?, secure_settings = ?, disable_resolve_message = ?, provenance = ?, version = ?, updated = ? WHERE org_id = ? AND uid = ? AND version = ?",
            values,
        );
        let rename = match rename_from {
            Some(from) if from != point.name => {
                let (mut tree, provenance) = self.policy(org).await?;
                tree.rename_receiver(from, &point.name);
                let json =
                    serde_json::to_string(&tree).map_err(|err| Error::Corrupt(err.to_string()))?;
                Some(self.stmt(
                    "UPDATE alert_notification_config SET policy = ?, provenance = ?, version = version + 1, updated = ? WHERE org_id = ?",
                    vec![Value::from(json), Value::from(provenance.as_str()), Value::from(now_ms()), Value::from(org.0)],
                ))
            }
            _ => None,
        };
        self.db
            .transaction(|tx| {
                let (update, rename) = (update.clone(), rename.clone());
                async move {
                    if tx.execute_raw(update).await?.rows_affected() != 1 {
                        return Err(Error::VersionMismatch);
                    }
                    if let Some(rename) = rename {
                        tx.execute_raw(rename).await?;
                    }
                    Ok::<_, Error>(())
                }
            })
            .await
    }

    async fn delete_contact_point(&self, org: OrgId, uid: &str) -> Result<bool> {
        Ok(self
            .execute(
                "DELETE FROM alert_contact_point WHERE org_id = ? AND uid = ?",
                vec![Value::from(org.0), Value::from(uid)],
            )
            .await?
            > 0)
    }

    async fn policy(&self, org: OrgId) -> Result<(Route, Provenance)> {
        let rows = self
            .query(
                "SELECT policy, provenance FROM alert_notification_config WHERE org_id = ?",
                vec![Value::from(org.0)],
            )
            .await?;
        match rows.first() {
            None => Ok((default_tree(DEFAULT_RECEIVER), Provenance::None)),
            Some(row) => {
                let text: String = row.try_get("", "policy")?;
                let provenance: String = row.try_get("", "provenance")?;
                Ok((
                    serde_json::from_str(&text)
                        .map_err(|err| Error::Corrupt(format!("policy: {err}")))?,
                    Provenance::from_stored(&provenance),
                ))
            }
        }
    }

    async fn set_policy(&self, org: OrgId, tree: &Route, provenance: Provenance) -> Result<()> {
        self.ensure_defaults(org).await?;
        let json = serde_json::to_string(tree).map_err(|err| Error::Corrupt(err.to_string()))?;
        self.execute(
            "UPDATE alert_notification_config SET policy = ?, provenance = ?, version = version + 1, updated = ? WHERE org_id = ?",
            vec![Value::from(json), Value::from(provenance.as_str()), Value::from(now_ms()), Value::from(org.0)],
        )
        .await?;
        Ok(())
    }

    async fn documents(&self, org: OrgId, kind: DocumentKind) -> Result<Vec<NamedDocument>> {
        let rows = self
            .query(
                &format!(
                    "SELECT name, body, provenance, version FROM {} WHERE org_id = ? ORDER BY name",
                    table(kind)
                ),
                vec![Value::from(org.0)],
            )
            .await?;
        rows.iter().map(document_from_row).collect()
    }

    async fn document(
        &self,
        org: OrgId,
        kind: DocumentKind,
        name: &str,
    ) -> Result<Option<NamedDocument>> {
        let rows = self
            .query(
                &format!(
                    "SELECT name, body, provenance, version FROM {} WHERE org_id = ? AND name = ?",
                    table(kind)
                ),
                vec![Value::from(org.0), Value::from(name)],
            )
            .await?;
        rows.first().map(document_from_row).transpose()
    }

    async fn put_document(
        &self,
        org: OrgId,
        kind: DocumentKind,
        document: &NamedDocument,
        create: bool,
    ) -> Result<NamedDocument> {
        let body =
            serde_json::to_string(&document.body).map_err(|err| Error::Corrupt(err.to_string()))?;
        let update = self.stmt(
            &format!("UPDATE {} SET body = ?, provenance = ?, version = version + 1, updated = ? WHERE org_id = ? AND name = ?", table(kind)),
            vec![Value::from(body.clone()), Value::from(document.provenance.as_str()), Value::from(now_ms()), Value::from(org.0), Value::from(document.name.clone())],
        );
        let insert = self.stmt(
            &format!("INSERT INTO {} (org_id, name, body, provenance, version, updated) VALUES (?, ?, ?, ?, 1, ?)", table(kind)),
            vec![Value::from(org.0), Value::from(document.name.clone()), Value::from(body), Value::from(document.provenance.as_str()), Value::from(now_ms())],
        );
        let outcome = self
            .db
            .transaction(|tx| {
                let (update, insert) = (update.clone(), insert.clone());
                async move {
                    if !create && tx.execute_raw(update).await?.rows_affected() == 1 {
                        return Ok::<_, Error>(());
                    }
                    tx.execute_raw(insert).await?;
                    Ok(())
                }
            })
            .await;
        match outcome {
            Err(err) if err.is_unique_violation() => {
                return Err(Error::NotificationConflict(format!(
                    "a {} with this name already exists",
                    match kind {
                        DocumentKind::MuteTiming => "mute timing",
                        DocumentKind::Template => "template",
                    }
                )));
            }
            other => other?,
        }
        self.document(org, kind, &document.name)
            .await?
            .ok_or_else(|| Error::Corrupt("a written document vanished".to_owned()))
    }

    async fn delete_document(&self, org: OrgId, kind: DocumentKind, name: &str) -> Result<bool> {
        Ok(self
            .execute(
                &format!("DELETE FROM {} WHERE org_id = ? AND name = ?", table(kind)),
                vec![Value::from(org.0), Value::from(name)],
            )
            .await?
            > 0)
    }

    async fn groups(&self) -> Result<(i64, Vec<GroupState>)> {
        let now = self.now();
        let rows = self
            .query(&format!("SELECT {now} AS db_now"), vec![])
            .await?;
        let db_time: i64 = match rows.first() {
            Some(row) => row.try_get("", "db_now")?,
            None => now_ms(),
        };
        let rows = self
            .query(
                "SELECT group_id, org_id, receiver, group_key, epoch, seq, next_due, last_sent_at, sent_firing FROM alert_notification_group",
                vec![],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let firing: String = row.try_get("", "sent_firing")?;
            out.push(GroupState {
                group_id: row.try_get("", "group_id")?,
                org_id: OrgId(row.try_get("", "org_id")?),
                receiver: row.try_get("", "receiver")?,
                group_key: row.try_get("", "group_key")?,
                epoch: row.try_get("", "epoch")?,
                seq: row.try_get("", "seq")?,
                next_due: row.try_get("", "next_due")?,
                last_sent_at: row.try_get("", "last_sent_at")?,
                sent_firing: serde_json::from_str(&firing)
                    .map_err(|err| Error::Corrupt(format!("sent_firing: {err}")))?,
            });
        }
        Ok((db_time, out))
    }

    async fn create_group(&self, group: &NewGroup) -> Result<bool> {
        let now = self.now();
        let epoch = i64::from(rand::random::<u32>() >> 1);
        match self
            .execute(
                &format!("INSERT INTO alert_notification_group (group_id, org_id, receiver, group_key, epoch, seq, next_due, last_sent_at, sent_firing, created_at) VALUES (?, ?, ?, ?, ?, 0, {now} + ?, 0, '[]', {now})"),
                vec![
                    Value::from(group.group_id.clone()),
                    Value::from(group.org_id.0),
                    Value::from(group.receiver.clone()),
                    Value::from(group.group_key.clone()),
                    Value::from(epoch),
                    Value::from(group.group_wait_ms),
                ],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if err.is_unique_violation() => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn create_groups(&self, groups: &[NewGroup]) -> Result<()> {
        let now = self.now();
        let columns = "(group_id, org_id, receiver, group_key, epoch, seq, next_due, last_sent_at, sent_firing, created_at)";
        let values = format!("VALUES (?, ?, ?, ?, ?, 0, {now} + ?, 0, '[]', {now})");
        // Inserted unless present, so a group another instance just created is no error.
        let sql = match self.backend() {
            DbBackend::Postgres => format!(
                "INSERT INTO alert_notification_group {columns} {values} ON CONFLICT (group_id) DO NOTHING"
            ),
            DbBackend::MySql => {
                format!("INSERT IGNORE INTO alert_notification_group {columns} {values}")
            }
            _ => format!("INSERT OR IGNORE INTO alert_notification_group {columns} {values}"),
        };
        for chunk in groups.chunks(FLUSH_BATCH) {
            let statements: Vec<Statement> = chunk
                .iter()
                .map(|group| {
                    self.stmt(
                        &sql,
                        vec![
                            Value::from(group.group_id.clone()),
                            Value::from(group.org_id.0),
                            Value::from(group.receiver.clone()),
                            Value::from(group.group_key.clone()),
                            Value::from(i64::from(rand::random::<u32>() >> 1)),
                            Value::from(group.group_wait_ms),
                        ],
                    )
                })
                .collect();
            self.db
                .transaction(|tx| {
                    let statements = statements.clone();
                    async move {
                        for statement in statements {
                            tx.execute_raw(statement).await?;
                        }
                        Ok::<_, Error>(())
                    }
                })
                .await?;
        }
        Ok(())
    }

    async fn plan_flush(&self, plan: &FlushPlan) -> Result<Option<Vec<Claim>>> {
        let statements = self.flush_statements(plan)?;
        let outcome = self
            .db
            .transaction(|tx| {
                let statements = statements.clone();
                async move { self.apply_flush(&*tx, statements).await }
            })
            .await;
        match outcome {
            Err(err) if err.is_unique_violation() => Ok(None),
            other => other,
        }
    }

    async fn plan_flushes(&self, plans: &[FlushPlan]) -> Result<Vec<Claim>> {
        let mut claims = Vec::new();
        for chunk in plans.chunks(FLUSH_BATCH) {
            let statements = chunk
                .iter()
                .map(|p| self.flush_statements(p))
                .collect::<Result<Vec<_>>>()?;
            let outcome = self
                .db
                .transaction(|tx| {
                    let statements = statements.clone();
                    async move {
                        let mut won = Vec::new();
                        for s in statements {
                            if let Some(c) = self.apply_flush(&*tx, s).await? {
                                won.extend(c);
                            }
                        }
                        Ok::<_, Error>(won)
                    }
                })
                .await;
            match outcome {
                Ok(won) => claims.extend(won),
                // Another planner raced one of them: plan the batch one by one.
                Err(err) if err.is_unique_violation() => {
                    for plan in chunk {
                        if let Some(won) = self.plan_flush(plan).await? {
                            claims.extend(won);
                        }
                    }
                }
                Err(err) => return Err(err),
            }
        }
        Ok(claims)
    }

    async fn take_over(&self, holder: &str, ttl_ms: i64, limit: u64) -> Result<Vec<Claim>> {
        self.take_over_sql(holder, ttl_ms, limit).await
    }

    async fn renew_claim(&self, id: i64, token: i64, ttl_ms: i64) -> Result<bool> {
        self.renew_claim_sql(id, token, ttl_ms).await
    }

    async fn renew_claims(
        &self,
        holder: &str,
        ids: &[i64],
        ttl_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        self.renew_claims_sql(holder, ids, ttl_ms).await
    }

    async fn record_attempt(
        &self,
        id: i64,
        token: i64,
        attempts: i64,
        error: &str,
    ) -> Result<bool> {
        self.record_attempt_sql(id, token, attempts, error).await
    }

    async fn finish_claim(
        &self,
        id: i64,
        token: i64,
        status: ClaimStatus,
        attempts: i64,
        error: &str,
    ) -> Result<bool> {
        self.finish_claim_sql(id, token, status, attempts, error)
            .await
    }

    async fn notification_log(&self, org: OrgId) -> Result<Vec<LogEntry>> {
        let rows = self
            .query(
                "SELECT flush_key, group_id, seq, integration_uid, status, holder, token, attempts, last_error FROM alert_notification_log WHERE org_id = ? ORDER BY id",
                vec![Value::from(org.0)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LogEntry {
                    flush_key: row.try_get("", "flush_key")?,
                    group_id: row.try_get("", "group_id")?,
                    seq: row.try_get("", "seq")?,
                    integration_uid: row.try_get("", "integration_uid")?,
                    status: row.try_get("", "status")?,
                    holder: row.try_get("", "holder")?,
                    token: row.try_get("", "token")?,
                    attempts: i64::from(row.try_get::<i32>("", "attempts")?),
                    last_error: row.try_get("", "last_error")?,
                })
            })
            .collect()
    }

    async fn purge_log(&self, age_ms: i64) -> Result<u64> {
        let now = self.now();
        self.execute(
            &format!("DELETE FROM alert_notification_log WHERE status <> 'pending' AND created_at < {now} - ?"),
            vec![Value::from(age_ms)],
        )
        .await
    }

    async fn set_silence(&self, org: OrgId, silence: &PostableSilence) -> Result<String> {
        self.set_silence_sql(org, silence).await
    }

    async fn silence(&self, org: OrgId, id: &str) -> Result<Option<Silence>> {
        self.silence_sql(org, id).await
    }

    async fn silences(&self, org: OrgId) -> Result<Vec<Silence>> {
        self.silences_sql(org).await
    }

    async fn expire_silence(&self, org: OrgId, id: &str) -> Result<()> {
        self.expire_silence_sql(org, id).await
    }

    async fn active_silences(&self) -> Result<Vec<Silence>> {
        self.active_silences_sql().await
    }

    async fn purge_silences(&self, age_ms: i64) -> Result<u64> {
        let now = self.now();
        self.execute(
            &format!("DELETE FROM alert_silence WHERE ends_at < {now} - ?"),
            vec![Value::from(age_ms)],
        )
        .await
    }

    async fn post_alerts(&self, org: OrgId, alerts: &[PostableAlert]) -> Result<()> {
        self.post_alerts_sql(org, alerts).await
    }

    async fn external_alerts(&self, org: Option<OrgId>) -> Result<(i64, Vec<ExternalAlert>)> {
        self.external_alerts_sql(org).await
    }

    async fn purge_external_alerts(&self, age_ms: i64) -> Result<u64> {
        self.purge_external_alerts_sql(age_ms).await
    }
}

fn document_from_row(row: &QueryResult) -> Result<NamedDocument> {
    let body: String = row.try_get("", "body")?;
    let provenance: String = row.try_get("", "provenance")?;
    Ok(NamedDocument {
        name: row.try_get("", "name")?,
        body: serde_json::from_str(&body).map_err(|err| Error::Corrupt(format!("body: {err}")))?,
        provenance: Provenance::from_stored(&provenance),
        version: row.try_get("", "version")?,
    })
}
