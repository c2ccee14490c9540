use std::fmt;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, Result};

/// The longest uid Grafana accepts.
pub const MAX_UID_LEN: usize = 40;
/// The longest title Grafana accepts, in bytes.
pub const MAX_TITLE_LEN: usize = 5000;
/// The longest version message Grafana accepts, in characters.
pub const MAX_MESSAGE_LEN: usize = 500;

/// An organisation's id (the same number `tandem-sessions` uses; this crate does not depend
/// on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A user's id, as the identity domain numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl UserId {
    /// Who Grafana records as the author of what no user did (file provisioning): `-1`.
    pub const SYSTEM: UserId = UserId(-1);
}

/// A dashboard's numeric id (Grafana's legacy `id`), unique across orgs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DashboardId(pub i64);

/// A folder's numeric id, unique across orgs. Folder ids and dashboard ids are counted
/// separately, so one number may name both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FolderId(pub i64);

/// A dashboard's or folder's version: 1 when created, one more on every save.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub i64);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! uid_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Any string converts into one (`From`), so that a lookup with a malformed uid
        /// simply finds nothing; [`Self::parse`] checks Grafana's rules, and every write
        /// checks them again.
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A uid that passes [`validate_uid`].
            pub fn parse(uid: impl Into<String>) -> Result<$name> {
                let uid = uid.into();
                validate_uid(&uid)?;
                Ok($name(uid))
            }

            /// A fresh random uid in Grafana's style (see [`generate_uid`]).
            pub fn generate() -> $name {
                $name(generate_uid())
            }

            /// The uid as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The uid as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(uid: String) -> $name {
                $name(uid)
            }
        }

        impl From<&str> for $name {
            fn from(uid: &str) -> $name {
                $name(uid.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

uid_type!(
    /// A dashboard's uid: the stable name in its URL, unique in its org.
    DashboardUid
);
uid_type!(
    /// A folder's uid, unique in its org.
    FolderUid
);

/// Checks Grafana's uid rules: at most 40 characters, each of `[a-zA-Z0-9-_]`.
/// The empty string passes (it means "generate one" where a uid is optional).
pub fn validate_uid(uid: &str) -> Result<()> {
    if !uid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidUid);
    }
    if uid.len() > MAX_UID_LEN {
        return Err(Error::UidTooLong);
    }
    Ok(())
}

/// A fresh random uid: 14 characters, a lower-case letter then lower-case letters and
/// digits, in the range of lengths Grafana's own generators produce (9 to 14) and a valid
/// Kubernetes name, as Grafana's newer uids are.
pub fn generate_uid() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut uid = String::with_capacity(14);
    let mut pick = |from: &[u8]| {
        let at = rng.random_range(0..from.len());
        char::from(from.get(at).copied().unwrap_or(b'a'))
    };
    uid.push(pick(LETTERS));
    for _ in 1..14 {
        uid.push(pick(ALPHANUMERIC));
    }
    uid
}

/// Where a dashboard goes: Grafana's save body names its folder by `folderUid` or by the
/// older numeric `folderId`, where 0 (or nothing) is the root ("General").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FolderRef {
    /// The root.
    #[default]
    Root,
    /// The folder with this uid.
    Uid(FolderUid),
    /// The folder with this id.
    Id(FolderId),
}

impl FolderRef {
    /// The folder a Grafana save body names: a non-empty `folderUid` wins over `folderId`,
    /// a `folderId` of 0 is the root, and neither is the root too (Grafana moves a dashboard
    /// saved without a folder to the root).
    pub fn from_request(folder_uid: Option<&str>, folder_id: Option<i64>) -> FolderRef {
        match (folder_uid.map(str::trim), folder_id) {
            (Some(uid), _) if !uid.is_empty() => FolderRef::Uid(FolderUid::from(uid)),
            (_, Some(id)) if id > 0 => FolderRef::Id(FolderId(id)),
            _ => FolderRef::Root,
        }
    }
}

