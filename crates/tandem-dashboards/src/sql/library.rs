//! The sea-orm [`LibraryElementStore`], over `library_element` and
//! `library_element_connection`, and the connection writes of dashboard saves and
//! deletions.
//!
//! A connection must never name an element that is gone. The deletion of an element
//! locks its row and then counts its connections with a locking read (which sees the
//! latest committed rows even under MySQL's `REPEATABLE READ`); a dashboard save finds
//! the elements it names with a plain read and then takes a shared lock on each found row
//! by primary key before inserting its connections. Whichever locks first, the other waits
//! and then sees what it committed: a save after a deletion finds the row gone and
//! connects nothing, a deletion after a save finds the connection and refuses. As with
//! dashboards, a row is locked only once a plain read found it, so that no locking read
//! of a missing key takes a gap lock on MySQL/MariaDB.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};
use tandem_storage::{first_row, now_ms};

use crate::library::{
    LibraryConnection, LibraryElement, LibraryElementPatch, LibraryElementStore, LibraryKind,
    LibraryPage, LibrarySearch, LibrarySort, NewLibraryElement, check_name, referenced_uids,
    sync_model,
};
use crate::sql::entity::{
    dashboard, folder, library_element as element, library_element_connection as link,
};
use crate::sql::{SqlDashboardStore, folder_by_uid, lower, to_folder_summary};
use crate::{
    DashboardId, DashboardUid, Error, FolderSummary, FolderUid, OrgId, Result, UserId,
    generate_uid, validate_uid,
};

/// Grafana's connection kind of a dashboard.
const DASHBOARD_CONNECTION: i32 = 1;
/// Rows named per `IN` list or written per `INSERT`, far below every engine's limit on
/// bound parameters.
const CHUNK: usize = 500;

