//! The sea-orm [`DashboardStore`], over the tables of the dashboards migration.
//!
//! Every write is one transaction ([`Database::transaction`], retried on busy and deadlock
//! errors); a closure may run more than once, so each reads the clock itself and touches
//! nothing but the database. The row being changed is read `FOR UPDATE` (SQLite's write
//! transaction already excludes other writers), so concurrent saves of one dashboard queue
//! on its row and each sees the version the previous one wrote; the `UPDATE … WHERE
//! version = ?` that follows is the compare-and-swap itself. Two creations of the same uid
//! meet on the unique index: the loser runs again from the start and then sees the winner's
//! row. The schema has no foreign keys: the store deletes dependent rows itself, in the
//! same transaction as their dashboard.

mod annotations;
mod entity;
mod folders;
mod ids;
mod library;
mod permissions;
mod search;
mod snapshots;

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};
use tandem_storage::input::MAX_OFFSET;
use tandem_storage::{Database, first_row, from_ms, now_ms};

use crate::sql::entity::{
    dashboard, dashboard_provisioning, dashboard_tag, dashboard_version, folder, star,
};
use crate::{
    CreateFolder, Dashboard, DashboardId, DashboardStore, DashboardUid, DashboardVersion,
    DeletedDashboard, DeletedFolder, Error, Folder, FolderId, FolderRef, FolderSummary, FolderUid,
    MAX_MESSAGE_LEN, MAX_TITLE_LEN, MoveFolder, OrgId, ProvisionDashboard, ProvisionOutcome,
    ProvisionedDashboard, Provisioning, Resource, Result, SaveDashboard, SearchHit, SearchQuery,
    SourceCheck, TagCount, UpdateFolder, UserId, Version, VersionInfo, VersionPage, VersionQuery,
    slugify, validate_uid,
};

/// Grafana's limit on folder nesting (`folder.MaxNestedFolderDepth`).
pub(crate) const MAX_FOLDER_DEPTH: usize = 4;
/// The most tags a dashboard can carry.
pub(crate) const MAX_TAGS: usize = 1000;
/// Tags written per `INSERT`: three bound parameters each.
const TAGS_PER_INSERT: usize = 500;
/// The longest tag stored (the column's width).
const MAX_TAG_LEN: usize = 190;
/// How many times a write that lost a race on a unique index runs again.
const UNIQUE_RETRIES: u32 = 3;

/// [`DashboardStore`] over sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, migrated by
/// `tandem-migrations`.
#[derive(Clone, Debug)]
pub struct SqlDashboardStore {
    db: Database,
}

impl SqlDashboardStore {
    /// A store in `db`, whose schema must be migrated.
    pub fn new(db: Database) -> SqlDashboardStore {
        SqlDashboardStore { db }
    }

