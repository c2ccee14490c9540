//! Alert instances and rule statuses.

use sea_orm::{ActiveModelTrait, ActiveValue, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use tandem_storage::now_ms;

use crate::history::{self, StateChange};
use crate::sql::entity::{alert_instance, alert_rule_status};
use crate::sql::{
    SqlAlertStore, history as history_rows, instance_from_row, status_from_row, to_json,
};
use crate::store::InstanceWrite;
use crate::{AlertInstance, Error, OrgId, Result, RuleStatus, RuleUid};

fn instance_row(instance: &AlertInstance) -> Result<alert_instance::ActiveModel> {
    Ok(alert_instance::ActiveModel {
        org_id: ActiveValue::Set(instance.org_id.0),
        rule_uid: ActiveValue::Set(instance.rule_uid.as_str().to_owned()),
        labels_hash: ActiveValue::Set(instance.fingerprint.clone()),
        labels: ActiveValue::Set(to_json(&instance.labels)?),
        state: ActiveValue::Set(instance.state.as_str().to_owned()),
        reason: ActiveValue::Set(instance.reason.chars().take(64).collect()),
        started_at: ActiveValue::Set(instance.started_at),
        ends_at: ActiveValue::Set(instance.ends_at),
        last_slot: ActiveValue::Set(instance.last_slot),
        last_eval_at: ActiveValue::Set(instance.last_eval_at),
        eval_values: ActiveValue::Set(to_json(&instance.values)?),
        annotations: ActiveValue::Set(to_json(&instance.annotations)?),
        error: ActiveValue::Set(instance.error.chars().take(4_000).collect()),
        resolved_at: ActiveValue::Set(instance.resolved_at),
        last_sent_at: ActiveValue::Set(instance.last_sent_at),
        missing_evals: ActiveValue::Set(i32::try_from(instance.missing_evals).unwrap_or(i32::MAX)),
        written_at: ActiveValue::Set(instance.written_at),
    })
}

pub(super) async fn load_instances(
    store: &SqlAlertStore,
    org: OrgId,
    rules: &[RuleUid],
) -> Result<Vec<AlertInstance>> {
    let mut out = Vec::new();
    for chunk in rules.chunks(500) {
        let uids: Vec<String> = chunk.iter().map(|r| r.as_str().to_owned()).collect();
        let uids = &uids;
        let rows = store
            .db
            .read(|conn| async move {
                alert_instance::Entity::find()
                    .filter(alert_instance::Column::OrgId.eq(org.0))
                    .filter(alert_instance::Column::RuleUid.is_in(uids.iter().cloned()))
                    .all(&conn)
                    .await
            })
            .await?;
        for row in rows {
            out.push(instance_from_row(row)?);
        }
    }
    Ok(out)
}

pub(super) async fn list_instances(
    store: &SqlAlertStore,
    org: Option<OrgId>,
) -> Result<Vec<AlertInstance>> {
    let rows = store
        .db
        .read(|conn| async move {
            let mut query = alert_instance::Entity::find();
            if let Some(org) = org {
                query = query.filter(alert_instance::Column::OrgId.eq(org.0));
            }
            query
                .order_by_asc(alert_instance::Column::OrgId)
                .order_by_asc(alert_instance::Column::RuleUid)
                .order_by_asc(alert_instance::Column::LabelsHash)
                .all(&conn)
                .await
        })
        .await?;
    rows.into_iter().map(instance_from_row).collect()
}

pub(super) async fn write_instances(store: &SqlAlertStore, write: InstanceWrite) -> Result<bool> {
    if write.upserts.is_empty() && write.deletes.is_empty() {
        return Ok(true);
    }
    let changes: Vec<StateChange> = match &write.history {
        Some(rule) => write
            .upserts
            .iter()
            .filter_map(|i| history::change(rule, write.expected.get(&i.fingerprint), i))
            .collect(),
        None => Vec::new(),
    };
    let (write, changes) = (&write, &changes);
    let outcome = store
        .db
        .transaction(|tx| async move {
            let org = write.org_id.0;
            let rule = write.rule_uid.as_str();
            for instance in &write.upserts {
                let row = instance_row(instance)?;
                let expected = write.expected.get(&instance.fingerprint);
                if expected.is_some() || write.history.is_none() {
                    let mut update = alert_instance::Entity::update_many()
                        .set(row.clone())
                        .filter(alert_instance::Column::OrgId.eq(org))
                        .filter(alert_instance::Column::RuleUid.eq(rule))
                        .filter(
                            alert_instance::Column::LabelsHash.eq(instance.fingerprint.as_str()),
                        )
                        .filter(alert_instance::Column::LastSlot.lt(write.slot));
                    if let Some((state, reason)) = expected {
                        let reason: String = reason.chars().take(64).collect();
                        update = update
                            .filter(alert_instance::Column::State.eq(state.as_str()))
                            .filter(alert_instance::Column::Reason.eq(reason));
                    }
                    let updated = update.exec(&*tx).await?;
                    if updated.rows_affected == 1 {
                        continue;
                    }
                    if expected.is_some() {
                        // Written since the evaluation read it (a newer slot, another
                        // state), or gone: this evaluation's view is stale.
                        return Err(Error::VersionMismatch);
                    }
                    let exists = alert_instance::Entity::find()
                        .filter(alert_instance::Column::OrgId.eq(org))
                        .filter(alert_instance::Column::RuleUid.eq(rule))
                        .filter(
                            alert_instance::Column::LabelsHash.eq(instance.fingerprint.as_str()),
                        )
                        .one(&*tx)
                        .await?
                        .is_some();
                    if exists {
                        // A newer (or the same) slot is stored: this evaluation is late.
                        return Err(Error::VersionMismatch);
                    }
                }
                // A new instance: another evaluator that created it first wins on the
                // primary key.
                match row.insert(&*tx).await {
                    Ok(_) => {}
                    Err(err) if tandem_storage::Error::from(err.clone()).is_unique_violation() => {
                        return Err(Error::VersionMismatch);
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            for fingerprint in &write.deletes {
                alert_instance::Entity::delete_many()
                    .filter(alert_instance::Column::OrgId.eq(org))
                    .filter(alert_instance::Column::RuleUid.eq(rule))
                    .filter(alert_instance::Column::LabelsHash.eq(fingerprint.as_str()))
                    .filter(alert_instance::Column::LastSlot.lt(write.slot))
                    .exec(&*tx)
                    .await?;
            }
            if let (Some(rule), false) = (&write.history, changes.is_empty()) {
                let dashboard = history_rows::dashboard_id(&*tx, write.org_id, rule).await?;
                history_rows::insert(&*tx, write.org_id, rule, dashboard, changes, now_ms())
                    .await?;
            }
            Ok::<_, Error>(true)
        })
        .await;
    match outcome {
        Err(Error::VersionMismatch) => Ok(false),
        Err(err) if err.is_unique_violation() => Ok(false),
        other => other,
    }
}

pub(super) async fn mark_sent(
    store: &SqlAlertStore,
    org: OrgId,
    rule: &RuleUid,
    fingerprint: &str,
    at: i64,
) -> Result<()> {
    store
        .db
        .transaction(|tx| async move {
            alert_instance::Entity::update_many()
                .col_expr(
                    alert_instance::Column::LastSentAt,
                    sea_orm::sea_query::Expr::value(at),
                )
                .filter(alert_instance::Column::OrgId.eq(org.0))
                .filter(alert_instance::Column::RuleUid.eq(rule.as_str()))
                .filter(alert_instance::Column::LabelsHash.eq(fingerprint))
                .exec(&*tx)
                .await?;
            Ok::<_, Error>(())
        })
        .await
}

pub(super) async fn write_status(store: &SqlAlertStore, status: RuleStatus) -> Result<bool> {
    let status = &status;
    let outcome = store
        .db
        .transaction(|tx| async move {
            let row = alert_rule_status::ActiveModel {
                org_id: ActiveValue::Set(status.org_id.0),
                rule_uid: ActiveValue::Set(status.rule_uid.as_str().to_owned()),
                last_slot: ActiveValue::Set(status.last_slot),
                duration_ms: ActiveValue::Set(status.duration_ms),
                health: ActiveValue::Set(status.health.clone()),
                last_error: ActiveValue::Set(status.last_error.chars().take(4_000).collect()),
                written_at: ActiveValue::Set(status.written_at),
            };
            let updated = alert_rule_status::Entity::update_many()
                .set(row.clone())
                .filter(alert_rule_status::Column::OrgId.eq(status.org_id.0))
                .filter(alert_rule_status::Column::RuleUid.eq(status.rule_uid.as_str()))
                .filter(alert_rule_status::Column::LastSlot.lt(status.last_slot))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 1 {
                return Ok(true);
            }
            let exists = alert_rule_status::Entity::find()
                .filter(alert_rule_status::Column::OrgId.eq(status.org_id.0))
                .filter(alert_rule_status::Column::RuleUid.eq(status.rule_uid.as_str()))
                .one(&*tx)
                .await?
                .is_some();
            if exists {
                return Ok(false);
            }
            row.insert(&*tx).await?;
            Ok::<_, Error>(true)
        })
        .await;
    match outcome {
        Err(err) if err.is_unique_violation() => Ok(false),
        other => other,
    }
}

pub(super) async fn list_statuses(store: &SqlAlertStore, org: OrgId) -> Result<Vec<RuleStatus>> {
    let rows = store
        .db
        .read(|conn| async move {
            alert_rule_status::Entity::find()
                .filter(alert_rule_status::Column::OrgId.eq(org.0))
                .all(&conn)
                .await
        })
        .await?;
    Ok(rows.into_iter().map(status_from_row).collect())
}