#[async_trait::async_trait]
impl LibraryElementStore for SqlDashboardStore {
    async fn create_library_element(&self, new: NewLibraryElement) -> Result<LibraryElement> {
        let name = check_name(&new.name)?;
        // Drawn once, outside the transaction, so that a retried run writes the same uid.
        let uid = match &new.uid {
            Some(uid) if !uid.is_empty() => {
                validate_uid(uid)?;
                uid.clone()
            }
            _ => generate_uid(),
        };
        let synced = sync_model(&new.model, new.kind, &name, &uid, "", "")?;
        let text = Value::Object(synced.model).to_string();
        let (new, uid, name, text) = (&new, &uid, &name, &text);
        let (kind_type, description) = (&synced.kind_type, &synced.description);
        let created = self
            .db
            .transaction(|tx| async move {
                let folder = match &new.folder_uid {
                    Some(folder_uid) => Some(
                        folder_by_uid(&*tx, new.org_id, folder_uid.as_str(), false)
                            .await?
                            .ok_or(Error::FolderNotFound)?,
                    ),
                    None => None,
                };
                let now = now_ms();
                let row = element::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(new.org_id.0),
                    folder_uid: ActiveValue::Set(
                        folder.as_ref().map(|f| f.uid.clone()).unwrap_or_default(),
                    ),
                    uid: ActiveValue::Set(uid.clone()),
                    name: ActiveValue::Set(name.clone()),
                    kind: ActiveValue::Set(kind_code(new.kind)),
                    kind_type: ActiveValue::Set(kind_type.clone()),
                    description: ActiveValue::Set(description.clone()),
                    model: ActiveValue::Set(text.clone()),
                    version: ActiveValue::Set(1),
                    created: ActiveValue::Set(now),
                    created_by: ActiveValue::Set(new.user_id.0),
                    updated: ActiveValue::Set(now),
                    updated_by: ActiveValue::Set(new.user_id.0),
                }
                .insert(&*tx)
                .await?;
                Ok::<_, Error>((row, folder.map(to_folder_summary)))
            })
            .await
            .map_err(taken)?;
        Ok(to_element(created.0, created.1, 0))
    }

    async fn library_element(&self, org: OrgId, uid: &str) -> Result<Option<LibraryElement>> {
        if validate_uid(uid).is_err() {
            return Ok(None);
        }
        let found = self
            .db
            .read(|conn| async move {
                let rows = element::Entity::find()
                    .filter(element::Column::OrgId.eq(org.0))
                    .filter(element::Column::Uid.eq(uid))
                    .all(&conn)
                    .await?;
                with_meta(&conn, org, rows).await
            })
            .await?;
        Ok(found.into_iter().next())
    }

    async fn library_elements_named(&self, org: OrgId, name: &str) -> Result<Vec<LibraryElement>> {
        if name.contains('\0') || name.chars().count() > crate::MAX_LIBRARY_NAME_LEN {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .read(|conn| async move {
                let rows = element::Entity::find()
                    .filter(element::Column::OrgId.eq(org.0))
                    .filter(element::Column::Name.eq(name))
                    .order_by_asc(element::Column::FolderUid)
                    .order_by_asc(element::Column::Id)
                    .all(&conn)
                    .await?;
                with_meta(&conn, org, rows).await
            })
            .await?)
    }

    async fn search_library_elements(&self, search: LibrarySearch) -> Result<LibraryPage> {
        search.check()?;
        let search = &search;
        Ok(self
            .db
            .read(|conn| async move { search_in(&conn, search).await })
            .await?)
    }

    async fn patch_library_element(&self, patch: LibraryElementPatch) -> Result<LibraryElement> {
        let name = match &patch.name {
            Some(name) if !name.trim().is_empty() => Some(check_name(name)?),
            // Grafana keeps the name when the patch's is empty.
            _ => None,
        };
        let new_uid = match &patch.new_uid {
            Some(uid) if !uid.is_empty() && *uid != patch.uid => {
                validate_uid(uid)?;
                Some(uid.clone())
            }
            _ => None,
        };
        if let Some(model) = &patch.model
            && !model.is_object()
        {
            return Err(Error::InvalidInput(
                "model must be a JSON object".to_owned(),
            ));
        }
        let (patch, name, new_uid) = (&patch, &name, &new_uid);
        let (row, folder, connected) = self
            .db
            .transaction(|tx| async move {
                let current = element_by_uid(&*tx, patch.org_id, &patch.uid, true)
                    .await?
                    .ok_or(Error::LibraryElementNotFound)?;
                if current.version != patch.version {
                    return Err(Error::LibraryElementVersionMismatch);
                }
                if let Some(uid) = new_uid
                    && element_by_uid(&*tx, patch.org_id, uid, false)
                        .await?
                        .is_some()
                {
                    return Err(Error::LibraryElementExists);
                }
                let folder = match &patch.folder_uid {
                    None if current.folder_uid.is_empty() => None,
                    None => folder_by_uid(&*tx, patch.org_id, &current.folder_uid, false).await?,
                    Some(None) => None,
                    Some(Some(uid)) => Some(
                        folder_by_uid(&*tx, patch.org_id, uid.as_str(), false)
                            .await?
                            .ok_or(Error::FolderNotFound)?,
                    ),
                };
                let uid = new_uid.clone().unwrap_or_else(|| current.uid.clone());
                let name = name.clone().unwrap_or_else(|| current.name.clone());
                let kind = LibraryKind::from_code(i64::from(current.kind))?;
                let model = match &patch.model {
                    Some(model) => model.clone(),
                    None => parse_model(&current.model),
                };
                let synced = sync_model(
                    &model,
                    kind,
                    &name,
                    &uid,
                    &current.kind_type,
                    &current.description,
                )?;
                let now = now_ms();
                let row = element::Model {
                    folder_uid: folder.as_ref().map(|f| f.uid.clone()).unwrap_or_default(),
                    uid,
                    name,
                    kind_type: synced.kind_type,
                    description: synced.description,
                    model: Value::Object(synced.model).to_string(),
                    version: current.version + 1,
                    updated: now,
                    updated_by: patch.user_id.0,
                    ..current.clone()
                };
                let result = element::Entity::update_many()
                    .col_expr(
                        element::Column::FolderUid,
                        Expr::value(row.folder_uid.clone()),
                    )
                    .col_expr(element::Column::Uid, Expr::value(row.uid.clone()))
                    .col_expr(element::Column::Name, Expr::value(row.name.clone()))
                    .col_expr(
                        element::Column::KindType,
                        Expr::value(row.kind_type.clone()),
                    )
                    .col_expr(
                        element::Column::Description,
                        Expr::value(row.description.clone()),
                    )
                    .col_expr(element::Column::Model, Expr::value(row.model.clone()))
                    .col_expr(element::Column::Version, Expr::value(row.version))
                    .col_expr(element::Column::Updated, Expr::value(now))
                    .col_expr(element::Column::UpdatedBy, Expr::value(patch.user_id.0))
                    .filter(element::Column::Id.eq(current.id))
                    .filter(element::Column::Version.eq(current.version))
                    .exec(&*tx)
                    .await?;
                if result.rows_affected != 1 {
                    // Someone else changed it between our read and our write.
                    return Err(Error::LibraryElementVersionMismatch);
                }
                let connected = connection_counts(&*tx, &[current.id]).await?;
                Ok((
                    row,
                    folder.map(to_folder_summary),
                    connected.get(&current.id).copied().unwrap_or(0),
                ))
            })
            .await
            .map_err(taken)?;
        Ok(to_element(row, folder, connected))
    }

    async fn delete_library_element(&self, org: OrgId, uid: &str) -> Result<i64> {
        self.db
            .transaction(|tx| async move {
                let row = element_by_uid(&*tx, org, uid, true)
                    .await?
                    .ok_or(Error::LibraryElementNotFound)?;
                // A locking read: it sees a connection committed after this transaction
                // began (see the module's comment).
                let connected = link::Entity::find()
                    .filter(link::Column::ElementId.eq(row.id))
                    .lock_shared()
                    .all(&*tx)
                    .await?;
                if !connected.is_empty() {
                    return Err(Error::LibraryElementHasConnections);
                }
                element::Entity::delete_many()
                    .filter(element::Column::Id.eq(row.id))
                    .exec(&*tx)
                    .await?;
                Ok(row.id)
            })
            .await
    }

    async fn library_connections(&self, org: OrgId, uid: &str) -> Result<Vec<LibraryConnection>> {
        if validate_uid(uid).is_err() {
            return Err(Error::LibraryElementNotFound);
        }
        let found = self
            .db
            .read(|conn| async move {
                let Some(row) = element::Entity::find()
                    .filter(element::Column::OrgId.eq(org.0))
                    .filter(element::Column::Uid.eq(uid))
                    .one(&conn)
                    .await?
                else {
                    return Ok(None);
                };
                let links = link::Entity::find()
                    .filter(link::Column::ElementId.eq(row.id))
                    .order_by_asc(link::Column::ConnectionId)
                    .all(&conn)
                    .await?;
                let mut boards = HashMap::new();
                let ids: Vec<i64> = links.iter().map(|l| l.connection_id).collect();
                for chunk in ids.chunks(CHUNK) {
                    let rows: Vec<(i64, String, Option<String>)> = dashboard::Entity::find()
                        .select_only()
                        .columns([
                            dashboard::Column::Id,
                            dashboard::Column::Uid,
                            dashboard::Column::FolderUid,
                        ])
                        .filter(dashboard::Column::OrgId.eq(org.0))
                        .filter(dashboard::Column::Id.is_in(chunk.to_vec()))
                        .into_tuple()
                        .all(&conn)
                        .await?;
                    boards.extend(
                        rows.into_iter()
                            .map(|(id, uid, folder)| (id, (uid, folder))),
                    );
                }
                Ok(Some(
                    links
                        .into_iter()
                        .filter_map(|l| {
                            let (uid, folder) = boards.get(&l.connection_id)?.clone();
                            Some(LibraryConnection {
                                id: l.id,
                                element_id: l.element_id,
                                kind: i64::from(l.kind),
                                dashboard_id: DashboardId(l.connection_id),
                                dashboard_uid: DashboardUid::from(uid.as_str()),
                                dashboard_folder: folder.map(|f| FolderUid::from(f.as_str())),
                                created_ms: l.created,
                                created_by: UserId(l.created_by),
                            })
                        })
                        .collect(),
                ))
            })
            .await?;
        found.ok_or(Error::LibraryElementNotFound)
    }
}

