//! The sea-orm [`AnnotationStore`], over the `annotation` and `annotation_tag` tables.
//!
//! An edit reads its row locked by primary key (once a plain read found it, so no index
//! gap is locked on MySQL/MariaDB) and writes the row and its tags in one transaction.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_storage::{from_ms, now_ms};

use crate::annotations::{
    Annotation, AnnotationPatch, AnnotationQuery, AnnotationStore, AnnotationTag,
    MAX_ANNOTATION_LIMIT, NewAnnotation, check_parts, clean_tags,
};
use crate::sql::SqlDashboardStore;
use crate::sql::entity::{annotation, annotation_tag};
use crate::{Error, OrgId, Result, UserId};

#[async_trait::async_trait]
impl AnnotationStore for SqlDashboardStore {
    async fn create_annotation(&self, new: NewAnnotation) -> Result<Annotation> {
        check_parts(Some(&new.text), Some(&new.tags), &[new.time, new.time_end])?;
        let tags = clean_tags(&new.tags);
        let (new, tags) = (&new, &tags);
        self.db
            .transaction(|tx| async move {
                let now = now_ms();
                let time = if new.time == 0 { now } else { new.time };
                let time_end = if new.time_end == 0 {
                    time
                } else {
                    Ord::max(new.time_end, time)
                };
                let row = annotation::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(new.org_id.0),
                    dashboard_id: ActiveValue::Set(new.dashboard_id),
                    panel_id: ActiveValue::Set(new.panel_id),
                    user_id: ActiveValue::Set(new.user_id.0),
                    alert_id: ActiveValue::Set(0),
                    prev_state: ActiveValue::Set(String::new()),
                    new_state: ActiveValue::Set(String::new()),
                    text: ActiveValue::Set(new.text.clone()),
                    data: ActiveValue::Set("{}".to_owned()),
                    epoch: ActiveValue::Set(time),
                    epoch_end: ActiveValue::Set(time_end),
                    version: ActiveValue::Set(1),
                    created: ActiveValue::Set(now),
                    updated: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await?;
                write_tags(&*tx, &row, tags, false).await?;
                Ok(to_annotation(row, tags.clone()))
            })
            .await
    }

    async fn get_annotation(&self, org: OrgId, id: i64) -> Result<Option<Annotation>> {
        let found = self
            .db
            .read(|conn| async move {
                let Some(row) = annotation::Entity::find_by_id(id)
                    .filter(annotation::Column::OrgId.eq(org.0))
                    .one(&conn)
                    .await?
                else {
                    return Ok(None);
                };
                let tags = tags_of(&conn, &[row.id]).await?;
                Ok(Some((row, tags)))
            })
            .await?;
        Ok(found.map(|(row, mut tags)| {
            let id = row.id;
            to_annotation(row, tags.remove(&id).unwrap_or_default())
        }))
    }

    async fn update_annotation(
        &self,
        org: OrgId,
        id: i64,
        patch: AnnotationPatch,
    ) -> Result<Annotation> {
        let times: Vec<i64> = [patch.time, patch.time_end].into_iter().flatten().collect();
        check_parts(patch.text.as_deref(), patch.tags.as_deref(), &times)?;
        let tags = patch.tags.as_deref().map(clean_tags);
        let (patch, tags) = (&patch, &tags);
        self.db
            .transaction(|tx| async move {
                let exists = annotation::Entity::find_by_id(id)
                    .filter(annotation::Column::OrgId.eq(org.0))
                    .one(&*tx)
                    .await?
                    .is_some();
                let row = if exists {
                    annotation::Entity::find_by_id(id)
                        .lock_exclusive()
                        .one(&*tx)
                        .await?
                } else {
                    None
                };
                let row = row.ok_or(Error::AnnotationNotFound)?;
                let time = patch.time.unwrap_or(row.epoch);
                let time_end = Ord::max(patch.time_end.unwrap_or(row.epoch_end), time);
                let version = row.version + 1;
                let mut active: annotation::ActiveModel = row.into();
                if let Some(text) = &patch.text {
                    active.text = ActiveValue::Set(text.clone());
                }
                active.epoch = ActiveValue::Set(time);
                active.epoch_end = ActiveValue::Set(time_end);
                active.version = ActiveValue::Set(version);
                active.updated = ActiveValue::Set(now_ms());
                let row = active.update(&*tx).await?;
                let tags = match tags {
                    Some(tags) => {
                        write_tags(&*tx, &row, tags, true).await?;
                        tags.clone()
                    }
                    None => tags_of(&*tx, &[row.id])
                        .await?
                        .remove(&row.id)
                        .unwrap_or_default(),
                };
                Ok(to_annotation(row, tags))
            })
            .await
    }

