//! Library elements: panels (and variables) kept once and used by many dashboards, with
//! Grafana 12's rules.
//!
//! An element lives in a folder (`None` is General) and is unique by uid in its org and
//! by name and kind in its folder. An edit is a compare-and-swap on its version, so of two
//! instances patching one version exactly one wins. Which dashboards use an element (its
//! connections) is not written by callers: every dashboard save records the elements its
//! panels name (`libraryPanel.uid`, rows' panels included) in the save's own transaction,
//! and a dashboard's deletion deletes its connections, so an element with connections is
//! in use by a dashboard that exists, and cannot be deleted.
//!
//! Permissions are not checked here: `tandem-http` asks the folder's before calling.

use serde_json::{Map, Value};
use tandem_storage::input;

use crate::{DashboardId, DashboardUid, Error, FolderSummary, FolderUid, OrgId, Result, UserId};

/// The longest element name (the column's width, as Grafana's).
pub const MAX_LIBRARY_NAME_LEN: usize = 150;
/// The longest panel type taken from a model's `type`.
pub const MAX_LIBRARY_TYPE_LEN: usize = 40;
/// The longest description taken from a model's `description`.
pub const MAX_LIBRARY_DESCRIPTION_LEN: usize = 2048;
/// Elements per page when a search names no `perPage` (Grafana's default).
pub const DEFAULT_LIBRARY_PER_PAGE: u64 = 100;
/// The most elements one page answers (the input policy's page size).
pub const MAX_LIBRARY_PER_PAGE: u64 = 5000;
/// The most folder uids, types or uids one search filters by.
pub const MAX_LIBRARY_FILTERS: usize = 1000;

/// What an element is: Grafana's `kind` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LibraryKind {
    /// A library panel (1).
    Panel,
    /// A library variable (2).
    Variable,
}

impl LibraryKind {
    /// The kind Grafana numbers `code`; `UnsupportedLibraryKind` otherwise.
    pub fn from_code(code: i64) -> Result<LibraryKind> {
        match code {
            1 => Ok(LibraryKind::Panel),
            2 => Ok(LibraryKind::Variable),
            _ => Err(Error::UnsupportedLibraryKind),
        }
    }

    /// Grafana's number for the kind.
    pub fn code(self) -> i64 {
        match self {
            LibraryKind::Panel => 1,
            LibraryKind::Variable => 2,
        }
    }
}

/// Who created or last changed an element, or made a connection.
pub type Author = UserId;

/// A library element with what Grafana's `meta` tells about it.
#[derive(Clone, Debug, PartialEq)]
pub struct LibraryElement {
    /// Its id.
    pub id: i64,
    /// Its org.
    pub org_id: OrgId,
    /// Its folder; `None` is General.
    pub folder: Option<FolderSummary>,
    /// Its uid.
    pub uid: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: LibraryKind,
    /// The panel type, from the model's `type`.
    pub kind_type: String,
    /// Its description, from the model's `description`.
    pub description: String,
    /// The panel (or variable) JSON, an object.
    pub model: Value,
    /// Its version, from 1, counted up by every change.
    pub version: i64,
    /// How many dashboards use it.
    pub connected_dashboards: i64,
    /// When it was created, milliseconds since the epoch.
    pub created_ms: i64,
    /// When it was last changed.
    pub updated_ms: i64,
    /// Who created it.
    pub created_by: Author,
    /// Who changed it last.
    pub updated_by: Author,
}

/// An element to create (`POST /api/library-elements`).
#[derive(Clone, Debug)]
pub struct NewLibraryElement {
    /// Its org.
    pub org_id: OrgId,
    /// Its folder; `None` is General.
    pub folder_uid: Option<FolderUid>,
    /// Its uid; `None` draws one.
    pub uid: Option<String>,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: LibraryKind,
    /// The model, a JSON object.
    pub model: Value,
    /// Who creates it.
    pub user_id: UserId,
}