/// A dashboard save, as `POST /api/dashboards/db` describes it.
#[derive(Clone, Debug)]
pub struct SaveDashboard {
    /// The org it belongs to.
    pub org_id: OrgId,
    /// The dashboard JSON. Its `id` and `uid` say which dashboard to update (neither, or an
    /// unknown uid, creates one), its `version` is the version the caller read, and its
    /// `title` is required. Unknown fields are kept.
    pub dashboard: serde_json::Value,
    /// The folder to put it in.
    pub folder: FolderRef,
    /// Save even if someone else saved since `version` was read.
    pub overwrite: bool,
    /// The version message (at most 500 characters).
    pub message: String,
    /// Who saves.
    pub user_id: UserId,
}

/// The folder a dashboard is in, as a lookup or a search shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderSummary {
    /// Its id.
    pub id: FolderId,
    /// Its uid.
    pub uid: FolderUid,
    /// Its title.
    pub title: String,
}

/// How a dashboard was provisioned from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioning {
    /// The provider's `name` in its configuration file.
    pub provider: String,
    /// The file the dashboard came from (Grafana's `provisionedExternalId`).
    pub external_id: String,
    /// The SHA-256 of the file's content when last provisioned, in hex.
    pub checksum: String,
    /// Whether the provider lets the UI and the API save the dashboard
    /// (`allowUiUpdates`); when not, such saves fail with
    /// [`Error::ProvisionedDashboard`].
    pub allow_ui_updates: bool,
    /// When the file was last provisioned.
    pub updated: OffsetDateTime,
}

/// A stored dashboard.
#[derive(Clone, Debug, PartialEq)]
pub struct Dashboard {
    /// Its id.
    pub id: DashboardId,
    /// Its org.
    pub org_id: OrgId,
    /// Its uid.
    pub uid: DashboardUid,
    /// Its title, trimmed.
    pub title: String,
    /// Its URL slug, from the title by Grafana's rules ([`crate::slugify`]).
    pub slug: String,
    /// The full dashboard JSON, with `id`, `uid`, `title` and `version` set to the stored
    /// values.
    pub data: serde_json::Value,
    /// Its current version.
    pub version: Version,
    /// Its folder; `None` at the root.
    pub folder: Option<FolderSummary>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it was last saved.
    pub updated: OffsetDateTime,
    /// Who created it ([`UserId::SYSTEM`] for provisioning).
    pub created_by: UserId,
    /// Who saved it last.
    pub updated_by: UserId,
    /// Set when it was provisioned from a file.
    pub provisioning: Option<Provisioning>,
}

impl Dashboard {
    /// Whether the UI and the API may save it (not provisioned, or provisioned with
    /// `allowUiUpdates`): Grafana's `meta.canSave` before permissions.
    pub fn can_save(&self) -> bool {
        self.provisioning
            .as_ref()
            .is_none_or(|p| p.allow_ui_updates)
    }
}

/// What a dashboard deletion removed, for the answer and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedDashboard {
    /// Its id.
    pub id: DashboardId,
    /// Its uid.
    pub uid: DashboardUid,
    /// Its title.
    pub title: String,
    /// Its last version.
    pub version: Version,
}

/// One saved version of a dashboard, without its JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version row's id.
    pub id: i64,
    /// The dashboard's id.
    pub dashboard_id: DashboardId,
    /// The dashboard's uid.
    pub dashboard_uid: DashboardUid,
    /// The version this one replaced (0 for the first).
    pub parent_version: Version,
    /// The version restored by this save, if it was a restore.
    pub restored_from: Option<Version>,
    /// This version.
    pub version: Version,
    /// When it was saved.
    pub created: OffsetDateTime,
    /// Who saved it.
    pub created_by: UserId,
    /// The save's message.
    pub message: String,
}