    async fn delete_annotation(&self, org: OrgId, id: i64) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                let deleted = annotation::Entity::delete_many()
                    .filter(annotation::Column::Id.eq(id))
                    .filter(annotation::Column::OrgId.eq(org.0))
                    .exec(&*tx)
                    .await?;
                if deleted.rows_affected == 0 {
                    return Err(Error::AnnotationNotFound);
                }
                annotation_tag::Entity::delete_many()
                    .filter(annotation_tag::Column::AnnotationId.eq(id))
                    .exec(&*tx)
                    .await?;
                Ok(())
            })
            .await
    }

    async fn find_annotations(&self, query: &AnnotationQuery) -> Result<Vec<Annotation>> {
        let input = |err| Error::Storage(tandem_storage::Error::Input(err));
        tandem_storage::input::check_count("tags", query.tags.len(), 1000).map_err(input)?;
        for tag in &query.tags {
            tandem_storage::input::check_text("tags", tag).map_err(input)?;
        }
        let limit = query.limit.clamp(1, MAX_ANNOTATION_LIMIT);
        let tags = clean_tags(&query.tags);
        let (tags, query) = (&tags, query);
        let (rows, mut tag_map) = self
            .db
            .read(|conn| async move {
                let mut select =
                    annotation::Entity::find().filter(annotation::Column::OrgId.eq(query.org_id.0));
                if let Some(from) = query.from {
                    select = select.filter(annotation::Column::EpochEnd.gte(from));
                }
                if let Some(to) = query.to {
                    select = select.filter(annotation::Column::Epoch.lte(to));
                }
                if let Some(user) = query.user_id {
                    select = select.filter(annotation::Column::UserId.eq(user));
                }
                if let Some(dashboard) = query.dashboard_id {
                    select = select.filter(annotation::Column::DashboardId.eq(dashboard));
                }
                if let Some(panel) = query.panel_id {
                    select = select.filter(annotation::Column::PanelId.eq(panel));
                }
                if let Some(alert) = query.alert_id {
                    select = select.filter(annotation::Column::AlertId.eq(alert));
                }
                match query.alerts {
                    Some(true) => select = select.filter(annotation::Column::AlertId.gt(0)),
                    Some(false) => select = select.filter(annotation::Column::AlertId.eq(0)),
                    None => {}
                }
                if !tags.is_empty() {
                    let mut tagged = Query::select();
                    tagged
                        .column(annotation_tag::Column::AnnotationId)
                        .from(annotation_tag::Entity)
                        .and_where(Expr::col(annotation_tag::Column::OrgId).eq(query.org_id.0))
                        .and_where(Expr::col(annotation_tag::Column::Term).is_in(tags.clone()))
                        .group_by_col(annotation_tag::Column::AnnotationId);
                    if !query.match_any {
                        let wanted = i64::try_from(tags.len()).unwrap_or(i64::MAX);
                        tagged
                            .and_having(Expr::col(annotation_tag::Column::Term).count().eq(wanted));
                    }
                    select = select.filter(annotation::Column::Id.in_subquery(tagged.to_owned()));
                }
                let rows = select
                    .order_by_desc(annotation::Column::Epoch)
                    .order_by_desc(annotation::Column::EpochEnd)
                    .order_by_desc(annotation::Column::Id)
                    .limit(limit)
                    .all(&conn)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
                let tags = tags_of(&conn, &ids).await?;
                Ok((rows, tags))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let tags = tag_map.remove(&row.id).unwrap_or_default();
                to_annotation(row, tags)
            })
            .collect())
    }

    async fn annotation_tags(
        &self,
        org: OrgId,
        search: &str,
        limit: u64,
    ) -> Result<Vec<AnnotationTag>> {
        tandem_storage::input::check_pattern("tag", search)
            .map_err(|err| Error::Storage(tandem_storage::Error::Input(err)))?;
        let limit = usize::try_from(limit.clamp(1, MAX_ANNOTATION_LIMIT)).unwrap_or(usize::MAX);
        // Tags per org are few; the text filter runs here, the same on every engine.
        let mut rows: Vec<(String, i64)> = self
            .db
            .read(|conn| async move {
                annotation_tag::Entity::find()
                    .select_only()
                    .column(annotation_tag::Column::Term)
                    .column_as(annotation_tag::Column::Id.count(), "count")
                    .filter(annotation_tag::Column::OrgId.eq(org.0))
                    .group_by(annotation_tag::Column::Term)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        rows.retain(|(tag, _)| tag.contains(search));
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(limit);
        Ok(rows
            .into_iter()
            .map(|(tag, count)| AnnotationTag {
                tag,
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect())
    }
}

/// Replaces (with `replace`) or writes the tags of `row`.
async fn write_tags(
    conn: &impl ConnectionTrait,
    row: &annotation::Model,
    tags: &[String],
    replace: bool,
) -> Result<(), sea_orm::DbErr> {
    if replace {
        annotation_tag::Entity::delete_many()
            .filter(annotation_tag::Column::AnnotationId.eq(row.id))
            .exec(conn)
            .await?;
    }
    if tags.is_empty() {
        return Ok(());
    }
    annotation_tag::Entity::insert_many(tags.iter().map(|term| annotation_tag::ActiveModel {
        id: ActiveValue::NotSet,
        org_id: ActiveValue::Set(row.org_id),
        annotation_id: ActiveValue::Set(row.id),
        term: ActiveValue::Set(term.clone()),
    }))
    .exec(conn)
    .await?;
    Ok(())
}

/// The sorted tags of each of `ids`.
async fn tags_of(
    conn: &impl ConnectionTrait,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, sea_orm::DbErr> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, String)> = annotation_tag::Entity::find()
        .select_only()
        .column(annotation_tag::Column::AnnotationId)
        .column(annotation_tag::Column::Term)
        .filter(annotation_tag::Column::AnnotationId.is_in(ids.to_vec()))
        .order_by_asc(annotation_tag::Column::Term)
        .into_tuple()
        .all(conn)
        .await?;
    for (id, term) in rows {
        out.entry(id).or_default().push(term);
    }
    Ok(out)
}

fn to_annotation(row: annotation::Model, tags: Vec<String>) -> Annotation {
    Annotation {
        id: row.id,
        org_id: OrgId(row.org_id),
        dashboard_id: row.dashboard_id,
        panel_id: row.panel_id,
        user_id: UserId(row.user_id),
        alert_id: row.alert_id,
        prev_state: row.prev_state,
        new_state: row.new_state,
        text: row.text,
        tags,
        data: serde_json::from_str(&row.data).unwrap_or_else(|_| serde_json::json!({})),
        time: row.epoch,
        time_end: row.epoch_end,
        created: from_ms(row.created),
        updated: from_ms(row.updated),
    }
}
