//! Rules and their versions.

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tandem_storage::now_ms;

use crate::sql::entity::{alert_instance, alert_rule, alert_rule_status, alert_rule_version};
use crate::sql::{SqlAlertStore, rule_document, rule_from_document, rule_from_row, to_json};
use crate::store::{
    GroupChanges, GroupWriter, NewRule, ReplaceGroup, RuleFilter, RulesFingerprint, UpdateRule,
};
use crate::{
    AlertRule, Error, FolderUid, OrgId, Provenance, Result, RuleSpec, RuleUid, RuleVersion,
    generate_uid,
};

/// The columns of a rule row, for an insert or a whole-row update.
fn active(rule: &AlertRule) -> Result<alert_rule::ActiveModel> {
    let spec = &rule.spec;
    Ok(alert_rule::ActiveModel {
        id: ActiveValue::NotSet,
        org_id: ActiveValue::Set(rule.org_id.0),
        uid: ActiveValue::Set(rule.uid.as_str().to_owned()),
        title: ActiveValue::Set(spec.title.clone()),
        folder_uid: ActiveValue::Set(rule.folder_uid.as_str().to_owned()),
        rule_group: ActiveValue::Set(rule.rule_group.clone()),
        rule_group_idx: ActiveValue::Set(i32::try_from(rule.group_index).unwrap_or(i32::MAX)),
        condition_ref: ActiveValue::Set(spec.condition.clone()),
        data: ActiveValue::Set(to_json(&spec.data)?),
        interval_seconds: ActiveValue::Set(rule.interval_seconds),
        version: ActiveValue::Set(rule.version),
        no_data_state: ActiveValue::Set(spec.no_data_state.as_str().to_owned()),
        exec_err_state: ActiveValue::Set(spec.exec_err_state.as_str().to_owned()),
        for_ms: ActiveValue::Set(spec.for_ms),
        keep_firing_for_ms: ActiveValue::Set(spec.keep_firing_for_ms),
        missing_series_evals: ActiveValue::Set(
            spec.missing_series_evals
                .map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        ),
        labels: ActiveValue::Set(to_json(&spec.labels)?),
        annotations: ActiveValue::Set(to_json(&spec.annotations)?),
        is_paused: ActiveValue::Set(spec.is_paused),
        provenance: ActiveValue::Set(rule.provenance.as_str().to_owned()),
        updated: ActiveValue::Set(rule.updated),
    })
}

async fn insert_rule<C: ConnectionTrait>(conn: &C, rule: &mut AlertRule) -> Result<()> {
    let row = active(rule)?.insert(conn).await?;
    rule.id = row.id;
    insert_version(conn, rule).await
}