/// A change to an element (`PATCH /api/library-elements/:uid`): what is `None` stays.
#[derive(Clone, Debug)]
pub struct LibraryElementPatch {
    /// Its org.
    pub org_id: OrgId,
    /// The element's uid now.
    pub uid: String,
    /// The version the caller read: a compare-and-swap.
    pub version: i64,
    /// The kind the caller says it is (Grafana requires it, and keeps the stored one).
    pub kind: LibraryKind,
    /// A new uid.
    pub new_uid: Option<String>,
    /// A new name.
    pub name: Option<String>,
    /// A new model.
    pub model: Option<Value>,
    /// A new folder: `Some(None)` is General.
    pub folder_uid: Option<Option<FolderUid>>,
    /// Who changes it.
    pub user_id: UserId,
}

/// The order of a search: by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LibrarySort {
    /// A to Z (Grafana's `alpha-asc`, the default).
    #[default]
    AlphaAsc,
    /// Z to A (`alpha-desc`).
    AlphaDesc,
}

/// A search of an org's elements (`GET /api/library-elements`).
#[derive(Clone, Debug)]
pub struct LibrarySearch {
    /// The org.
    pub org_id: OrgId,
    /// Text the name or the description contains, any case; empty is any.
    pub search: String,
    /// Only this kind.
    pub kind: Option<LibraryKind>,
    /// Only these panel types; empty is any.
    pub types: Vec<String>,
    /// Not this uid.
    pub exclude_uid: Option<String>,
    /// Only these folders (`None` in the list is General); `None` is every folder.
    pub folders: Option<Vec<Option<FolderUid>>>,
    /// The folders the caller may view, `None` for all of them; General is viewable when
    /// `general_viewable`.
    pub viewable: Option<Vec<FolderUid>>,
    /// Whether the caller may view General's elements.
    pub general_viewable: bool,
    /// The order.
    pub sort: LibrarySort,
    /// The page, from 1 (0 is 1).
    pub page: u64,
    /// Elements per page (0 is the default, at most [`MAX_LIBRARY_PER_PAGE`]).
    pub per_page: u64,
}

impl LibrarySearch {
    /// Refuses a search the input policy does not accept.
    pub fn check(&self) -> Result<()> {
        input::check_pattern("searchString", &self.search).map_err(invalid)?;
        input::check_count("typeFilter", self.types.len(), MAX_LIBRARY_FILTERS).map_err(invalid)?;
        if let Some(folders) = &self.folders {
            input::check_count("folderFilterUIDs", folders.len(), MAX_LIBRARY_FILTERS)
                .map_err(invalid)?;
        }
        input::check_range(
            "perPage",
            i128::from(self.per_page),
            0,
            i128::from(MAX_LIBRARY_PER_PAGE),
        )
        .map_err(invalid)?;
        Ok(())
    }

    /// The page size in force.
    pub fn page_size(&self) -> u64 {
        if self.per_page == 0 {
            DEFAULT_LIBRARY_PER_PAGE
        } else {
            self.per_page.min(MAX_LIBRARY_PER_PAGE)
        }
    }

    /// The page in force, from 1.
    pub fn page_number(&self) -> u64 {
        self.page.max(1)
    }
}

/// One page of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct LibraryPage {
    /// How many elements match, on every page.
    pub total_count: u64,
    /// This page's.
    pub elements: Vec<LibraryElement>,
}

/// A dashboard that uses an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryConnection {
    /// The connection's id.
    pub id: i64,
    /// The element's id.
    pub element_id: i64,
    /// Its kind (1, a dashboard).
    pub kind: i64,
    /// The dashboard's id.
    pub dashboard_id: DashboardId,
    /// The dashboard's uid.
    pub dashboard_uid: DashboardUid,
    /// The dashboard's folder; `None` is General.
    pub dashboard_folder: Option<FolderUid>,
    /// When the dashboard save that made it ran, milliseconds since the epoch.
    pub created_ms: i64,
    /// Who saved.
    pub created_by: Author,
}

