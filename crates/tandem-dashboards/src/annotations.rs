//! Annotations: a point or a region of time in an org, optionally on a dashboard and
//! panel, with text and tags (Grafana's annotations), shared by every instance.

use time::OffsetDateTime;

use crate::{Error, OrgId, Result, UserId};

/// The longest annotation text stored.
pub const MAX_ANNOTATION_TEXT: usize = 10_000;
/// The most tags an annotation carries.
pub const MAX_ANNOTATION_TAGS: usize = 100;
/// The longest tag stored.
pub const MAX_ANNOTATION_TAG_LEN: usize = 190;
/// The most annotations a query answers.
pub const MAX_ANNOTATION_LIMIT: u64 = 5_000;

/// One annotation as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// Its id, unique across orgs.
    pub id: i64,
    /// Its org.
    pub org_id: OrgId,
    /// The dashboard it is on; 0 for none.
    pub dashboard_id: i64,
    /// The panel it is on; 0 for none.
    pub panel_id: i64,
    /// Who made it; 0 for the system.
    pub user_id: UserId,
    /// The alert rule whose state change it records; 0 for a user's annotation.
    pub alert_id: i64,
    /// The alert state before the change.
    pub prev_state: String,
    /// The alert state after the change.
    pub new_state: String,
    /// Its text.
    pub text: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Extra JSON (Grafana's `data`).
    pub data: serde_json::Value,
    /// Start, in milliseconds since the epoch.
    pub time: i64,
    /// End, in milliseconds; equal to `time` for a point.
    pub time_end: i64,
    /// When it was made.
    pub created: OffsetDateTime,
    /// When it was last changed.
    pub updated: OffsetDateTime,
}

/// A new annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAnnotation {
    /// Its org.
    pub org_id: OrgId,
    /// The dashboard it is on (checked by the caller); 0 for none.
    pub dashboard_id: i64,
    /// The panel; 0 for none.
    pub panel_id: i64,
    /// Who makes it.
    pub user_id: UserId,
    /// Its text, which must not be empty.
    pub text: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Start in milliseconds; 0 for now.
    pub time: i64,
    /// End in milliseconds; 0 for the start.
    pub time_end: i64,
}

/// A change to an annotation; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnotationPatch {
    /// New text (must not be empty).
    pub text: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New start.
    pub time: Option<i64>,
    /// New end.
    pub time_end: Option<i64>,
}

/// Which annotations a query wants; every filter is optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationQuery {
    /// The org.
    pub org_id: OrgId,
    /// Only those ending at or after this time (ms).
    pub from: Option<i64>,
    /// Only those starting at or before this time (ms).
    pub to: Option<i64>,
    /// Only those made by this user.
    pub user_id: Option<i64>,
    /// Only those on this dashboard.
    pub dashboard_id: Option<i64>,
    /// Only those on this panel.
    pub panel_id: Option<i64>,
    /// `Some(true)`: alert state changes only; `Some(false)`: users' annotations only.
    pub alerts: Option<bool>,
    /// Only the state changes of this alert rule (by its numeric id).
    pub alert_id: Option<i64>,
    /// Only those with all of these tags (any of them with `match_any`).
    pub tags: Vec<String>,
    /// See `tags`.
    pub match_any: bool,
    /// At most this many, newest first (Grafana's default is 100).
    pub limit: u64,
}

/// A tag and how many annotations of the org carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationTag {
    /// The tag.
    pub tag: String,
    /// How many annotations carry it.
    pub count: u64,
}

/// Persistence of annotations; every write is one transaction.
#[async_trait::async_trait]
pub trait AnnotationStore: Send + Sync {
    /// Stores a new annotation; returns it.
    async fn create_annotation(&self, new: NewAnnotation) -> Result<Annotation>;
    /// The annotation `id` of `org`.
    async fn get_annotation(&self, org: OrgId, id: i64) -> Result<Option<Annotation>>;
    /// Changes what `patch` sets, under a row lock, so concurrent edits of one annotation
    /// each apply whole; `AnnotationNotFound` when it does not exist.
    async fn update_annotation(
        &self,
        org: OrgId,
        id: i64,
        patch: AnnotationPatch,
    ) -> Result<Annotation>;
    /// Deletes it with its tags; `AnnotationNotFound` when it does not exist.
    async fn delete_annotation(&self, org: OrgId, id: i64) -> Result<()>;
    /// The annotations `query` selects, newest first.
    async fn find_annotations(&self, query: &AnnotationQuery) -> Result<Vec<Annotation>>;
    /// The org's tags containing `search` (all with an empty one), most used first.
    async fn annotation_tags(
        &self,
        org: OrgId,
        search: &str,
        limit: u64,
    ) -> Result<Vec<AnnotationTag>>;
}

/// Refuses empty or over-long text, too many or over-long tags, and negative times.
pub(crate) fn check_parts(
    text: Option<&str>,
    tags: Option<&[String]>,
    times: &[i64],
) -> Result<()> {
    let input = |err| Error::Storage(tandem_storage::Error::Input(err));
    if let Some(text) = text {
        if text.trim().is_empty() {
            return Err(Error::InvalidInput(
                "text field should not be empty".to_owned(),
            ));
        }
        tandem_storage::input::check_bounded_text("text", text, MAX_ANNOTATION_TEXT)
            .map_err(input)?;
    }
    if let Some(tags) = tags {
        tandem_storage::input::check_count("tags", tags.len(), MAX_ANNOTATION_TAGS)
            .map_err(input)?;
        for tag in tags {
            tandem_storage::input::check_bounded_text("tags", tag, MAX_ANNOTATION_TAG_LEN)
                .map_err(input)?;
        }
    }
    for &time in times {
        tandem_storage::input::check_range("time", i128::from(time), 0, i128::from(i64::MAX / 2))
            .map_err(input)?;
    }
    Ok(())
}

/// Trimmed, non-empty, sorted and without duplicates.
pub(crate) fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .iter()
        .map(|tag| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}