/// One saved version of a dashboard with its JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct DashboardVersion {
    /// What the version is.
    pub info: VersionInfo,
    /// The dashboard JSON as saved then.
    pub data: serde_json::Value,
}

/// Which versions to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionQuery {
    /// At most this many; 0 means Grafana's default of 1000.
    pub limit: u64,
    /// Skip this many (Grafana's older `start`), when no continue token is given.
    pub start: u64,
    /// Continue after the page that returned this token.
    pub continue_token: Option<String>,
}

/// A page of versions, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionPage {
    /// The versions.
    pub versions: Vec<VersionInfo>,
    /// Pass it back to get the next page; `None` after the last one.
    pub continue_token: Option<String>,
}

/// A tag and how many dashboards of the org carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagCount {
    /// The tag.
    pub term: String,
    /// How many dashboards have it.
    pub count: u64,
}

/// A folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// Its id.
    pub id: FolderId,
    /// Its org.
    pub org_id: OrgId,
    /// Its uid.
    pub uid: FolderUid,
    /// Its title.
    pub title: String,
    /// The folder it is nested in; `None` at the root.
    pub parent_uid: Option<FolderUid>,
    /// Its version: 1 when created, one more on every update.
    pub version: Version,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it was last updated.
    pub updated: OffsetDateTime,
    /// Who created it.
    pub created_by: UserId,
    /// Who updated it last.
    pub updated_by: UserId,
}

/// A folder to create (`POST /api/folders`).
#[derive(Clone, Debug)]
pub struct CreateFolder {
    /// Its org.
    pub org_id: OrgId,
    /// Its uid; a fresh one when `None` or empty.
    pub uid: Option<FolderUid>,
    /// Its title.
    pub title: String,
    /// The folder to nest it in; the root when `None`.
    pub parent_uid: Option<FolderUid>,
    /// Who creates it.
    pub user_id: UserId,
}

/// A folder change (`PUT /api/folders/:uid`).
#[derive(Clone, Debug)]
pub struct UpdateFolder {
    /// Its org.
    pub org_id: OrgId,
    /// Which folder.
    pub uid: FolderUid,
    /// A new title; `None` keeps it.
    pub title: Option<String>,
    /// The version the caller read; required unless `overwrite`.
    pub version: Option<Version>,
    /// Update even if someone else did since `version` was read.
    pub overwrite: bool,
    /// Who updates it.
    pub user_id: UserId,
}

/// A folder move (`POST /api/folders/:uid/move`).
#[derive(Clone, Debug)]
pub struct MoveFolder {
    /// Its org.
    pub org_id: OrgId,
    /// Which folder.
    pub uid: FolderUid,
    /// Its new parent; `None` is the root.
    pub parent_uid: Option<FolderUid>,
    /// Who moves it.
    pub user_id: UserId,
}

/// What a folder deletion removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedFolder {
    /// The folder.
    pub folder: Folder,
    /// The folders that were nested in it, at any depth.
    pub subfolders: Vec<FolderUid>,
    /// The dashboards that were in it or its subfolders.
    pub dashboards: Vec<DeletedDashboard>,
}

/// What a search returns: dashboards, folders or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HitKind {
    /// A dashboard (`dash-db`).
    Dashboard,
    /// A folder (`dash-folder`).
    Folder,
}

impl HitKind {
    /// Grafana's spelling of the `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            HitKind::Dashboard => "dash-db",
            HitKind::Folder => "dash-folder",
        }
    }

    /// The kind Grafana's `type` parameter names; `None` for anything else.
    pub fn from_grafana(kind: &str) -> Option<HitKind> {
        match kind {
            "dash-db" => Some(HitKind::Dashboard),
            "dash-folder" => Some(HitKind::Folder),
            _ => None,
        }
    }
}

/// The default number of search hits per page.
pub const DEFAULT_SEARCH_LIMIT: u64 = 1000;
/// The largest number of search hits per page.
pub const MAX_SEARCH_LIMIT: u64 = 5000;
/// The most values a search filter (`tag`, `folderUIDs`, `dashboardUIDs`) can list.
pub const MAX_SEARCH_FILTERS: usize = 1000;