    /// Runs a write transaction, and runs it again from the start when it lost a race on a
    /// unique index (a concurrent creation of the same uid): the next run sees the row the
    /// winner committed and decides again.
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
                        "dashboard write lost a race on a unique key, retrying"
                    );
                }
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl DashboardStore for SqlDashboardStore {
    async fn save_dashboard(&self, save: SaveDashboard) -> Result<Dashboard> {
        let prepared = Prepared::new(&save)?;
        let prepared = &prepared;
        self.write(|tx| async move {
            let dashboard = save_in(&*tx, prepared).await?;
            Ok(dashboard)
        })
        .await
    }

    async fn get_dashboard(&self, org: OrgId, uid: &DashboardUid) -> Result<Option<Dashboard>> {
        let uid = uid.as_str();
        let dashboard = self
            .db
            .read(|conn| async move {
                let row = dashboard::Entity::find()
                    .filter(dashboard::Column::OrgId.eq(org.0))
                    .filter(dashboard::Column::Uid.eq(uid))
                    .one(&conn)
                    .await?;
                match row {
                    Some(row) => Ok(Some(load_dashboard(&conn, row).await?)),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(dashboard)
    }

    async fn get_dashboard_by_id(&self, org: OrgId, id: DashboardId) -> Result<Option<Dashboard>> {
        let dashboard = self
            .db
            .read(|conn| async move {
                let row = dashboard::Entity::find()
                    .filter(dashboard::Column::OrgId.eq(org.0))
                    .filter(dashboard::Column::Id.eq(id.0))
                    .one(&conn)
                    .await?;
                match row {
                    Some(row) => Ok(Some(load_dashboard(&conn, row).await?)),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(dashboard)
    }

    async fn delete_dashboard(&self, org: OrgId, uid: &DashboardUid) -> Result<DeletedDashboard> {
        self.write(|tx| async move {
            let row = dashboard_by_uid(&*tx, org, uid.as_str(), true)
                .await?
                .ok_or(Error::DashboardNotFound)?;
            if provisioning_of(&*tx, row.id, false).await?.is_some() {
                return Err(Error::ProvisionedDashboardDelete);
            }
            delete_dashboard_rows(&*tx, org, &[&row]).await?;
            Ok(deleted(&row))
        })
        .await
    }

    async fn list_versions(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        query: VersionQuery,
    ) -> Result<VersionPage> {
        // Clamped into what a statement binds (`i64`).
        let limit = Ord::min(
            if query.limit == 0 { 1000 } else { query.limit },
            MAX_OFFSET - 1,
        );
        let start = Ord::min(query.start, MAX_OFFSET);
        // The token is the last version of the previous page; versions only grow and
        // retention only removes old ones, so "older than it" stays the right next page.
        let before = match query.continue_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(
                token
                    .parse::<i64>()
                    .map_err(|_| Error::InvalidInput("invalid continue token".to_owned()))?,
            ),
            None => None,
        };
        let uid = uid.as_str();
        let (dashboard_uid, rows) = self
            .db
            .read(|conn| async move {
                let Some(row) = dashboard_by_uid(&conn, org, uid, false).await? else {
                    return Ok(None);
                };
                let mut select = dashboard_version::Entity::find()
                    .select_only()
                    .columns(VERSION_INFO_COLUMNS)
                    .filter(dashboard_version::Column::DashboardId.eq(row.id));
                if let Some(before) = before {
                    select = select.filter(dashboard_version::Column::Version.lt(before));
                } else if start > 0 {
                    select = select.offset(start);
                }
                let rows = select
                    .order_by_desc(dashboard_version::Column::Version)
                    .limit(limit.saturating_add(1))
                    .into_tuple::<VersionInfoRow>()
                    .all(&conn)
                    .await?;
                Ok(Some((row.uid, rows)))
            })
            .await?
            .ok_or(Error::DashboardNotFound)?;
        let more = rows.len() as u64 > limit;
        let versions: Vec<VersionInfo> = rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|row| to_version_info(row, &dashboard_uid))
            .collect();
        let continue_token = if more {
            versions.last().map(|v| v.version.0.to_string())
        } else {
            None
        };
        Ok(VersionPage {
            versions,
            continue_token,
        })
    }

    async fn get_version(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
    ) -> Result<DashboardVersion> {
        let uid = uid.as_str();
        let found = self
            .db
            .read(|conn| async move {
                let Some(row) = dashboard_by_uid(&conn, org, uid, false).await? else {
                    return Ok(None);
                };
                let found = dashboard_version::Entity::find()
                    .filter(dashboard_version::Column::DashboardId.eq(row.id))
                    .filter(dashboard_version::Column::Version.eq(version.0))
                    .one(&conn)
                    .await?;
                Ok(Some((row.uid, found)))
            })
            .await?;
        let (dashboard_uid, found) = found.ok_or(Error::DashboardNotFound)?;
        let row = found.ok_or(Error::VersionNotFound)?;
        Ok(to_version(row, &dashboard_uid))
    }

    async fn restore_version(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
        user: UserId,
    ) -> Result<Dashboard> {
        self.write(|tx| async move {
            let current = dashboard_by_uid(&*tx, org, uid.as_str(), true)
                .await?
                .ok_or(Error::DashboardNotFound)?;
            let old = dashboard_version::Entity::find()
                .filter(dashboard_version::Column::DashboardId.eq(current.id))
                .filter(dashboard_version::Column::Version.eq(version.0))
                .one(&*tx)
                .await?
                .ok_or(Error::VersionNotFound)?;
            let mut data = parse_object(&old.data);
            data.insert("id".to_owned(), Value::from(current.id));
            data.insert("uid".to_owned(), Value::from(current.uid.clone()));
            data.insert("version".to_owned(), Value::from(current.version));
            let save = SaveDashboard {
                org_id: org,
                dashboard: Value::Object(data),
                folder: match &current.folder_uid {
                    Some(folder) => FolderRef::Uid(FolderUid::from(folder.as_str())),
                    None => FolderRef::Root,
                },
                overwrite: false,
                message: format!("Restored from version {}", version.0),
                user_id: user,
            };
            let mut prepared = Prepared::new(&save)?;
            prepared.restored_from = Some(version.0);
            save_in(&*tx, &prepared).await
        })
        .await
    }

    async fn trim_versions(&self, versions_to_keep: u32) -> Result<u64> {
        let keep = u64::from(Ord::max(versions_to_keep, 1));
        let over: Vec<i64> = self
            .db
            .read(|conn| async move {
                dashboard_version::Entity::find()
                    .select_only()
                    .column(dashboard_version::Column::DashboardId)
                    .group_by(dashboard_version::Column::DashboardId)
                    .having(Expr::col(dashboard_version::Column::Id).count().gt(keep))
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        let mut deleted = 0;
        // One small transaction per dashboard: retention never holds many rows locked, and
        // running it twice at once (it should not, it is a cluster job) deletes nothing twice.
        for dashboard_id in over {
            deleted += self
                .db
                .transaction(|tx| async move {
                    let cutoff: Option<i64> = dashboard_version::Entity::find()
                        .select_only()
                        .column(dashboard_version::Column::Version)
                        .filter(dashboard_version::Column::DashboardId.eq(dashboard_id))
                        .order_by_desc(dashboard_version::Column::Version)
                        .offset(keep - 1)
                        .limit(1)
                        .into_tuple()
                        .one(&*tx)
                        .await?;
                    let Some(cutoff) = cutoff else {
                        return Ok::<u64, Error>(0);
                    };
                    let result = dashboard_version::Entity::delete_many()
                        .filter(dashboard_version::Column::DashboardId.eq(dashboard_id))
                        .filter(dashboard_version::Column::Version.lt(cutoff))
                        .exec(&*tx)
                        .await?;
                    Ok(result.rows_affected)
                })
                .await?;
        }
        Ok(deleted)
    }

    async fn tags(&self, org: OrgId) -> Result<Vec<TagCount>> {
        let rows: Vec<(String, i64)> = self
            .db
            .read(|conn| async move {
                dashboard_tag::Entity::find()
                    .select_only()
                    .column(dashboard_tag::Column::Term)
                    .column_as(dashboard_tag::Column::Id.count(), "count")
                    .filter(dashboard_tag::Column::OrgId.eq(org.0))
                    .group_by(dashboard_tag::Column::Term)
                    .order_by_asc(dashboard_tag::Column::Term)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(term, count)| TagCount {
                term,
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect())
    }

    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        query.check()?;
        let query = &query;
        let hits = self
            .db
            .read(|conn| async move { search::search(&conn, query).await })
            .await?;
        Ok(hits)
    }

    async fn star(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<()> {
        self.write(|tx| async move {
            let row = dashboard_by_uid(&*tx, org, uid.as_str(), false)
                .await?
                .ok_or(Error::DashboardNotFound)?;
            let starred = star::Entity::find()
                .filter(star::Column::UserId.eq(user.0))
                .filter(star::Column::DashboardId.eq(row.id))
                .one(&*tx)
                .await?
                .is_some();
            if !starred {
                star::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(org.0),
                    user_id: ActiveValue::Set(user.0),
                    dashboard_id: ActiveValue::Set(row.id),
                    created: ActiveValue::Set(now_ms()),
                }
                .insert(&*tx)
                .await?;
            }
            Ok(())
        })
        .await
    }

    async fn unstar(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool> {
        self.write(|tx| async move {
            let row = dashboard_by_uid(&*tx, org, uid.as_str(), false)
                .await?
                .ok_or(Error::DashboardNotFound)?;
            let result = star::Entity::delete_many()
                .filter(star::Column::UserId.eq(user.0))
                .filter(star::Column::DashboardId.eq(row.id))
                .exec(&*tx)
                .await?;
            Ok(result.rows_affected > 0)
        })
        .await
    }

    async fn is_starred(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool> {
        let uid = uid.as_str();
        let starred = self
            .db
            .read(|conn| async move {
                let Some(row) = dashboard_by_uid(&conn, org, uid, false).await? else {
                    return Ok(false);
                };
                Ok(star::Entity::find()
                    .filter(star::Column::UserId.eq(user.0))
                    .filter(star::Column::DashboardId.eq(row.id))
                    .one(&conn)
                    .await?
                    .is_some())
            })
            .await?;
        Ok(starred)
    }

    async fn starred(&self, user: UserId, org: OrgId) -> Result<Vec<DashboardUid>> {
        let uids: Vec<String> = self
            .db
            .read(|conn| async move {
                dashboard::Entity::find()
                    .select_only()
                    .column(dashboard::Column::Uid)
                    .filter(dashboard::Column::OrgId.eq(org.0))
                    .filter(
                        dashboard::Column::Id.in_subquery(
                            sea_orm::sea_query::Query::select()
                                .column(star::Column::DashboardId)
                                .from(star::Entity)
                                .and_where(Expr::col(star::Column::UserId).eq(user.0))
                                .to_owned(),
                        ),
                    )
                    .order_by_asc(dashboard::Column::Uid)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(uids.into_iter().map(DashboardUid::from).collect())
    }

    async fn create_folder(&self, create: CreateFolder) -> Result<Folder> {
        let title = check_folder_title(&create.title)?;
        let given = create
            .uid
            .as_ref()
            .map(|uid| uid.as_str().trim())
            .filter(|uid| !uid.is_empty());
        if let Some(uid) = given {
            validate_uid(uid)?;
        }
        let parent = create
            .parent_uid
            .as_ref()
            .map(|uid| uid.as_str().trim())
            .filter(|uid| !uid.is_empty());
        // A generated uid is drawn once, outside the transaction, so that a retried run
        // inserts the same folder rather than a second one.
        let uid = given.map_or_else(crate::generate_uid, str::to_owned);
        let (uid, title, create) = (uid.as_str(), title.as_str(), &create);
        self.write(|tx| async move {
            if let Some(parent) = parent {
                let depth = folder_depth(&*tx, create.org_id, parent).await?;
                if depth >= MAX_FOLDER_DEPTH {
                    return Err(Error::FolderTooDeep(MAX_FOLDER_DEPTH));
                }
            }
            if folder_by_uid(&*tx, create.org_id, uid, false)
                .await?
                .is_some()
                || dashboard_by_uid(&*tx, create.org_id, uid, false)
                    .await?
                    .is_some()
            {
                return Err(Error::FolderUidTaken);
            }
            let now = now_ms();
            let row = folder::ActiveModel {
                id: ActiveValue::Set(ids::next_content_id(&*tx).await?),
                org_id: ActiveValue::Set(create.org_id.0),
                uid: ActiveValue::Set(uid.to_owned()),
                title: ActiveValue::Set(title.to_owned()),
                title_lower: ActiveValue::Set(lower(title)),
                parent_uid: ActiveValue::Set(parent.map(str::to_owned)),
                version: ActiveValue::Set(1),
                created: ActiveValue::Set(now),
                updated: ActiveValue::Set(now),
                created_by: ActiveValue::Set(create.user_id.0),
                updated_by: ActiveValue::Set(create.user_id.0),
            }
            .insert(&*tx)
            .await?;
            permissions::write_defaults(
                &*tx,
                create.org_id,
                &Resource::Folder(FolderUid::from(uid)),
                parent.is_none(),
                create.user_id,
            )
            .await?;
            Ok(to_folder(row))
        })
        .await
        .map_err(|err| {
            // Lost the race for the uid every time: it is taken.
            if err.is_unique_violation() {
                Error::FolderUidTaken
            } else {
                err
            }
        })
    }

    async fn get_folder(&self, org: OrgId, uid: &FolderUid) -> Result<Option<Folder>> {
        let uid = uid.as_str();
        let row = self
            .db
            .read(|conn| async move { folder_by_uid(&conn, org, uid, false).await })
            .await?;
        Ok(row.map(to_folder))
    }

    async fn get_folder_by_id(&self, org: OrgId, id: FolderId) -> Result<Option<Folder>> {
        let row = self
            .db
            .read(|conn| async move {
                folder::Entity::find()
                    .filter(folder::Column::OrgId.eq(org.0))
                    .filter(folder::Column::Id.eq(id.0))
                    .one(&conn)
                    .await
            })
            .await?;
        Ok(row.map(to_folder))
    }

    async fn list_folders(&self, org: OrgId, parent: Option<&FolderUid>) -> Result<Vec<Folder>> {
        let parent = parent.map(FolderUid::as_str);
        let rows = self
            .db
            .read(|conn| async move {
                folder::Entity::find()
                    .filter(folder::Column::OrgId.eq(org.0))
                    .filter(folder::Column::ParentUid.eq(parent))
                    .order_by_asc(folder::Column::TitleLower)
                    .order_by_asc(folder::Column::Title)
                    .order_by_asc(folder::Column::Id)
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows.into_iter().map(to_folder).collect())
    }

    async fn update_folder(&self, update: UpdateFolder) -> Result<Folder> {
        let title = update
            .title
            .as_deref()
            .map(check_folder_title)
            .transpose()?;
        let (title, update) = (title.as_deref(), &update);
        self.write(|tx| async move {
            let row = folder_by_uid(&*tx, update.org_id, update.uid.as_str(), true)
                .await?
                .ok_or(Error::FolderNotFound)?;
            if !update.overwrite && update.version != Some(Version(row.version)) {
                return Err(Error::FolderVersionMismatch);
            }
            let title = title.unwrap_or(&row.title).to_owned();
            let now = now_ms();
            let result = folder::Entity::update_many()
                .col_expr(folder::Column::Title, Expr::value(title.clone()))
                .col_expr(folder::Column::TitleLower, Expr::value(lower(&title)))
                .col_expr(folder::Column::Version, Expr::value(row.version + 1))
                .col_expr(folder::Column::Updated, Expr::value(now))
                .col_expr(folder::Column::UpdatedBy, Expr::value(update.user_id.0))
                .filter(folder::Column::Id.eq(row.id))
                .filter(folder::Column::Version.eq(row.version))
                .exec(&*tx)
                .await?;
            if result.rows_affected == 0 {
                return Err(Error::FolderVersionMismatch);
            }
            Ok(Folder {
                title,
                version: Version(row.version + 1),
                updated: from_ms(now),
                updated_by: update.user_id,
                ..to_folder(row)
            })
        })
        .await
    }

    async fn move_folder(&self, request: MoveFolder) -> Result<Folder> {
        let request = &request;
        self.write(|tx| async move { folders::move_in(&*tx, request).await })
            .await
    }

    async fn delete_folder(&self, org: OrgId, uid: &FolderUid) -> Result<DeletedFolder> {
        self.write(|tx| async move {
            let root = folder_by_uid(&*tx, org, uid.as_str(), true)
                .await?
                .ok_or(Error::FolderNotFound)?;
            // Every folder below it, level by level.
            let mut all = vec![root.uid.clone()];
            let mut level = vec![root.uid.clone()];
            while !level.is_empty() {
                let children: Vec<String> = folder::Entity::find()
                    .select_only()
                    .column(folder::Column::Uid)
                    .filter(folder::Column::OrgId.eq(org.0))
                    .filter(folder::Column::ParentUid.is_in(level.clone()))
                    .into_tuple()
                    .all(&*tx)
                    .await?;
                all.extend(children.iter().cloned());
                level = children;
            }
            library::delete_folder_elements(&*tx, org, &all).await?;
            let dashboards = dashboard::Entity::find()
                .filter(dashboard::Column::OrgId.eq(org.0))
                .filter(dashboard::Column::FolderUid.is_in(all.clone()))
                .order_by_asc(dashboard::Column::Id)
                .lock_exclusive()
                .all(&*tx)
                .await?;
            delete_dashboard_rows(&*tx, org, &dashboards.iter().collect::<Vec<_>>()).await?;
            permissions::forget_resources(&*tx, org, "folder", &all).await?;
            folder::Entity::delete_many()
                .filter(folder::Column::OrgId.eq(org.0))
                .filter(folder::Column::Uid.is_in(all.clone()))
                .exec(&*tx)
                .await?;
            Ok(DeletedFolder {
                folder: to_folder(root),
                subfolders: all.into_iter().skip(1).map(FolderUid::from).collect(),
                dashboards: dashboards.iter().map(deleted).collect(),
            })
        })
        .await
    }

    async fn provision_dashboard(&self, provision: ProvisionDashboard) -> Result<ProvisionOutcome> {
        let save = SaveDashboard {
            org_id: provision.org_id,
            dashboard: provision.dashboard.clone(),
            folder: provision
                .folder_uid
                .clone()
                .map_or(FolderRef::Root, FolderRef::Uid),
            overwrite: true,
            message: String::new(),
            user_id: UserId::SYSTEM,
        };
        let mut prepared = Prepared::new(&save)?;
        // The file's uid decides which dashboard it is; its id (if any) is another
        // instance's or another database's and means nothing here.
        prepared.id = None;
        if prepared.uid.is_none() {
            return Err(Error::InvalidDashboard(
                "a provisioned dashboard needs a uid".to_owned(),
            ));
        }
        let (prepared, provision) = (&prepared, &provision);
        self.write(|tx| async move { provision_in(&*tx, prepared, provision).await })
            .await
    }

    async fn provisioned_dashboards(
        &self,
        org: OrgId,
        provider: &str,
    ) -> Result<Vec<ProvisionedDashboard>> {
        let rows = self
            .db
            .read(|conn| async move {
                let records = dashboard_provisioning::Entity::find()
                    .filter(dashboard_provisioning::Column::OrgId.eq(org.0))
                    .filter(dashboard_provisioning::Column::Name.eq(provider))
                    .order_by_asc(dashboard_provisioning::Column::Id)
                    .all(&conn)
                    .await?;
                let ids: Vec<i64> = records.iter().map(|r| r.dashboard_id).collect();
                let uids: HashMap<i64, String> = dashboard::Entity::find()
                    .select_only()
                    .column(dashboard::Column::Id)
                    .column(dashboard::Column::Uid)
                    .filter(dashboard::Column::Id.is_in(ids))
                    .into_tuple::<(i64, String)>()
                    .all(&conn)
                    .await?
                    .into_iter()
                    .collect();
                Ok(records
                    .into_iter()
                    .filter_map(|record| {
                        let uid = uids.get(&record.dashboard_id)?.clone();
                        Some(ProvisionedDashboard {
                            dashboard_id: DashboardId(record.dashboard_id),
                            uid: DashboardUid::from(uid),
                            provisioning: to_provisioning(record),
                        })
                    })
                    .collect())
            })
            .await?;
        Ok(rows)
    }

    async fn remove_provisioned(
        &self,
        org: OrgId,
        provider: &str,
        external_id: &str,
        delete: bool,
        still_gone: SourceCheck,
    ) -> Result<Option<DeletedDashboard>> {
        let still_gone = &still_gone;
        self.write(|tx| async move {
            let record = dashboard_provisioning::Entity::find()
                .filter(dashboard_provisioning::Column::OrgId.eq(org.0))
                .filter(dashboard_provisioning::Column::Name.eq(provider))
                .filter(dashboard_provisioning::Column::ExternalId.eq(external_id))
                .lock_exclusive()
                .one(&*tx)
                .await?;
            let Some(record) = record else {
                return Ok(None);
            };
            if !still_gone.holds() {
                return Ok(None);
            }
            if !delete {
                dashboard_provisioning::Entity::delete_by_id(record.id)
                    .exec(&*tx)
                    .await?;
                return Ok(None);
            }
            let row = dashboard::Entity::find_by_id(record.dashboard_id)
                .lock_exclusive()
                .one(&*tx)
                .await?;
            if let Some(row) = &row {
                delete_dashboard_rows(&*tx, org, &[row]).await?;
            }
            Ok(row.as_ref().map(deleted))
        })
        .await
    }
}

// ---- saving

/// A save's input, checked and taken apart before the transaction.
#[derive(Clone, Debug)]
struct Prepared {
    org_id: OrgId,
    /// The JSON's non-zero `id`.
    id: Option<i64>,
    /// The JSON's non-empty `uid`.
    uid: Option<String>,
    /// The JSON's `version` (0 when missing).
    version: i64,
    title: String,
    data: Map<String, Value>,
    tags: Vec<String>,
    folder: FolderRef,
    overwrite: bool,
    message: String,
    user_id: UserId,
    restored_from: Option<i64>,
    /// A fresh uid for a new dashboard whose JSON has none, drawn once so that a retried
    /// transaction creates the same dashboard.
    generated_uid: String,
}

impl Prepared {
    /// Checks a save the way Grafana does, in Grafana's order: the title, then the
    /// message, then the uid.
    fn new(save: &SaveDashboard) -> Result<Prepared> {
        let Value::Object(data) = &save.dashboard else {
            return Err(Error::InvalidDashboard(
                "the dashboard must be a JSON object".to_owned(),
            ));
        };
        let title = data
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if title.is_empty() {
            return Err(Error::EmptyTitle);
        }
        if title.len() > MAX_TITLE_LEN {
            return Err(Error::TitleTooLong);
        }
        if save.message.chars().count() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong);
        }
        check_text("title", &title)?;
        check_text("message", &save.message)?;
        let uid = match data.get("uid") {
            Some(Value::String(uid)) if !uid.trim().is_empty() => Some(uid.trim().to_owned()),
            Some(Value::Null | Value::String(_)) | None => None,
            Some(_) => return Err(Error::InvalidUid),
        };
        if let Some(uid) = &uid {
            validate_uid(uid)?;
        }
        let id = integer(data.get("id")).filter(|id| *id != 0);
        let version = integer(data.get("version")).unwrap_or(0);
        let mut tags = BTreeSet::new();
        if let Some(Value::Array(items)) = data.get("tags") {
            if items.len() > MAX_TAGS {
                return Err(Error::InvalidDashboard(format!(
                    "a dashboard can have at most {MAX_TAGS} tags"
                )));
            }
            for tag in items.iter().filter_map(Value::as_str) {
                if tag.is_empty() {
                    continue;
                }
                check_text("tags", tag)?;
                if tag.chars().count() > MAX_TAG_LEN {
                    return Err(Error::InvalidDashboard(format!(
                        "a tag must be at most {MAX_TAG_LEN} characters long"
                    )));
                }
                tags.insert(tag.to_owned());
            }
        }
        Ok(Prepared {
            org_id: save.org_id,
            id,
            uid,
            version,
            title,
            data: data.clone(),
            tags: tags.into_iter().collect(),
            folder: save.folder.clone(),
            overwrite: save.overwrite,
            message: save.message.clone(),
            user_id: save.user_id,
            restored_from: None,
            generated_uid: crate::generate_uid(),
        })
    }
}

/// A JSON number that is a whole number (Grafana's clients send `3` and sometimes `3.0`).
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// The dashboard a save updates, if any; the rules of [`DashboardStore::save_dashboard`].
async fn save_in(conn: &impl ConnectionTrait, p: &Prepared) -> Result<Dashboard> {
    let folder = resolve_folder(conn, p.org_id, &p.folder).await?;
    let by_id = match p.id {
        Some(id) => Some(
            dashboard::Entity::find()
                .filter(dashboard::Column::OrgId.eq(p.org_id.0))
                .filter(dashboard::Column::Id.eq(id))
                .lock_exclusive()
                .one(conn)
                .await?
                .ok_or(Error::DashboardNotFound)?,
        ),
        None => None,
    };
    let by_uid = match &p.uid {
        Some(uid) => dashboard_by_uid(conn, p.org_id, uid, true).await?,
        None => None,
    };
    let existing = match (by_id, by_uid) {
        (Some(a), Some(b)) if a.id != b.id => return Err(Error::DashboardUidTaken),
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let uid = match (&p.uid, &existing) {
        (Some(uid), _) => uid.clone(),
        (None, Some(row)) => row.uid.clone(),
        (None, None) => p.generated_uid.clone(),
    };
    if let Some(row) = &existing {
        if !p.overwrite && p.version != row.version {
            return Err(Error::VersionMismatch);
        }
        if let Some(record) = provisioning_of(conn, row.id, false).await?
            && !record.allow_ui_updates
        {
            return Err(Error::ProvisionedDashboard);
        }
    } else if folder_by_uid(conn, p.org_id, &uid, false).await?.is_some() {
        return Err(Error::DashboardUidTaken);
    }
    let (row, text) = write_dashboard(
        conn,
        existing.as_ref(),
        Write {
            org_id: p.org_id,
            uid,
            title: p.title.clone(),
            folder_uid: folder.as_ref().map(|f| f.uid.clone()),
            data: p.data.clone(),
            tags: &p.tags,
            message: p.message.clone(),
            user_id: p.user_id,
            restored_from: p.restored_from,
        },
    )
    .await?;
    let provisioning = provisioning_of(conn, row.id, false).await?;
    Ok(to_dashboard(
        row,
        &text,
        folder.map(to_folder_summary),
        p.tags.clone(),
        provisioning.map(to_provisioning),
    ))
}

/// The rules of [`DashboardStore::provision_dashboard`].
async fn provision_in(
    conn: &impl ConnectionTrait,
    p: &Prepared,
    provision: &ProvisionDashboard,
) -> Result<ProvisionOutcome> {
    let folder = resolve_folder(conn, p.org_id, &p.folder).await?;
    let uid = p.uid.clone().unwrap_or_default();
    // Locking the dashboard row first makes a second instance provisioning the same file
    // wait here, and then read the record the first one wrote.
    let existing = dashboard_by_uid(conn, p.org_id, &uid, true).await?;
    let record = match &existing {
        Some(row) => provisioning_of(conn, row.id, true).await?,
        None => None,
    };
    let folder_uid = folder.as_ref().map(|f| f.uid.clone());
    if let (Some(row), Some(record)) = (&existing, &record)
        && record.check_sum == provision.checksum
        && record.name == provision.provider
        && record.external_id == provision.external_id
        && row.folder_uid == folder_uid
    {
        if record.allow_ui_updates != provision.allow_ui_updates {
            dashboard_provisioning::Entity::update_many()
                .col_expr(
                    dashboard_provisioning::Column::AllowUiUpdates,
                    Expr::value(provision.allow_ui_updates),
                )
                .filter(dashboard_provisioning::Column::Id.eq(record.id))
                .exec(conn)
                .await?;
        }
        return Ok(ProvisionOutcome::Unchanged);
    }
    if existing.is_none() && folder_by_uid(conn, p.org_id, &uid, false).await?.is_some() {
        return Err(Error::DashboardUidTaken);
    }
    // Asked under the lock, so a write another instance committed first (with what the
    // file holds now) is never followed by this one's older read of it.
    if !provision.still_current.holds() {
        return Ok(ProvisionOutcome::Stale);
    }
    let (row, text) = write_dashboard(
        conn,
        existing.as_ref(),
        Write {
            org_id: p.org_id,
            uid,
            title: p.title.clone(),
            folder_uid,
            data: p.data.clone(),
            tags: &p.tags,
            message: String::new(),
            user_id: UserId::SYSTEM,
            restored_from: None,
        },
    )
    .await?;
    let now = now_ms();
    let record = dashboard_provisioning::ActiveModel {
        id: match &record {
            Some(record) => ActiveValue::Unchanged(record.id),
            None => ActiveValue::NotSet,
        },
        org_id: ActiveValue::Set(p.org_id.0),
        dashboard_id: ActiveValue::Set(row.id),
        name: ActiveValue::Set(provision.provider.clone()),
        external_id: ActiveValue::Set(provision.external_id.clone()),
        check_sum: ActiveValue::Set(provision.checksum.clone()),
        allow_ui_updates: ActiveValue::Set(provision.allow_ui_updates),
        updated: ActiveValue::Set(now),
    };
    let record = if record.id.is_not_set() {
        record.insert(conn).await?
    } else {
        record.update(conn).await?
    };
    let created = existing.is_none();
    let dashboard = to_dashboard(
        row,
        &text,
        folder.map(to_folder_summary),
        p.tags.clone(),
        Some(to_provisioning(record)),
    );
    Ok(if created {
        ProvisionOutcome::Created(dashboard)
    } else {
        ProvisionOutcome::Updated(dashboard)
    })
}

/// What [`write_dashboard`] stores.
struct Write<'a> {
    org_id: OrgId,
    uid: String,
    title: String,
    folder_uid: Option<String>,
    data: Map<String, Value>,
    tags: &'a [String],
    message: String,
    user_id: UserId,
    restored_from: Option<i64>,
}

/// Inserts a dashboard (version 1) or updates `existing` to its next version by
/// compare-and-swap, writes its version row (which holds the JSON) and replaces its tags;
/// returns the row and the JSON written.
async fn write_dashboard(
    conn: &impl ConnectionTrait,
    existing: Option<&dashboard::Model>,
    w: Write<'_>,
) -> Result<(dashboard::Model, String)> {
    let now = now_ms();
    let slug = slugify(&w.title);
    let title_lower = lower(&w.title);
    let mut data = w.data;
    data.insert("uid".to_owned(), Value::from(w.uid.clone()));
    data.insert("title".to_owned(), Value::from(w.title.clone()));
    let (row, text, parent_version) = match existing {
        None => {
            data.insert("version".to_owned(), Value::from(1));
            data.remove("id");
            let row = dashboard::ActiveModel {
                id: ActiveValue::Set(ids::next_content_id(conn).await?),
                org_id: ActiveValue::Set(w.org_id.0),
                uid: ActiveValue::Set(w.uid.clone()),
                folder_uid: ActiveValue::Set(w.folder_uid.clone()),
                title: ActiveValue::Set(w.title.clone()),
                title_lower: ActiveValue::Set(title_lower),
                slug: ActiveValue::Set(slug),
                version: ActiveValue::Set(1),
                created: ActiveValue::Set(now),
                updated: ActiveValue::Set(now),
                created_by: ActiveValue::Set(w.user_id.0),
                updated_by: ActiveValue::Set(w.user_id.0),
            }
            .insert(conn)
            .await?;
            permissions::write_defaults(
                conn,
                w.org_id,
                &Resource::Dashboard(DashboardUid::from(w.uid.as_str())),
                w.folder_uid.is_none(),
                w.user_id,
            )
            .await?;
            // The id exists only now; the stored JSON carries it like every other field.
            data.insert("id".to_owned(), Value::from(row.id));
            let text = Value::Object(data.clone()).to_string();
            (row, text, 0)
        }
        Some(current) => {
            let version = current.version + 1;
            data.insert("id".to_owned(), Value::from(current.id));
            data.insert("version".to_owned(), Value::from(version));
            let text = Value::Object(data.clone()).to_string();
            let result = dashboard::Entity::update_many()
                .col_expr(dashboard::Column::Uid, Expr::value(w.uid.clone()))
                .col_expr(
                    dashboard::Column::FolderUid,
                    Expr::value(w.folder_uid.clone()),
                )
                .col_expr(dashboard::Column::Title, Expr::value(w.title.clone()))
                .col_expr(
                    dashboard::Column::TitleLower,
                    Expr::value(title_lower.clone()),
                )
                .col_expr(dashboard::Column::Slug, Expr::value(slug.clone()))
                .col_expr(dashboard::Column::Version, Expr::value(version))
                .col_expr(dashboard::Column::Updated, Expr::value(now))
                .col_expr(dashboard::Column::UpdatedBy, Expr::value(w.user_id.0))
                .filter(dashboard::Column::OrgId.eq(w.org_id.0))
                .filter(dashboard::Column::Uid.eq(current.uid.as_str()))
                .filter(dashboard::Column::Version.eq(current.version))
                .exec(conn)
                .await?;
            if result.rows_affected != 1 {
                // Someone else saved between our read and our write.
                return Err(Error::VersionMismatch);
            }
            let row = dashboard::Model {
                uid: w.uid.clone(),
                folder_uid: w.folder_uid.clone(),
                title: w.title.clone(),
                title_lower,
                slug,
                version,
                updated: now,
                updated_by: w.user_id.0,
                ..current.clone()
            };
            (row, text, current.version)
        }
    };
    dashboard_version::ActiveModel {
        id: ActiveValue::NotSet,
        dashboard_id: ActiveValue::Set(row.id),
        parent_version: ActiveValue::Set(parent_version),
        restored_from: ActiveValue::Set(w.restored_from),
        version: ActiveValue::Set(row.version),
        created: ActiveValue::Set(now),
        created_by: ActiveValue::Set(w.user_id.0),
        message: ActiveValue::Set(w.message),
        data: ActiveValue::Set(text.clone()),
    }
    .insert(conn)
    .await?;
    // A new dashboard has no tags to replace, and deleting none would lock the end of the
    // tag index on MySQL/MariaDB, where every concurrent creator inserts (a deadlock each).
    if existing.is_some() {
        dashboard_tag::Entity::delete_many()
            .filter(dashboard_tag::Column::DashboardId.eq(row.id))
            .exec(conn)
            .await?;
    }
    // In chunks, so that no statement comes near an engine's limit on bound parameters
    // (SQLite 32 766, PostgreSQL 65 535).
    for chunk in w.tags.chunks(TAGS_PER_INSERT) {
        dashboard_tag::Entity::insert_many(chunk.iter().map(|term| dashboard_tag::ActiveModel {
            id: ActiveValue::NotSet,
            org_id: ActiveValue::Set(w.org_id.0),
            dashboard_id: ActiveValue::Set(row.id),
            term: ActiveValue::Set(term.clone()),
        }))
        .exec(conn)
        .await?;
    }
    library::connect_dashboard(conn, w.org_id, row.id, existing.is_some(), &data, w.user_id)
        .await?;
    Ok((row, text))
}

/// The folder a save names, which must exist.
async fn resolve_folder(
    conn: &impl ConnectionTrait,
    org: OrgId,
    folder: &FolderRef,
) -> Result<Option<folder::Model>> {
    let row = match folder {
        FolderRef::Root => return Ok(None),
        FolderRef::Uid(uid) => folder_by_uid(conn, org, uid.as_str(), false).await?,
        FolderRef::Id(id) => {
            folder::Entity::find()
                .filter(folder::Column::OrgId.eq(org.0))
                .filter(folder::Column::Id.eq(id.0))
                .one(conn)
                .await?
        }
    };
    row.map(Some).ok_or(Error::FolderNotFound)
}

// ---- reading and deleting rows

/// The dashboard with this uid; with `for_update`, its row is locked for the rest of the
/// transaction.
///
/// The lock is taken by primary key, and only on a row a plain read found. A locking read
/// of a uid that does not exist would lock the gap where it would go on MySQL/MariaDB
/// (`REPEATABLE READ` next-key locking), and concurrent creators whose uids fall in one
/// gap (uids counting up all meet at its end) would then deadlock on each other's gap as
/// they insert: so many deadlocks that a transaction exhausted its retries. A missing row
/// is left unlocked, as PostgreSQL and SQLite leave it; two creations of one uid meet on
/// the unique index instead ([`SqlDashboardStore::write`]).
pub(crate) async fn dashboard_by_uid(
    conn: &impl ConnectionTrait,
    org: OrgId,
    uid: &str,
    for_update: bool,
) -> Result<Option<dashboard::Model>, sea_orm::DbErr> {
    // No stored uid breaks the rules, and some engines refuse what does (a NUL).
    if validate_uid(uid).is_err() {
        return Ok(None);
    }
    let select = dashboard::Entity::find()
        .filter(dashboard::Column::OrgId.eq(org.0))
        .filter(dashboard::Column::Uid.eq(uid));
    let found = first_row(select.clone(), conn).await?;
    if !for_update || found.is_none() {
        return Ok(found);
    }
    // Locked by its primary key, and only once it is known to exist (see `dashboard_by_uid`).
    select
        .filter(dashboard::Column::Id.eq(found.map(|row| row.id)))
        .lock_exclusive()
        .one(conn)
        .await
}

/// The folder with this uid; with `for_update`, locked as [`dashboard_by_uid`] locks.
pub(crate) async fn folder_by_uid(
    conn: &impl ConnectionTrait,
    org: OrgId,
    uid: &str,
    for_update: bool,
) -> Result<Option<folder::Model>, sea_orm::DbErr> {
    // No stored uid breaks the rules, and some engines refuse what does (a NUL).
    if validate_uid(uid).is_err() {
        return Ok(None);
    }
    let select = folder::Entity::find()
        .filter(folder::Column::OrgId.eq(org.0))
        .filter(folder::Column::Uid.eq(uid));
    let found = first_row(select.clone(), conn).await?;
    if !for_update || found.is_none() {
        return Ok(found);
    }
    // Locked by its primary key, and only once it is known to exist (see `dashboard_by_uid`).
    select
        .filter(folder::Column::Id.eq(found.map(|row| row.id)))
        .lock_exclusive()
        .one(conn)
        .await
}

async fn provisioning_of(
    conn: &impl ConnectionTrait,
    dashboard_id: i64,
    for_update: bool,
) -> Result<Option<dashboard_provisioning::Model>, sea_orm::DbErr> {
    let mut select = dashboard_provisioning::Entity::find()
        .filter(dashboard_provisioning::Column::DashboardId.eq(dashboard_id));
    if for_update {
        select = select.lock_exclusive();
    }
    first_row(select, conn).await
}

/// How many folders deep `uid` is (1 at the root); `FolderNotFound` when it does not exist.
async fn folder_depth(conn: &impl ConnectionTrait, org: OrgId, uid: &str) -> Result<usize> {
    let mut depth = 0;
    let mut next = Some(uid.to_owned());
    while let Some(uid) = next {
        let row = folder_by_uid(conn, org, &uid, false)
            .await?
            .ok_or(Error::FolderNotFound)?;
        depth += 1;
        if depth > MAX_FOLDER_DEPTH {
            // Deep enough to refuse; also stops on a cycle, which the API cannot make.
            break;
        }
        next = row.parent_uid;
    }
    Ok(depth)
}

/// Deletes dashboards with everything that hangs off them.
async fn delete_dashboard_rows(
    conn: &impl ConnectionTrait,
    org: OrgId,
    rows: &[&dashboard::Model],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let uids: Vec<String> = rows.iter().map(|row| row.uid.clone()).collect();
    permissions::forget_resources(conn, org, "dashboard", &uids).await?;
    library::disconnect_dashboards(conn, &ids).await?;
    dashboard_version::Entity::delete_many()
        .filter(dashboard_version::Column::DashboardId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    dashboard_tag::Entity::delete_many()
        .filter(dashboard_tag::Column::DashboardId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    star::Entity::delete_many()
        .filter(star::Column::DashboardId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    dashboard_provisioning::Entity::delete_many()
        .filter(dashboard_provisioning::Column::DashboardId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    dashboard::Entity::delete_many()
        .filter(dashboard::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    Ok(())
}

/// A dashboard row with its folder, tags and provisioning record.
async fn load_dashboard(
    conn: &impl ConnectionTrait,
    row: dashboard::Model,
) -> Result<Dashboard, sea_orm::DbErr> {
    let folder = match &row.folder_uid {
        Some(uid) => folder_by_uid(conn, OrgId(row.org_id), uid, false).await?,
        None => None,
    };
    let tags: Vec<String> = dashboard_tag::Entity::find()
        .select_only()
        .column(dashboard_tag::Column::Term)
        .filter(dashboard_tag::Column::DashboardId.eq(row.id))
        .order_by_asc(dashboard_tag::Column::Term)
        .into_tuple()
        .all(conn)
        .await?;
    let provisioning = provisioning_of(conn, row.id, false).await?;
    // The current version's row holds the JSON; it is never trimmed (retention keeps at
    // least the newest version).
    let text: Option<String> = dashboard_version::Entity::find()
        .select_only()
        .column(dashboard_version::Column::Data)
        .filter(dashboard_version::Column::DashboardId.eq(row.id))
        .filter(dashboard_version::Column::Version.eq(row.version))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(to_dashboard(
        row,
        text.as_deref().unwrap_or("{}"),
        folder.map(to_folder_summary),
        tags,
        provisioning.map(to_provisioning),
    ))
}

// ---- conversions and small helpers

/// Lower case for search, one character at a time so that it does not depend on context,
/// and done here rather than by the database, whose `LOWER` differs between engines.
pub(crate) fn lower(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

fn check_folder_title(title: &str) -> Result<String> {
    let title = title.trim();
    if title.is_empty() {
        return Err(Error::EmptyFolderTitle);
    }
    if title.len() > MAX_TITLE_LEN {
        return Err(Error::InvalidFolderTitle);
    }
    check_text("title", title)?;
    Ok(title.to_owned())
}

/// The input policy's NUL rule, as this crate's error.
fn check_text(field: &'static str, value: &str) -> Result<()> {
    tandem_storage::input::check_text(field, value)
        .map_err(|err| Error::InvalidInput(err.to_string()))
}

/// The stored JSON as an object; a row that somehow holds something else reads as `{}`
/// plus the stored fields, rather than failing every read of the dashboard.
fn parse_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn to_dashboard(
    row: dashboard::Model,
    data: &str,
    folder: Option<FolderSummary>,
    tags: Vec<String>,
    provisioning: Option<Provisioning>,
) -> Dashboard {
    let mut data = parse_object(data);
    data.insert("id".to_owned(), Value::from(row.id));
    data.insert("uid".to_owned(), Value::from(row.uid.clone()));
    data.insert("title".to_owned(), Value::from(row.title.clone()));
    data.insert("version".to_owned(), Value::from(row.version));
    Dashboard {
        id: DashboardId(row.id),
        org_id: OrgId(row.org_id),
        uid: DashboardUid::from(row.uid),
        title: row.title,
        slug: row.slug,
        data: Value::Object(data),
        version: Version(row.version),
        folder,
        tags,
        created: from_ms(row.created),
        updated: from_ms(row.updated),
        created_by: UserId(row.created_by),
        updated_by: UserId(row.updated_by),
        provisioning,
    }
}

pub(crate) fn to_folder(row: folder::Model) -> Folder {
    Folder {
        id: FolderId(row.id),
        org_id: OrgId(row.org_id),
        uid: FolderUid::from(row.uid),
        title: row.title,
        parent_uid: row.parent_uid.map(FolderUid::from),
        version: Version(row.version),
        created: from_ms(row.created),
        updated: from_ms(row.updated),
        created_by: UserId(row.created_by),
        updated_by: UserId(row.updated_by),
    }
}

pub(crate) fn to_folder_summary(row: folder::Model) -> FolderSummary {
    FolderSummary {
        id: FolderId(row.id),
        uid: FolderUid::from(row.uid),
        title: row.title,
    }
}

fn to_provisioning(row: dashboard_provisioning::Model) -> Provisioning {
    Provisioning {
        provider: row.name,
        external_id: row.external_id,
        checksum: row.check_sum,
        allow_ui_updates: row.allow_ui_updates,
        updated: from_ms(row.updated),
    }
}

fn deleted(row: &dashboard::Model) -> DeletedDashboard {
    DeletedDashboard {
        id: DashboardId(row.id),
        uid: DashboardUid::from(row.uid.as_str()),
        title: row.title.clone(),
        version: Version(row.version),
    }
}

/// The columns of a version row but its JSON, in the order of [`VersionInfoRow`].
const VERSION_INFO_COLUMNS: [dashboard_version::Column; 8] = [
    dashboard_version::Column::Id,
    dashboard_version::Column::DashboardId,
    dashboard_version::Column::ParentVersion,
    dashboard_version::Column::RestoredFrom,
    dashboard_version::Column::Version,
    dashboard_version::Column::Created,
    dashboard_version::Column::CreatedBy,
    dashboard_version::Column::Message,
];

type VersionInfoRow = (i64, i64, i64, Option<i64>, i64, i64, i64, String);

fn to_version_info(row: VersionInfoRow, uid: &str) -> VersionInfo {
    let (id, dashboard_id, parent_version, restored_from, version, created, created_by, message) =
        row;
    VersionInfo {
        id,
        dashboard_id: DashboardId(dashboard_id),
        dashboard_uid: DashboardUid::from(uid),
        parent_version: Version(parent_version),
        restored_from: restored_from.map(Version),
        version: Version(version),
        created: from_ms(created),
        created_by: UserId(created_by),
        message,
    }
}

fn to_version(row: dashboard_version::Model, uid: &str) -> DashboardVersion {
    let data = serde_json::from_str(&row.data).unwrap_or(Value::Object(Map::new()));
    DashboardVersion {
        info: to_version_info(
            (
                row.id,
                row.dashboard_id,
                row.parent_version,
                row.restored_from,
                row.version,
                row.created,
                row.created_by,
                row.message,
            ),
            uid,
        ),
        data,
    }
}