/// Replaces the connections of dashboard `dashboard_id` with the library panels its JSON
/// `data` uses, in the caller's transaction (a dashboard save). A panel naming an element
/// that is not in the org connects nothing. `replace` is false for a new dashboard, which
/// has no connections to delete (and deleting none would lock a gap on MySQL/MariaDB).
pub(crate) async fn connect_dashboard(
    conn: &impl ConnectionTrait,
    org: OrgId,
    dashboard_id: i64,
    replace: bool,
    data: &Map<String, Value>,
    user: UserId,
) -> Result<(), sea_orm::DbErr> {
    if replace {
        link::Entity::delete_many()
            .filter(link::Column::ConnectionId.eq(dashboard_id))
            .filter(link::Column::Kind.eq(DASHBOARD_CONNECTION))
            .exec(conn)
            .await?;
    }
    let uids = referenced_uids(data);
    let mut found: Vec<i64> = Vec::new();
    for chunk in uids.chunks(CHUNK) {
        let ids: Vec<i64> = element::Entity::find()
            .select_only()
            .column(element::Column::Id)
            .filter(element::Column::OrgId.eq(org.0))
            .filter(element::Column::Uid.is_in(chunk.to_vec()))
            .into_tuple()
            .all(conn)
            .await?;
        if ids.is_empty() {
            continue;
        }
        // Shared locks by primary key on rows known to exist; a row deleted meanwhile is
        // not returned (see the module's comment).
        let locked: Vec<i64> = element::Entity::find()
            .select_only()
            .column(element::Column::Id)
            .filter(element::Column::Id.is_in(ids))
            .order_by_asc(element::Column::Id)
            .lock_shared()
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(locked);
    }
    let now = now_ms();
    for chunk in found.chunks(CHUNK) {
        link::Entity::insert_many(chunk.iter().map(|id| link::ActiveModel {
            id: ActiveValue::NotSet,
            element_id: ActiveValue::Set(*id),
            kind: ActiveValue::Set(DASHBOARD_CONNECTION),
            connection_id: ActiveValue::Set(dashboard_id),
            created: ActiveValue::Set(now),
            created_by: ActiveValue::Set(user.0),
        }))
        .exec(conn)
        .await?;
    }
    Ok(())
}