/// Persistence of library elements.
///
/// Every write is one transaction. Elements are scoped by org: another org's uid is not
/// found. The connections are written by the dashboard saves of the same store.
#[async_trait::async_trait]
pub trait LibraryElementStore: Send + Sync {
    /// Creates an element with version 1. A uid breaking Grafana's rules is `InvalidUid`
    /// or `UidTooLong`; a uid or a name and kind already in the folder
    /// `LibraryElementExists`; a missing folder `FolderNotFound`; a bad name or model
    /// `InvalidInput`.
    async fn create_library_element(&self, new: NewLibraryElement) -> Result<LibraryElement>;
    /// The element with this uid in the org.
    async fn library_element(&self, org: OrgId, uid: &str) -> Result<Option<LibraryElement>>;
    /// The org's elements with this name, in every folder, by folder.
    async fn library_elements_named(&self, org: OrgId, name: &str) -> Result<Vec<LibraryElement>>;
    /// One page of the org's elements matching the search, by name.
    async fn search_library_elements(&self, search: LibrarySearch) -> Result<LibraryPage>;
    /// Changes an element when its version is still `patch.version`
    /// (`LibraryElementVersionMismatch` otherwise) and counts the next version.
    /// `LibraryElementNotFound`; the rules of creation for what changes.
    async fn patch_library_element(&self, patch: LibraryElementPatch) -> Result<LibraryElement>;
    /// Deletes an element no dashboard uses; its id. `LibraryElementNotFound`;
    /// `LibraryElementHasConnections` when a dashboard uses it.
    async fn delete_library_element(&self, org: OrgId, uid: &str) -> Result<i64>;
    /// The dashboards that use the element, by dashboard id. `LibraryElementNotFound`.
    async fn library_connections(&self, org: OrgId, uid: &str) -> Result<Vec<LibraryConnection>>;
}

/// A model and the fields Grafana keeps in step with it: the checked model, its `type`
/// and its `description`.
pub(crate) struct Synced {
    pub(crate) model: Map<String, Value>,
    pub(crate) kind_type: String,
    pub(crate) description: String,
}

/// Checks a name: not empty once trimmed, at most [`MAX_LIBRARY_NAME_LEN`] characters;
/// the trimmed name.
pub(crate) fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput(
            "library element name cannot be empty".to_owned(),
        ));
    }
    input::check_bounded_text("name", name, MAX_LIBRARY_NAME_LEN).map_err(invalid)?;
    Ok(name.to_owned())
}

/// Checks a model and takes its `type` and `description` as Grafana does: a model without
/// them gets the element's (`fallback_type`, `fallback_description`) written into it; a
/// variable's model carries the element's name; a panel's `libraryPanel.uid`, when it
/// has one, is the element's uid.
pub(crate) fn sync_model(
    model: &Value,
    kind: LibraryKind,
    name: &str,
    uid: &str,
    fallback_type: &str,
    fallback_description: &str,
) -> Result<Synced> {
    let Value::Object(model) = model else {
        return Err(Error::InvalidInput(
            "model must be a JSON object".to_owned(),
        ));
    };
    let mut model = model.clone();
    let text = |key: &str, max: usize, fallback: &str| -> Result<String> {
        match model.get(key) {
            None | Some(Value::Null) => Ok(fallback.to_owned()),
            Some(Value::String(value)) => {
                input::check_bounded_text(format!("model.{key}"), value, max).map_err(invalid)?;
                Ok(value.clone())
            }
            Some(_) => Err(Error::InvalidInput(format!("model.{key} must be text"))),
        }
    };
    let kind_type = text("type", MAX_LIBRARY_TYPE_LEN, fallback_type)?;
    let description = text(
        "description",
        MAX_LIBRARY_DESCRIPTION_LEN,
        fallback_description,
    )?;
    model.insert("type".to_owned(), Value::from(kind_type.clone()));
    model.insert("description".to_owned(), Value::from(description.clone()));
    match kind {
        LibraryKind::Variable => {
            model.insert("name".to_owned(), Value::from(name));
        }
        LibraryKind::Panel => {
            if let Some(Value::Object(reference)) = model.get_mut("libraryPanel")
                && reference.contains_key("uid")
            {
                reference.insert("uid".to_owned(), Value::from(uid));
            }
        }
    }
    Ok(Synced {
        model,
        kind_type,
        description,
    })
}

