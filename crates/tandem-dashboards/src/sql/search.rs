//! Search over folders and dashboards, the same on every engine.
//!
//! Folders come first, then dashboards, each sorted by the title Tandem lower-cased
//! (`title_lower`, compared byte-wise: code point order), then by the title itself and the
//! id so that the order is total and pages never overlap. A page is cut from that
//! concatenation with two queries: the folders part, then the dashboards part shifted by
//! the number of matching folders. The title query is a `LIKE` on `title_lower` with `%`,
//! `_` and the escape character escaped, so it means "contains" and nothing else.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::sql::entity::{content_permission, dashboard, dashboard_tag, folder, star};
use crate::sql::permissions::matching;
use crate::sql::{lower, to_folder_summary};
use crate::{FolderSummary, HitKind, SearchAccess, SearchHit, SearchQuery};

/// The dashboards a caller may view: those in the folders they may view, and those
/// their own items (theirs, their teams', their roles') grant View on.
fn visible_dashboards(query: &SearchQuery, access: &SearchAccess) -> Condition {
    Condition::any()
        .add(dashboard::Column::FolderUid.is_in(access.folders.iter().map(|uid| uid.as_str())))
        .add(
            dashboard::Column::Uid.in_subquery(
                Query::select()
                    .column(content_permission::Column::Uid)
                    .from(content_permission::Entity)
                    .and_where(Expr::col(content_permission::Column::OrgId).eq(query.org_id.0))
                    .and_where(Expr::col(content_permission::Column::Kind).eq("dashboard"))
                    .cond_where(matching(&access.subject))
                    .to_owned(),
            ),
        )
}

/// The `folderUIDs` value Grafana uses for the root.
const ROOT_FOLDER_UID: &str = "general";

