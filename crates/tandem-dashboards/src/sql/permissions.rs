//! The sea-orm [`PermissionStore`], over the `content_permission` table, and the helpers
//! the dashboard writes call to keep the lists in step with the content.
//!
//! Replacing a list reads its folder or dashboard row `FOR UPDATE` first (SQLite's write
//! transaction already excludes other writers), so two replacements of one list queue and
//! the second one's list is what stays; deleting and inserting the items happen in the
//! same transaction, so a reader on any instance sees the old list or the new one.

use std::collections::HashSet;

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tandem_storage::now_ms;

use crate::permissions::{
    BasicRole, Level, MAX_PERMISSION_ITEMS, PermissionItem, PermissionStore, Principal, Resource,
    Subject, TeamId,
};
use crate::sql::entity::{content_permission as item, folder};
use crate::sql::{SqlDashboardStore, dashboard_by_uid, folder_by_uid};
use crate::{Error, FolderUid, OrgId, Result, UserId};

/// Items written per `INSERT`: ten bound parameters each.
const ITEMS_PER_INSERT: usize = 100;

#[async_trait::async_trait]
impl PermissionStore for SqlDashboardStore {
    async fn permissions(&self, org: OrgId, resource: &Resource) -> Result<Vec<PermissionItem>> {
        let rows = self
            .db
            .read(|conn| async move {
                if !exists(&conn, org, resource, false).await? {
                    return Ok(None);
                }
                item::Entity::find()
                    .filter(item::Column::OrgId.eq(org.0))
                    .filter(item::Column::Kind.eq(resource.kind()))
                    .filter(item::Column::Uid.eq(resource.uid()))
                    .order_by_asc(item::Column::Id)
                    .all(&conn)
                    .await
                    .map(Some)
            })
            .await?
            .ok_or_else(|| not_found(resource))?;
        let mut items: Vec<PermissionItem> = rows.into_iter().filter_map(to_item).collect();
        items.sort_by_key(|item| (principal_rank(&item.principal), item.id));
        Ok(items)
    }

    async fn set_permissions(
        &self,
        org: OrgId,
        resource: &Resource,
        items: &[(Principal, Level)],
    ) -> Result<()> {
        if items.len() > MAX_PERMISSION_ITEMS {
            return Err(Error::TooManyPermissions(MAX_PERMISSION_ITEMS));
        }
        let mut seen = HashSet::new();
        if !items.iter().all(|(principal, _)| seen.insert(*principal)) {
            return Err(Error::DuplicatePermission);
        }
        self.db
            .transaction(|tx| async move {
                if !exists(&*tx, org, resource, true).await? {
                    return Err(not_found(resource));
                }
                item::Entity::delete_many()
                    .filter(item::Column::OrgId.eq(org.0))
                    .filter(item::Column::Kind.eq(resource.kind()))
                    .filter(item::Column::Uid.eq(resource.uid()))
                    .exec(&*tx)
                    .await?;
                insert_items(&*tx, org, resource, items, now_ms()).await
            })
            .await
    }

    async fn granted(
        &self,
        org: OrgId,
        subject: &Subject,
        kind: &str,
        uids: Option<&[String]>,
    ) -> Result<Vec<(String, Level)>> {
        if uids.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> = self
            .db
            .read(|conn| async move {
                let mut select = item::Entity::find()
                    .select_only()
                    .column(item::Column::Uid)
                    .column_as(item::Column::Permission.max(), "permission")
                    .filter(item::Column::OrgId.eq(org.0))
                    .filter(item::Column::Kind.eq(kind))
                    .filter(matching(subject))
                    .group_by(item::Column::Uid);
                if let Some(uids) = uids {
                    select =
                        select.filter(item::Column::Uid.is_in(uids.iter().map(String::as_str)));
                }
                select.into_tuple().all(&conn).await
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(uid, code)| Level::from_code(code).map(|level| (uid, level)))
            .collect())
    }

    async fn folder_parents(&self, org: OrgId) -> Result<Vec<(FolderUid, Option<FolderUid>)>> {
        let rows: Vec<(String, Option<String>)> = self
            .db
            .read(|conn| async move {
                folder::Entity::find()
                    .select_only()
                    .column(folder::Column::Uid)
                    .column(folder::Column::ParentUid)
                    .filter(folder::Column::OrgId.eq(org.0))
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(uid, parent)| (FolderUid::from(uid), parent.map(FolderUid::from)))
            .collect())
    }

    async fn forget_principal(&self, org: Option<OrgId>, principal: &Principal) -> Result<u64> {
        let condition = match principal {
            Principal::User(user) => Condition::all().add(item::Column::UserId.eq(user.0)),
            Principal::Team(team) => Condition::all().add(item::Column::TeamId.eq(team.0)),
            Principal::Role(role) => Condition::all().add(item::Column::Role.eq(role.as_str())),
        };
        let condition = match org {
            Some(org) => condition.add(item::Column::OrgId.eq(org.0)),
            None => condition,
        };
        let condition = &condition;
        let deleted = self
            .db
            .transaction(|tx| async move {
                let result = item::Entity::delete_many()
                    .filter(condition.clone())
                    .exec(&*tx)
                    .await?;
                Ok::<_, Error>(result.rows_affected)
            })
            .await?;
        Ok(deleted)
    }
}