async fn insert_version<C: ConnectionTrait>(conn: &C, rule: &AlertRule) -> Result<()> {
    alert_rule_version::ActiveModel {
        id: ActiveValue::NotSet,
        org_id: ActiveValue::Set(rule.org_id.0),
        rule_uid: ActiveValue::Set(rule.uid.as_str().to_owned()),
        version: ActiveValue::Set(rule.version),
        rule: ActiveValue::Set(rule_document(rule)?),
        created: ActiveValue::Set(rule.updated),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The compare-and-swap: writes `next` (whose version is one more than `stored`'s) only
/// where the row still has `stored`'s version, and its version row.
async fn swap_rule<C: ConnectionTrait>(
    conn: &C,
    stored: &AlertRule,
    next: &AlertRule,
) -> Result<()> {
    let mut row = active(next)?;
    row.id = ActiveValue::NotSet;
    let result = alert_rule::Entity::update_many()
        .set(row)
        .filter(alert_rule::Column::Id.eq(stored.id))
        .filter(alert_rule::Column::Version.eq(stored.version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Err(Error::VersionMismatch);
    }
    insert_version(conn, next).await
}

async fn find_rule<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    uid: &str,
    lock: bool,
) -> Result<Option<AlertRule>> {
    let mut query = alert_rule::Entity::find()
        .filter(alert_rule::Column::OrgId.eq(org.0))
        .filter(alert_rule::Column::Uid.eq(uid));
    if lock {
        query = query.lock_exclusive();
    }
    query.one(conn).await?.map(rule_from_row).transpose()
}

async fn group_rules<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    folder: &str,
    group: &str,
    lock: bool,
) -> Result<Vec<AlertRule>> {
    let mut query = alert_rule::Entity::find()
        .filter(alert_rule::Column::OrgId.eq(org.0))
        .filter(alert_rule::Column::FolderUid.eq(folder))
        .filter(alert_rule::Column::RuleGroup.eq(group))
        .order_by_asc(alert_rule::Column::RuleGroupIdx)
        .order_by_asc(alert_rule::Column::Id);
    if lock {
        query = query.lock_exclusive();
    }
    query
        .all(conn)
        .await?
        .into_iter()
        .map(rule_from_row)
        .collect()
}

/// Whether another rule of the folder has this title.
async fn title_taken<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    folder: &str,
    title: &str,
    except: &[&str],
) -> Result<bool> {
    let rows = alert_rule::Entity::find()
        .select_only()
        .column(alert_rule::Column::Uid)
        .filter(alert_rule::Column::OrgId.eq(org.0))
        .filter(alert_rule::Column::FolderUid.eq(folder))
        .filter(alert_rule::Column::Title.eq(title))
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(rows.iter().any(|uid| !except.contains(&uid.as_str())))
}

/// Deletes rules with their versions, instances and statuses.
async fn delete_rules<C: ConnectionTrait>(conn: &C, org: OrgId, uids: &[String]) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    for chunk in uids.chunks(500) {
        alert_rule::Entity::delete_many()
            .filter(alert_rule::Column::OrgId.eq(org.0))
            .filter(alert_rule::Column::Uid.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
        alert_rule_version::Entity::delete_many()
            .filter(alert_rule_version::Column::OrgId.eq(org.0))
            .filter(alert_rule_version::Column::RuleUid.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
        alert_instance::Entity::delete_many()
            .filter(alert_instance::Column::OrgId.eq(org.0))
            .filter(alert_instance::Column::RuleUid.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
        alert_rule_status::Entity::delete_many()
            .filter(alert_rule_status::Column::OrgId.eq(org.0))
            .filter(alert_rule_status::Column::RuleUid.is_in(chunk.iter().cloned()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// The interval of an existing group, if it has rules.
async fn group_interval<C: ConnectionTrait>(
    conn: &C,
    org: OrgId,
    folder: &str,
    group: &str,
) -> Result<Option<(i64, i64)>> {
    let rules = group_rules(conn, org, folder, group, false).await?;
    Ok(rules.first().map(|first| {
        let next_index = rules.iter().map(|r| r.group_index).max().unwrap_or(0) + 1;
        (first.interval_seconds, next_index)
    }))
}

pub(super) async fn create(store: &SqlAlertStore, new: NewRule) -> Result<AlertRule> {
    let uid = new
        .uid
        .clone()
        .unwrap_or_else(|| RuleUid::from(generate_uid()));
    let (new, uid) = (&new, &uid);
    store
        .write(|tx| async move {
            if find_rule(&*tx, new.org_id, uid.as_str(), false)
                .await?
                .is_some()
            {
                return Err(Error::UidTaken);
            }
            if title_taken(
                &*tx,
                new.org_id,
                new.folder_uid.as_str(),
                &new.spec.title,
                &[],
            )
            .await?
            {
                return Err(Error::TitleTaken);
            }
            let (interval, index) =
                group_interval(&*tx, new.org_id, new.folder_uid.as_str(), &new.rule_group)
                    .await?
                    .unwrap_or((new.default_interval_seconds, 1));
            let mut rule = AlertRule {
                id: 0,
                org_id: new.org_id,
                uid: uid.clone(),
                folder_uid: new.folder_uid.clone(),
                rule_group: new.rule_group.clone(),
                group_index: index,
                interval_seconds: interval,
                version: 1,
                provenance: new.provenance,
                updated: now_ms(),
                spec: new.spec.clone(),
            };
            insert_rule(&*tx, &mut rule).await?;
            Ok(rule)
        })
        .await
}

pub(super) async fn get(
    store: &SqlAlertStore,
    org: OrgId,
    uid: &RuleUid,
) -> Result<Option<AlertRule>> {
    let uid = uid.as_str();
    let row = store
        .db
        .read(|conn| async move {
            alert_rule::Entity::find()
                .filter(alert_rule::Column::OrgId.eq(org.0))
                .filter(alert_rule::Column::Uid.eq(uid))
                .one(&conn)
                .await
        })
        .await?;
    row.map(rule_from_row).transpose()
}

pub(super) async fn list(store: &SqlAlertStore, filter: RuleFilter) -> Result<Vec<AlertRule>> {
    let filter = &filter;
    let rows = store
        .db
        .read(|conn| async move {
            let mut query = alert_rule::Entity::find();
            if let Some(org) = filter.org_id {
                query = query.filter(alert_rule::Column::OrgId.eq(org.0));
            }
            if let Some(folder) = &filter.folder_uid {
                query = query.filter(alert_rule::Column::FolderUid.eq(folder.as_str()));
            }
            if let Some(group) = &filter.rule_group {
                query = query.filter(alert_rule::Column::RuleGroup.eq(group.as_str()));
            }
            query
                .order_by_asc(alert_rule::Column::OrgId)
                .order_by_asc(alert_rule::Column::FolderUid)
                .order_by_asc(alert_rule::Column::RuleGroup)
                .order_by_asc(alert_rule::Column::RuleGroupIdx)
                .order_by_asc(alert_rule::Column::Id)
                .all(&conn)
                .await
        })
        .await?;
    rows.into_iter().map(rule_from_row).collect()
}

pub(super) async fn update(store: &SqlAlertStore, update: UpdateRule) -> Result<AlertRule> {
    let update = &update;
    store
        .write(|tx| async move {
            let stored = find_rule(&*tx, update.org_id, update.uid.as_str(), true)
                .await?
                .ok_or(Error::RuleNotFound)?;
            if stored.provenance != update.provenance && stored.provenance != Provenance::None {
                return Err(Error::ProvenanceChange {
                    stored: stored.provenance.as_str(),
                    provided: update.provenance.as_str(),
                });
            }
            if update.expected_version.is_some_and(|v| v != stored.version) {
                return Err(Error::VersionMismatch);
            }
            let moved =
                stored.folder_uid != update.folder_uid || stored.rule_group != update.rule_group;
            if stored.spec == update.spec && !moved && stored.provenance == update.provenance {
                return Ok(stored);
            }
            if title_taken(
                &*tx,
                update.org_id,
                update.folder_uid.as_str(),
                &update.spec.title,
                &[update.uid.as_str()],
            )
            .await?
            {
                return Err(Error::TitleTaken);
            }
            let (interval, index) = if moved {
                group_interval(
                    &*tx,
                    update.org_id,
                    update.folder_uid.as_str(),
                    &update.rule_group,
                )
                .await?
                .unwrap_or((update.default_interval_seconds, 1))
            } else {
                (stored.interval_seconds, stored.group_index)
            };
            let next = AlertRule {
                folder_uid: update.folder_uid.clone(),
                rule_group: update.rule_group.clone(),
                group_index: index,
                interval_seconds: interval,
                version: stored.version + 1,
                provenance: update.provenance,
                updated: now_ms(),
                spec: update.spec.clone(),
                ..stored.clone()
            };
            swap_rule(&*tx, &stored, &next).await?;
            Ok(next)
        })
        .await
}

pub(super) async fn delete(
    store: &SqlAlertStore,
    org: OrgId,
    uid: &RuleUid,
    provenance: Provenance,
) -> Result<Option<AlertRule>> {
    store
        .write(|tx| async move {
            let Some(stored) = find_rule(&*tx, org, uid.as_str(), true).await? else {
                return Ok(None);
            };
            if stored.provenance != provenance && stored.provenance != Provenance::None {
                return Err(Error::ProvenanceMismatch {
                    operation: "delete",
                    provided: provenance.as_str(),
                    stored: stored.provenance.as_str(),
                });
            }
            delete_rules(&*tx, org, &[uid.as_str().to_owned()]).await?;
            Ok(Some(stored))
        })
        .await
}

fn group_key(org: OrgId, folder: &FolderUid, group: &str) -> String {
    format!(
        "{{orgID: {}, namespaceUID: {}, groupName: {group}}}",
        org.0,
        folder.as_str()
    )
}

/// Refuses a change of `stored` by `writer`.
fn check_writer(writer: GroupWriter, stored: &AlertRule, operation: &'static str) -> Result<()> {
    match writer {
        GroupWriter::Ruler if stored.provenance != Provenance::None => {
            Err(Error::ProvisionedGroup(group_key(
                stored.org_id,
                &stored.folder_uid,
                &stored.rule_group,
            )))
        }
        GroupWriter::Provisioning(provided) if !stored.provenance.allows(provided) => {
            Err(Error::ProvenanceMismatch {
                operation,
                provided: provided.as_str(),
                stored: stored.provenance.as_str(),
            })
        }
        _ => Ok(()),
    }
}

pub(super) async fn replace_group(
    store: &SqlAlertStore,
    group: ReplaceGroup,
) -> Result<GroupChanges> {
    // Uids for new rules are chosen once, so a retried transaction uses the same ones.
    let planned: Option<Vec<(RuleUid, RuleSpec, bool)>> = group.rules.as_ref().map(|rules| {
        rules
            .iter()
            .map(|r| match &r.uid {
                Some(uid) => (uid.clone(), r.spec.clone(), true),
                None => (RuleUid::from(generate_uid()), r.spec.clone(), false),
            })
            .collect()
    });
    let (group, planned) = (&group, &planned);
    store
        .write(|tx| async move {
            let org = group.org_id;
            let existing =
                group_rules(&*tx, org, group.folder_uid.as_str(), &group.title, true).await?;
            let provenance = match group.writer {
                GroupWriter::Provisioning(p) => p,
                GroupWriter::Ruler => Provenance::None,
            };
            let now = now_ms();
            let mut changes = GroupChanges::default();
            let Some(planned) = planned else {
                // Only the interval changes.
                if existing.is_empty() {
                    return Err(Error::GroupNotFound);
                }
                for stored in &existing {
                    if stored.interval_seconds == group.interval_seconds {
                        continue;
                    }
                    check_writer(group.writer, stored, "update")?;
                    let next = AlertRule {
                        interval_seconds: group.interval_seconds,
                        version: stored.version + 1,
                        updated: now,
                        ..stored.clone()
                    };
                    swap_rule(&*tx, stored, &next).await?;
                    changes.updated.push(stored.uid.clone());
                }
                return Ok(changes);
            };
            let mut titles = HashSet::new();
            for (_, spec, _) in planned {
                if !titles.insert(spec.title.as_str()) {
                    return Err(Error::TitleTaken);
                }
            }
            let listed: HashSet<&str> = planned.iter().map(|(uid, _, _)| uid.as_str()).collect();
            let by_uid: HashMap<&str, &AlertRule> =
                existing.iter().map(|r| (r.uid.as_str(), r)).collect();
            // Deletions first: they free titles for the rules that follow.
            let mut deleted = Vec::new();
            for stored in existing.iter().filter(|r| !listed.contains(r.uid.as_str())) {
                check_writer(group.writer, stored, "delete")?;
                deleted.push(stored.uid.as_str().to_owned());
                changes.deleted.push(stored.uid.clone());
            }
            delete_rules(&*tx, org, &deleted).await?;
            for (position, (uid, spec, _given)) in planned.iter().enumerate() {
                let index = i64::try_from(position)
                    .unwrap_or(i64::MAX)
                    .saturating_add(1);
                let stored = match by_uid.get(uid.as_str()) {
                    Some(stored) => Some((*stored).clone()),
                    // A rule of another group moves into this one.
                    None => find_rule(&*tx, org, uid.as_str(), true).await?,
                };
                let except: Vec<&str> = planned.iter().map(|(u, _, _)| u.as_str()).collect();
                if title_taken(&*tx, org, group.folder_uid.as_str(), &spec.title, &except).await? {
                    return Err(Error::TitleTaken);
                }
                match stored {
                    Some(stored) => {
                        check_writer(group.writer, &stored, "update")?;
                        let provenance = match group.writer {
                            GroupWriter::Ruler => stored.provenance,
                            GroupWriter::Provisioning(p) => p,
                        };
                        let unchanged = stored.spec == *spec
                            && stored.folder_uid == group.folder_uid
                            && stored.rule_group == group.title
                            && stored.interval_seconds == group.interval_seconds
                            && stored.group_index == index
                            && stored.provenance == provenance;
                        if unchanged {
                            continue;
                        }
                        let next = AlertRule {
                            folder_uid: group.folder_uid.clone(),
                            rule_group: group.title.clone(),
                            group_index: index,
                            interval_seconds: group.interval_seconds,
                            version: stored.version + 1,
                            provenance,
                            updated: now,
                            spec: spec.clone(),
                            ..stored.clone()
                        };
                        swap_rule(&*tx, &stored, &next).await?;
                        changes.updated.push(uid.clone());
                    }
                    None => {
                        let mut rule = AlertRule {
                            id: 0,
                            org_id: org,
                            uid: uid.clone(),
                            folder_uid: group.folder_uid.clone(),
                            rule_group: group.title.clone(),
                            group_index: index,
                            interval_seconds: group.interval_seconds,
                            version: 1,
                            provenance,
                            updated: now,
                            spec: spec.clone(),
                        };
                        insert_rule(&*tx, &mut rule).await?;
                        changes.created.push(uid.clone());
                    }
                }
            }
            Ok(changes)
        })
        .await
}

pub(super) async fn delete_group(
    store: &SqlAlertStore,
    org: OrgId,
    folder: &FolderUid,
    group: &str,
    writer: GroupWriter,
) -> Result<Vec<RuleUid>> {
    store
        .write(|tx| async move {
            let rules = group_rules(&*tx, org, folder.as_str(), group, true).await?;
            if rules.is_empty() {
                return Err(Error::GroupNotFound);
            }
            for rule in &rules {
                check_writer(writer, rule, "delete")?;
            }
            let uids: Vec<String> = rules.iter().map(|r| r.uid.as_str().to_owned()).collect();
            delete_rules(&*tx, org, &uids).await?;
            Ok(rules.into_iter().map(|r| r.uid).collect())
        })
        .await
}

pub(super) async fn versions(
    store: &SqlAlertStore,
    org: OrgId,
    uid: &RuleUid,
) -> Result<Vec<RuleVersion>> {
    let uid = uid.as_str();
    let rows = store
        .db
        .read(|conn| async move {
            alert_rule_version::Entity::find()
                .filter(alert_rule_version::Column::OrgId.eq(org.0))
                .filter(alert_rule_version::Column::RuleUid.eq(uid))
                .order_by_desc(alert_rule_version::Column::Version)
                .all(&conn)
                .await
        })
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(RuleVersion {
                version: row.version,
                created: row.created,
                rule: rule_from_document(row.version, &row.rule)?,
            })
        })
        .collect()
}

pub(super) async fn fingerprint(store: &SqlAlertStore) -> Result<RulesFingerprint> {
    let backend = store.backend();
    let int = match backend {
        sea_orm::DbBackend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    let sql = format!(
        "SELECT CAST(COUNT(*) AS {int}) AS n, CAST(COALESCE(SUM(version), 0) AS {int}) AS v, \
         CAST(COALESCE(MAX(id), 0) AS {int}) AS m FROM alert_rule"
    );
    let row = store
        .db
        .read(|conn| {
            let sql = sql.clone();
            async move {
                conn.query_one_raw(Statement::from_string(backend, sql))
                    .await
            }
        })
        .await?;
    let Some(row) = row else {
        return Ok(RulesFingerprint::default());
    };
    Ok(RulesFingerprint {
        count: row.try_get("", "n")?,
        version_sum: row.try_get("", "v")?,
        max_id: row.try_get("", "m")?,
    })
}