pub(crate) async fn search(
    conn: &impl ConnectionTrait,
    query: &SearchQuery,
) -> Result<Vec<SearchHit>, DbErr> {
    let pattern = query.query.as_deref().and_then(contains_pattern);
    let limit = query.effective_limit();
    let offset = query.offset();
    let (root, folder_uids) = folder_filter(&query.folder_uids);
    let folders_wanted =
        query.kind != Some(HitKind::Dashboard) && query.tags.is_empty() && !query.starred;
    let dashboards_wanted =
        query.kind != Some(HitKind::Folder) && !(query.starred && query.user_id.is_none());

    let mut hits = Vec::new();
    let mut folder_total = 0;
    if folders_wanted {
        let mut select = folder::Entity::find().filter(folder::Column::OrgId.eq(query.org_id.0));
        if let Some(pattern) = &pattern {
            select = select.filter(
                Expr::col((folder::Entity, folder::Column::TitleLower)).like(like(pattern)),
            );
        }
        if !query.folder_uids.is_empty() {
            select = select.filter(in_folders(folder::Column::ParentUid, root, &folder_uids));
        }
        if !query.uids.is_empty() {
            select = select.filter(folder::Column::Uid.is_in(query.uids.clone()));
        }
        if let Some(access) = &query.access {
            select = select
                .filter(folder::Column::Uid.is_in(access.folders.iter().map(|uid| uid.as_str())));
        }
        folder_total = select.clone().count(conn).await?;
        if offset < folder_total {
            let rows = ordered(select, folder::Column::TitleLower, folder::Column::Title)
                .order_by_asc(folder::Column::Id)
                .offset(offset)
                .limit(limit)
                .all(conn)
                .await?;
            for row in rows {
                hits.push(SearchHit {
                    kind: HitKind::Folder,
                    id: row.id,
                    slug: crate::slugify(&row.title),
                    uid: row.uid,
                    title: row.title,
                    tags: Vec::new(),
                    is_starred: false,
                    folder: row.parent_uid.map(|uid| FolderSummary {
                        id: crate::FolderId(0),
                        uid: crate::FolderUid::from(uid),
                        title: String::new(),
                    }),
                });
            }
        }
    }

    let room = limit.saturating_sub(hits.len() as u64);
    if dashboards_wanted && room > 0 {
        let mut select = dashboard::Entity::find()
            .select_only()
            .columns([
                dashboard::Column::Id,
                dashboard::Column::Uid,
                dashboard::Column::FolderUid,
                dashboard::Column::Title,
                dashboard::Column::Slug,
            ])
            .filter(dashboard::Column::OrgId.eq(query.org_id.0));
        if let Some(pattern) = &pattern {
            select = select.filter(
                Expr::col((dashboard::Entity, dashboard::Column::TitleLower)).like(like(pattern)),
            );
        }
        if !query.folder_uids.is_empty() {
            select = select.filter(in_folders(dashboard::Column::FolderUid, root, &folder_uids));
        }
        if !query.uids.is_empty() {
            select = select.filter(dashboard::Column::Uid.is_in(query.uids.clone()));
        }
        if let Some(access) = &query.access {
            select = select.filter(visible_dashboards(query, access));
        }
        let mut tags: Vec<&String> = query.tags.iter().filter(|t| !t.is_empty()).collect();
        tags.sort();
        tags.dedup();
        if !tags.is_empty() {
            // One subquery for all the tags: a dashboard has each tag once, so carrying
            // them all means as many matching rows as tags. One IN per tag made MariaDB
            // read every dashboard with the first tag before it looked at the second.
            let wanted = tags.len() as i64;
            select = select.filter(
                dashboard::Column::Id.in_subquery(
                    Query::select()
                        .column(dashboard_tag::Column::DashboardId)
                        .from(dashboard_tag::Entity)
                        .and_where(Expr::col(dashboard_tag::Column::OrgId).eq(query.org_id.0))
                        .and_where(
                            Expr::col(dashboard_tag::Column::Term)
                                .is_in(tags.iter().map(|tag| tag.as_str())),
                        )
                        .group_by_col(dashboard_tag::Column::DashboardId)
                        .and_having(Expr::col(dashboard_tag::Column::Id).count().eq(wanted))
                        .to_owned(),
                ),
            );
        }
        if query.starred
            && let Some(user) = query.user_id
        {
            select = select.filter(
                dashboard::Column::Id.in_subquery(
                    Query::select()
                        .column(star::Column::DashboardId)
                        .from(star::Entity)
                        .and_where(Expr::col(star::Column::UserId).eq(user.0))
                        .to_owned(),
                ),
            );
        }
        let rows: Vec<(i64, String, Option<String>, String, String)> = ordered(
            select,
            dashboard::Column::TitleLower,
            dashboard::Column::Title,
        )
        .order_by_asc(dashboard::Column::Id)
        .offset(offset.saturating_sub(folder_total))
        .limit(room)
        .into_tuple()
        .all(conn)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
        let mut tags_by_id: HashMap<i64, Vec<String>> = HashMap::new();
        if !ids.is_empty() {
            let tag_rows: Vec<(i64, String)> = dashboard_tag::Entity::find()
                .select_only()
                .column(dashboard_tag::Column::DashboardId)
                .column(dashboard_tag::Column::Term)
                .filter(dashboard_tag::Column::DashboardId.is_in(ids.clone()))
                .order_by_asc(dashboard_tag::Column::Term)
                .into_tuple()
                .all(conn)
                .await?;
            for (id, term) in tag_rows {
                tags_by_id.entry(id).or_default().push(term);
            }
        }
        let starred: HashSet<i64> = match query.user_id {
            Some(user) if !ids.is_empty() => star::Entity::find()
                .select_only()
                .column(star::Column::DashboardId)
                .filter(star::Column::UserId.eq(user.0))
                .filter(star::Column::DashboardId.is_in(ids))
                .into_tuple::<i64>()
                .all(conn)
                .await?
                .into_iter()
                .collect(),
            _ => HashSet::new(),
        };
        for (id, uid, folder_uid, title, slug) in rows {
            hits.push(SearchHit {
                kind: HitKind::Dashboard,
                id,
                uid,
                title,
                slug,
                tags: tags_by_id.remove(&id).unwrap_or_default(),
                is_starred: starred.contains(&id),
                folder: folder_uid.map(|uid| FolderSummary {
                    id: crate::FolderId(0),
                    uid: crate::FolderUid::from(uid),
                    title: String::new(),
                }),
            });
        }
    }

    // Fill in the folders the hits are in, in one query.
    let wanted: Vec<String> = hits
        .iter()
        .filter_map(|hit| hit.folder.as_ref().map(|f| f.uid.as_str().to_owned()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !wanted.is_empty() {
        let folders: HashMap<String, FolderSummary> = folder::Entity::find()
            .filter(folder::Column::OrgId.eq(query.org_id.0))
            .filter(folder::Column::Uid.is_in(wanted))
            .all(conn)
            .await?
            .into_iter()
            .map(|row| (row.uid.clone(), to_folder_summary(row)))
            .collect();
        for hit in &mut hits {
            // A folder that vanished between the queries shows as the root.
            hit.folder = hit
                .folder
                .take()
                .and_then(|f| folders.get(f.uid.as_str()).cloned());
        }
    }
    Ok(hits)
}

fn ordered<E, C>(select: Select<E>, lower_title: C, title: C) -> Select<E>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    select.order_by_asc(lower_title).order_by_asc(title)
}

/// Splits Grafana's `folderUIDs` into "the root is included" and the real uids.
fn folder_filter(uids: &[String]) -> (bool, Vec<String>) {
    let mut root = false;
    let mut real = Vec::new();
    for uid in uids {
        let uid = uid.trim();
        if uid.is_empty() || uid == ROOT_FOLDER_UID {
            root = true;
        } else {
            real.push(uid.to_owned());
        }
    }
    (root, real)
}

fn in_folders(column: impl ColumnTrait, root: bool, uids: &[String]) -> Condition {
    let mut condition = Condition::any();
    if root {
        condition = condition.add(column.is_null());
    }
    if !uids.is_empty() {
        condition = condition.add(column.is_in(uids.to_vec()));
    }
    condition
}

/// `%<query lower-cased, with % _ ! escaped by !>%`, or `None` for an empty query.
fn contains_pattern(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in lower(query).chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Some(pattern)
}

fn like(pattern: &str) -> LikeExpr {
    LikeExpr::new(pattern).escape('!')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_matches_literally() {
        assert_eq!(contains_pattern(""), None);
        assert_eq!(contains_pattern("CPU"), Some("%cpu%".to_owned()));
        assert_eq!(
            contains_pattern("100%_done!"),
            Some("%100!%!_done!!%".to_owned())
        );
    }

    #[test]
    fn general_and_empty_name_the_root() {
        let uids = ["general".to_owned(), "abc".to_owned(), String::new()];
        assert_eq!(folder_filter(&uids), (true, vec!["abc".to_owned()]));
    }
}