/// Deletes the connections of deleted dashboards, in their deletion's transaction.
pub(crate) async fn disconnect_dashboards(
    conn: &impl ConnectionTrait,
    dashboard_ids: &[i64],
) -> Result<(), sea_orm::DbErr> {
    for chunk in dashboard_ids.chunks(CHUNK) {
        link::Entity::delete_many()
            .filter(link::Column::ConnectionId.is_in(chunk.to_vec()))
            .filter(link::Column::Kind.eq(DASHBOARD_CONNECTION))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Deletes the library elements of folders being deleted, in the folder deletion's
/// transaction, before their dashboards go (as Grafana orders it):
/// `FolderHasConnectedLibraryElements` when any dashboard uses one of them.
pub(crate) async fn delete_folder_elements(
    conn: &impl ConnectionTrait,
    org: OrgId,
    folder_uids: &[String],
) -> Result<()> {
    let mut ids: Vec<i64> = Vec::new();
    for chunk in folder_uids.chunks(CHUNK) {
        let found: Vec<i64> = element::Entity::find()
            .select_only()
            .column(element::Column::Id)
            .filter(element::Column::OrgId.eq(org.0))
            .filter(element::Column::FolderUid.is_in(chunk.to_vec()))
            .into_tuple()
            .all(conn)
            .await?;
        ids.extend(found);
    }
    for chunk in ids.chunks(CHUNK) {
        element::Entity::find()
            .filter(element::Column::Id.is_in(chunk.to_vec()))
            .order_by_asc(element::Column::Id)
            .lock_exclusive()
            .all(conn)
            .await?;
        let connected = link::Entity::find()
            .filter(link::Column::ElementId.is_in(chunk.to_vec()))
            .lock_shared()
            .all(conn)
            .await?;
        if !connected.is_empty() {
            return Err(Error::FolderHasConnectedLibraryElements);
        }
        element::Entity::delete_many()
            .filter(element::Column::Id.is_in(chunk.to_vec()))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// One page of a search: the candidate rows are read without their models, filtered by
/// text and permission and sorted here, then the page's rows are read whole.
async fn search_in(
    conn: &impl ConnectionTrait,
    search: &LibrarySearch,
) -> Result<LibraryPage, sea_orm::DbErr> {
    let mut select = element::Entity::find()
        .select_only()
        .columns([
            element::Column::Id,
            element::Column::FolderUid,
            element::Column::Name,
            element::Column::Description,
        ])
        .filter(element::Column::OrgId.eq(search.org_id.0));
    if let Some(kind) = search.kind {
        select = select.filter(element::Column::Kind.eq(kind_code(kind)));
    }
    if let Some(uid) = &search.exclude_uid {
        select = select.filter(element::Column::Uid.ne(uid.as_str()));
    }
    if !search.types.is_empty() {
        select = select.filter(element::Column::KindType.is_in(search.types.clone()));
    }
    if let Some(folders) = &search.folders {
        let uids: Vec<String> = folders
            .iter()
            .map(|f| {
                f.as_ref()
                    .map(|f| f.as_str().to_owned())
                    .unwrap_or_default()
            })
            .collect();
        select = select.filter(element::Column::FolderUid.is_in(uids));
    }
    let rows: Vec<(i64, String, String, String)> = select.into_tuple().all(conn).await?;
    let viewable: Option<HashSet<&str>> = search
        .viewable
        .as_ref()
        .map(|uids| uids.iter().map(FolderUid::as_str).collect());
    let wanted = lower(search.search.trim());
    let mut matching: Vec<(String, String, i64)> = rows
        .into_iter()
        .filter(|(_, folder, _, _)| match &viewable {
            None => true,
            Some(_) if folder.is_empty() => search.general_viewable,
            Some(viewable) => viewable.contains(folder.as_str()),
        })
        .filter(|(_, _, name, description)| {
            wanted.is_empty()
                || lower(name).contains(&wanted)
                || lower(description).contains(&wanted)
        })
        .map(|(id, _, name, _)| (lower(&name), name, id))
        .collect();
    matching.sort();
    if search.sort == LibrarySort::AlphaDesc {
        matching.reverse();
    }
    let total_count = u64::try_from(matching.len()).unwrap_or(u64::MAX);
    let skip = usize::try_from(tandem_storage::input::offset(
        search.page_number(),
        search.page_size(),
    ))
    .unwrap_or(usize::MAX);
    let take = usize::try_from(search.page_size()).unwrap_or(usize::MAX);
    let page: Vec<i64> = matching
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|(_, _, id)| id)
        .collect();
    let mut rows: Vec<element::Model> = Vec::new();
    for chunk in page.chunks(CHUNK) {
        rows.extend(
            element::Entity::find()
                .filter(element::Column::Id.is_in(chunk.to_vec()))
                .all(conn)
                .await?,
        );
    }
    let order: HashMap<i64, usize> = page.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|row| order.get(&row.id).copied().unwrap_or(usize::MAX));
    Ok(LibraryPage {
        total_count,
        elements: with_meta(conn, search.org_id, rows).await?,
    })
}

/// The element with this uid; with `for_update`, its row locked (by primary key, once a
/// plain read found it).
async fn element_by_uid(
    conn: &impl ConnectionTrait,
    org: OrgId,
    uid: &str,
    for_update: bool,
) -> Result<Option<element::Model>, sea_orm::DbErr> {
    if validate_uid(uid).is_err() {
        return Ok(None);
    }
    let select = element::Entity::find()
        .filter(element::Column::OrgId.eq(org.0))
        .filter(element::Column::Uid.eq(uid));
    let found = first_row(select.clone(), conn).await?;
    if !for_update || found.is_none() {
        return Ok(found);
    }
    select
        .filter(element::Column::Id.eq(found.map(|row| row.id)))
        .lock_exclusive()
        .one(conn)
        .await
}

/// How many dashboards use each element.
async fn connection_counts(
    conn: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, i64>, sea_orm::DbErr> {
    let mut counts = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(i64, i64)> = link::Entity::find()
            .select_only()
            .column(link::Column::ElementId)
            .column_as(link::Column::Id.count(), "n")
            .filter(link::Column::ElementId.is_in(chunk.to_vec()))
            .filter(link::Column::Kind.eq(DASHBOARD_CONNECTION))
            .group_by(link::Column::ElementId)
            .into_tuple()
            .all(conn)
            .await?;
        counts.extend(rows);
    }
    Ok(counts)
}

/// Rows with their folders and connection counts, in the rows' order.
async fn with_meta(
    conn: &impl ConnectionTrait,
    org: OrgId,
    rows: Vec<element::Model>,
) -> Result<Vec<LibraryElement>, sea_orm::DbErr> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let counts = connection_counts(conn, &ids).await?;
    let folder_uids: Vec<String> = rows
        .iter()
        .filter(|row| !row.folder_uid.is_empty())
        .map(|row| row.folder_uid.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut folders: BTreeMap<String, FolderSummary> = BTreeMap::new();
    for chunk in folder_uids.chunks(CHUNK) {
        for row in folder::Entity::find()
            .filter(folder::Column::OrgId.eq(org.0))
            .filter(folder::Column::Uid.is_in(chunk.to_vec()))
            .all(conn)
            .await?
        {
            folders.insert(row.uid.clone(), to_folder_summary(row));
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let folder = folders.get(&row.folder_uid).cloned();
            let connected = counts.get(&row.id).copied().unwrap_or(0);
            to_element(row, folder, connected)
        })
        .collect())
}

fn to_element(
    row: element::Model,
    folder: Option<FolderSummary>,
    connected: i64,
) -> LibraryElement {
    LibraryElement {
        id: row.id,
        org_id: OrgId(row.org_id),
        folder,
        kind: LibraryKind::from_code(i64::from(row.kind)).unwrap_or(LibraryKind::Panel),
        model: parse_model(&row.model),
        uid: row.uid,
        name: row.name,
        kind_type: row.kind_type,
        description: row.description,
        version: row.version,
        connected_dashboards: connected,
        created_ms: row.created,
        updated_ms: row.updated,
        created_by: UserId(row.created_by),
        updated_by: UserId(row.updated_by),
    }
}

fn parse_model(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(Value::Object(model)) => Value::Object(model),
        _ => Value::Object(Map::new()),
    }
}

fn kind_code(kind: LibraryKind) -> i32 {
    match kind {
        LibraryKind::Panel => 1,
        LibraryKind::Variable => 2,
    }
}

/// A unique index refused the write: the uid, or the name and kind in the folder, is taken.
fn taken(err: Error) -> Error {
    if err.is_unique_violation() {
        Error::LibraryElementExists
    } else {
        err
    }
}