/// The uids of the library panels a dashboard's JSON uses: `libraryPanel.uid` of each of
/// its `panels` and of the `panels` of its rows, as Grafana walks them; sorted, each once.
/// A reference without a usable uid names nothing.
pub(crate) fn referenced_uids(dashboard: &Map<String, Value>) -> Vec<String> {
    let mut uids = std::collections::BTreeSet::new();
    collect(dashboard.get("panels"), &mut uids, 0);
    uids.into_iter().collect()
}

fn collect(panels: Option<&Value>, uids: &mut std::collections::BTreeSet<String>, depth: u8) {
    let Some(Value::Array(panels)) = panels else {
        return;
    };
    for panel in panels {
        let Value::Object(panel) = panel else {
            continue;
        };
        if let Some(uid) = panel
            .get("libraryPanel")
            .and_then(|reference| reference.get("uid"))
            .and_then(Value::as_str)
            && crate::validate_uid(uid).is_ok()
            && !uid.is_empty()
        {
            uids.insert(uid.to_owned());
        }
        // Rows hold panels one level down; Grafana does not nest rows deeper.
        if depth == 0 && panel.get("type").and_then(Value::as_str) == Some("row") {
            collect(panel.get("panels"), uids, depth + 1);
        }
    }
}

fn invalid(err: input::InputError) -> Error {
    Error::InvalidInput(err.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn check_refs(dashboard: Value, expected: &[&str]) {
        let Value::Object(map) = dashboard else {
            panic!("not an object")
        };
        assert_eq!(referenced_uids(&map), expected);
    }

    #[test]
    fn references_are_found_in_panels_and_rows() {
        check_refs(json!({}), &[]);
        check_refs(json!({"panels": "nope"}), &[]);
        check_refs(
            json!({"panels": [
                {"id": 1, "libraryPanel": {"uid": "b"}},
                {"id": 2, "type": "row", "panels": [{"libraryPanel": {"uid": "a"}}, 7]},
                {"id": 3, "libraryPanel": {"uid": "b"}},
                {"id": 4, "libraryPanel": {"uid": 5}},
                {"id": 5, "libraryPanel": {"uid": ""}},
                {"id": 6, "libraryPanel": {"uid": "bad uid"}},
                {"id": 7, "libraryPanel": {}},
            ]}),
            &["a", "b"],
        );
    }

    #[test]
    fn models_are_synced_as_grafana_syncs_them() {
        let synced = sync_model(
            &json!({"type": "text", "libraryPanel": {"uid": "old"}}),
            LibraryKind::Panel,
            "N",
            "new",
            "",
            "",
        )
        .unwrap();
        assert_eq!(synced.kind_type, "text");
        assert_eq!(synced.description, "");
        assert_eq!(synced.model["libraryPanel"]["uid"], "new");
        assert_eq!(synced.model["description"], "");
        let kept = sync_model(&json!({}), LibraryKind::Variable, "N", "u", "graph", "d").unwrap();
        assert_eq!(kept.kind_type, "graph");
        assert_eq!(kept.model["name"], "N");
        assert!(sync_model(&json!([]), LibraryKind::Panel, "N", "u", "", "").is_err());
        assert!(sync_model(&json!({"type": 1}), LibraryKind::Panel, "N", "u", "", "").is_err());
        assert!(check_name("  ").is_err());
        assert_eq!(check_name(" a ").unwrap(), "a");
        assert!(check_name(&"x".repeat(151)).is_err());
    }
}