/// Writes Grafana's default items for new content: its creator (a user) is Admin, and at
/// the root the Viewer role views and the Editor role edits.
pub(crate) async fn write_defaults(
    conn: &impl ConnectionTrait,
    org: OrgId,
    resource: &Resource,
    at_root: bool,
    creator: UserId,
) -> Result<()> {
    let mut items = Vec::new();
    if creator.0 > 0 {
        items.push((Principal::User(creator), Level::Admin));
    }
    if at_root {
        items.push((Principal::Role(BasicRole::Editor), Level::Edit));
        items.push((Principal::Role(BasicRole::Viewer), Level::View));
    }
    insert_items(conn, org, resource, &items, now_ms()).await
}

/// Deletes the lists of deleted content.
pub(crate) async fn forget_resources(
    conn: &impl ConnectionTrait,
    org: OrgId,
    kind: &str,
    uids: &[String],
) -> Result<()> {
    for chunk in uids.chunks(500) {
        item::Entity::delete_many()
            .filter(item::Column::OrgId.eq(org.0))
            .filter(item::Column::Kind.eq(kind))
            .filter(item::Column::Uid.is_in(chunk.iter().map(String::as_str)))
            .exec(conn)
            .await?;
    }
    Ok(())
}

async fn insert_items(
    conn: &impl ConnectionTrait,
    org: OrgId,
    resource: &Resource,
    items: &[(Principal, Level)],
    now: i64,
) -> Result<()> {
    for chunk in items.chunks(ITEMS_PER_INSERT) {
        if chunk.is_empty() {
            continue;
        }
        let rows = chunk.iter().map(|(principal, level)| {
            let (user, team, role) = match principal {
                Principal::User(user) => (user.0, 0, ""),
                Principal::Team(team) => (0, team.0, ""),
                Principal::Role(role) => (0, 0, role.as_str()),
            };
            item::ActiveModel {
                id: ActiveValue::NotSet,
                org_id: ActiveValue::Set(org.0),
                kind: ActiveValue::Set(resource.kind().to_owned()),
                uid: ActiveValue::Set(resource.uid().to_owned()),
                user_id: ActiveValue::Set(user),
                team_id: ActiveValue::Set(team),
                role: ActiveValue::Set(role.to_owned()),
                permission: ActiveValue::Set(level.code()),
                created: ActiveValue::Set(now),
                updated: ActiveValue::Set(now),
            }
        });
        item::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

async fn exists(
    conn: &impl ConnectionTrait,
    org: OrgId,
    resource: &Resource,
    lock: bool,
) -> Result<bool, sea_orm::DbErr> {
    Ok(match resource {
        Resource::Folder(uid) => folder_by_uid(conn, org, uid.as_str(), lock)
            .await?
            .is_some(),
        Resource::Dashboard(uid) => dashboard_by_uid(conn, org, uid.as_str(), lock)
            .await?
            .is_some(),
    })
}

fn not_found(resource: &Resource) -> Error {
    match resource {
        Resource::Folder(_) => Error::FolderNotFound,
        Resource::Dashboard(_) => Error::DashboardNotFound,
    }
}

/// The items that apply to the subject: theirs, their teams', their roles'.
pub(crate) fn matching(subject: &Subject) -> Condition {
    let mut any = Condition::any();
    if subject.user.0 > 0 {
        any = any.add(item::Column::UserId.eq(subject.user.0));
    }
    if !subject.teams.is_empty() {
        any = any.add(item::Column::TeamId.is_in(subject.teams.iter().map(|team| team.0)));
    }
    let roles = subject.roles();
    if !roles.is_empty() {
        any = any.add(item::Column::Role.is_in(roles.iter().map(|role| role.as_str())));
    }
    if any.is_empty() {
        // Nothing can apply: a condition that is never true.
        return Condition::all().add(Expr::val(1).eq(0));
    }
    any
}

fn to_item(row: item::Model) -> Option<PermissionItem> {
    let principal = if row.user_id > 0 {
        Principal::User(UserId(row.user_id))
    } else if row.team_id > 0 {
        Principal::Team(TeamId(row.team_id))
    } else {
        Principal::Role(BasicRole::parse(&row.role)?)
    };
    Some(PermissionItem {
        id: row.id,
        principal,
        level: Level::from_code(row.permission)?,
        created: row.created,
        updated: row.updated,
    })
}

fn principal_rank(principal: &Principal) -> u8 {
    match principal {
        Principal::User(_) => 0,
        Principal::Team(_) => 1,
        Principal::Role(_) => 2,
    }
}