/// A search (`GET /api/search`). Every filter given must match.
#[derive(Clone, Debug)]
pub struct SearchQuery {
    /// The org searched.
    pub org_id: OrgId,
    /// The user searching: hits they starred have `is_starred`.
    pub user_id: Option<UserId>,
    /// A case-insensitive substring of the title.
    pub query: Option<String>,
    /// Tags the dashboard must all carry (folders carry none).
    pub tags: Vec<String>,
    /// Only dashboards or only folders.
    pub kind: Option<HitKind>,
    /// Only items directly in these folders; `"general"` or `""` is the root.
    pub folder_uids: Vec<String>,
    /// Only the items with these uids.
    pub uids: Vec<String>,
    /// Only dashboards starred by [`SearchQuery::user_id`].
    pub starred: bool,
    /// Hits per page; `None` or 0 is 1000, more than 5000 is 5000.
    pub limit: Option<u64>,
    /// The page, from 1; `None` or 0 is 1.
    pub page: Option<u64>,
    /// What the caller may see; `None` is everything (an org Admin, or the system).
    pub access: Option<SearchAccess>,
}

/// What a search shows a caller who is not an org Admin: the folders they may view
/// ([`crate::Permissions::viewable_folders`]), the dashboards in them, and the dashboards
/// their own items let them view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchAccess {
    /// The folders they may view.
    pub folders: Vec<FolderUid>,
    /// Who they are, for the dashboards' own items.
    pub subject: crate::Subject,
}

impl SearchQuery {
    /// Everything in the org, first page.
    pub fn new(org_id: OrgId) -> SearchQuery {
        SearchQuery {
            org_id,
            user_id: None,
            query: None,
            tags: Vec::new(),
            kind: None,
            folder_uids: Vec::new(),
            uids: Vec::new(),
            starred: false,
            limit: None,
            page: None,
            access: None,
        }
    }

    /// The page size in force.
    pub fn effective_limit(&self) -> u64 {
        match self.limit {
            None | Some(0) => DEFAULT_SEARCH_LIMIT,
            Some(limit) => limit.min(MAX_SEARCH_LIMIT),
        }
    }

    /// How many hits come before the page, at most
    /// [`tandem_storage::input::MAX_OFFSET`]: a page far past the end is empty.
    pub fn offset(&self) -> u64 {
        tandem_storage::input::offset(self.page.unwrap_or(1), self.effective_limit())
    }

    /// Checks the input policy: the title query is a bounded pattern, and each filter list
    /// is bounded in count and holds no NUL.
    pub fn check(&self) -> Result<()> {
        use tandem_storage::input::{check_count, check_pattern, check_text};
        let invalid = |err: tandem_storage::input::InputError| Error::InvalidInput(err.to_string());
        if let Some(query) = &self.query {
            check_pattern("query", query).map_err(invalid)?;
        }
        for (field, values) in [
            ("tag", &self.tags),
            ("folderUIDs", &self.folder_uids),
            ("dashboardUIDs", &self.uids),
        ] {
            check_count(field, values.len(), MAX_SEARCH_FILTERS).map_err(invalid)?;
            for value in values {
                check_text(field, value).map_err(invalid)?;
            }
        }
        Ok(())
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchHit {
    /// Dashboard or folder.
    pub kind: HitKind,
    /// The dashboard's or the folder's id (the two are numbered separately).
    pub id: i64,
    /// Its uid.
    pub uid: String,
    /// Its title.
    pub title: String,
    /// Its URL slug.
    pub slug: String,
    /// Its tags, sorted (none for folders).
    pub tags: Vec<String>,
    /// Whether the searching user starred it.
    pub is_starred: bool,
    /// The folder it is in; `None` at the root.
    pub folder: Option<FolderSummary>,
}
