use std::fmt;
use std::sync::Arc;

use crate::{
    CreateFolder, Dashboard, DashboardId, DashboardUid, DashboardVersion, DeletedDashboard,
    DeletedFolder, Folder, FolderId, FolderUid, MoveFolder, OrgId, Provisioning, Result,
    SaveDashboard, SearchHit, SearchQuery, TagCount, UpdateFolder, UserId, Version, VersionPage,
    VersionQuery,
};

/// A dashboard file to provision: the store creates or updates the dashboard only when the
/// file's checksum differs from the one recorded.
#[derive(Clone, Debug)]
pub struct ProvisionDashboard {
    /// The org it goes to.
    pub org_id: OrgId,
    /// The provider's name.
    pub provider: String,
    /// The file's path (Grafana's `provisionedExternalId`).
    pub external_id: String,
    /// The SHA-256 of the file's content, hex.
    pub checksum: String,
    /// The dashboard JSON from the file; its `uid` must be set and valid.
    pub dashboard: serde_json::Value,
    /// The folder it goes to; `None` is the root.
    pub folder_uid: Option<FolderUid>,
    /// Whether the UI and the API may save it afterwards.
    pub allow_ui_updates: bool,
    /// Asked once the dashboard is locked, before anything is written: whether the file
    /// still holds what was read.
    pub still_current: SourceCheck,
}

/// A question about a provisioning file that the store asks inside its write, once the
/// dashboard's row is locked: "does the file still hold what was read?" before a write,
/// "is the file still gone?" before a removal.
///
/// A provisioner reads every file first and writes afterwards. One that stalls in between
/// (a stopped process, a slow database) must not write what it read after another instance
/// wrote what the file holds now: the lock orders the two writes, and this check, made
/// under the lock, sees the file as it is after the other instance's write.
#[derive(Clone)]
pub struct SourceCheck(Arc<dyn Fn() -> bool + Send + Sync>);

impl SourceCheck {
    /// A check answered by `holds`.
    pub fn new(holds: impl Fn() -> bool + Send + Sync + 'static) -> SourceCheck {
        SourceCheck(Arc::new(holds))
    }

    /// A check that always holds, for a source that cannot change (a test's literal).
    pub fn always() -> SourceCheck {
        SourceCheck::new(|| true)
    }

    /// Asks the question.
    pub fn holds(&self) -> bool {
        (self.0)()
    }
}

impl fmt::Debug for SourceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SourceCheck")
    }
}

/// What provisioning one file did.
#[derive(Clone, Debug, PartialEq)]
pub enum ProvisionOutcome {
    /// The dashboard did not exist and was created (version 1).
    Created(Dashboard),
    /// The file changed (or the dashboard moved away from its folder) and a new version was
    /// saved.
    Updated(Dashboard),
    /// The recorded checksum and folder already match: nothing was written.
    Unchanged,
    /// The file no longer holds what was read ([`SourceCheck`]): nothing was written; the
    /// next run provisions what it holds now.
    Stale,
}

/// A provisioning record: which dashboard a provider's file became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedDashboard {
    /// The dashboard's id.
    pub dashboard_id: DashboardId,
    /// The dashboard's uid.
    pub uid: DashboardUid,
    /// The record.
    pub provisioning: Provisioning,
}

/// Persistence of folders, dashboards, their versions, tags, stars and provisioning
/// records.
///
/// Every write is one transaction, so a failure leaves nothing half-written, and returns
/// only after its commit. Saves are compare-and-swap on the stored version: of concurrent
/// saves of the same version exactly one succeeds, the others fail with
/// [`Error::VersionMismatch`](crate::Error::VersionMismatch); each successful save writes
/// exactly one version row. Everything is scoped by org: a uid or id of another org is
/// not found.
///
/// `SqlDashboardStore` implements it over sea-orm; `testkit::conformance` holds the suite
/// any implementation must pass. Most callers want [`crate::Dashboards`], which adds change
/// events on top.
#[async_trait::async_trait]
pub trait DashboardStore: Send + Sync {
    // ---- dashboards

    /// Creates or updates a dashboard with Grafana's semantics (Grafana 12.1):
    ///
    /// - The JSON's `id` (non-zero) or `uid` names the dashboard to update; an unknown `id`
    ///   is [`Error::DashboardNotFound`](crate::Error::DashboardNotFound), an unknown or
    ///   missing `uid` creates one (a missing uid is generated). An `id` and a `uid` naming
    ///   two different dashboards is `DashboardUidTaken`, and so is a folder's uid.
    /// - A new dashboard gets version 1. An update must carry the stored version, or
    ///   `overwrite`, and stores the next version; a stale version without `overwrite` is
    ///   `VersionMismatch`.
    /// - The folder must exist (`FolderNotFound`); the dashboard moves to it.
    /// - The title is trimmed; empty is `EmptyTitle`, over 5000 bytes `TitleTooLong`. A uid
    ///   breaking Grafana's rules is `InvalidUid` / `UidTooLong`; a message over 500
    ///   characters `MessageTooLong`.
    /// - A dashboard provisioned by a provider without `allowUiUpdates` is refused
    ///   (`ProvisionedDashboard`).
    /// - Titles need not be unique in a folder: Grafana dropped that rule in 11.3.
    ///
    /// The stored JSON has `id`, `uid`, `title` and `version` set to the stored values and
    /// keeps every other field. Returns the dashboard as [`DashboardStore::get_dashboard`]
    /// would.
    async fn save_dashboard(&self, save: SaveDashboard) -> Result<Dashboard>;
    /// The dashboard with this uid in the org, with its folder, tags and provisioning.
    async fn get_dashboard(&self, org: OrgId, uid: &DashboardUid) -> Result<Option<Dashboard>>;
    /// The dashboard with this id in the org.
    async fn get_dashboard_by_id(&self, org: OrgId, id: DashboardId) -> Result<Option<Dashboard>>;
    /// Deletes a dashboard with its versions, tags, stars and provisioning record.
    /// `DashboardNotFound`; `ProvisionedDashboardDelete` when a file provisions it.
    async fn delete_dashboard(&self, org: OrgId, uid: &DashboardUid) -> Result<DeletedDashboard>;

    // ---- versions

    /// The dashboard's versions, newest first (`DashboardNotFound`).
    async fn list_versions(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        query: VersionQuery,
    ) -> Result<VersionPage>;
    /// One version with its JSON (`DashboardNotFound`, `VersionNotFound`).
    async fn get_version(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
    ) -> Result<DashboardVersion>;
    /// Saves the JSON of an old version as the next version, with `restored_from` set and
    /// the message "Restored from version N"; the same compare-and-swap and provisioning
    /// rules as a save apply, the folder stays. `DashboardNotFound`, `VersionNotFound`.
    async fn restore_version(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
        user: UserId,
    ) -> Result<Dashboard>;
    /// Keeps the newest `versions_to_keep` (at least 1) versions of every dashboard and
    /// deletes the older ones; returns how many were deleted.
    async fn trim_versions(&self, versions_to_keep: u32) -> Result<u64>;

    // ---- tags, search and stars

    /// The org's tags with how many dashboards carry each, by tag.
    async fn tags(&self, org: OrgId) -> Result<Vec<TagCount>>;
    /// Folders and dashboards matching the query: folders first, then by title
    /// case-insensitively; one page of them.
    async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>>;
    /// Stars a dashboard for a user; starring twice is fine. `DashboardNotFound`.
    async fn star(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<()>;
    /// Removes a star; `false` when there was none. `DashboardNotFound`.
    async fn unstar(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool>;
    /// Whether the user starred the dashboard (`false` when it does not exist).
    async fn is_starred(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool>;
    /// The uids of the dashboards of the org the user starred, sorted.
    async fn starred(&self, user: UserId, org: OrgId) -> Result<Vec<DashboardUid>>;

    // ---- folders

    /// Creates a folder. A taken uid (by a folder or a dashboard) is `FolderUidTaken`; a
    /// missing parent `FolderNotFound`; an empty title `EmptyFolderTitle`, an over-long one `InvalidFolderTitle`;
    /// nesting deeper than Grafana's limit `FolderTooDeep`.
    async fn create_folder(&self, create: CreateFolder) -> Result<Folder>;
    /// The folder with this uid in the org.
    async fn get_folder(&self, org: OrgId, uid: &FolderUid) -> Result<Option<Folder>>;
    /// The folder with this id in the org.
    async fn get_folder_by_id(&self, org: OrgId, id: FolderId) -> Result<Option<Folder>>;
    /// The folders directly in `parent` (the root when `None`), by title.
    async fn list_folders(&self, org: OrgId, parent: Option<&FolderUid>) -> Result<Vec<Folder>>;
    /// Renames a folder; compare-and-swap on its version like a dashboard save
    /// (`FolderVersionMismatch` unless `overwrite`). `FolderNotFound`.
    async fn update_folder(&self, update: UpdateFolder) -> Result<Folder>;
    /// Moves a folder (with everything in it) under another folder or to the root, and
    /// counts a new version. `FolderNotFound` for the folder or the parent; `FolderCycle`
    /// when the parent is the folder or below it; `FolderTooDeep` when the deepest folder
    /// of the moved subtree would be nested deeper than Grafana's limit.
    async fn move_folder(&self, request: MoveFolder) -> Result<Folder>;
    /// Deletes a folder with its subfolders and every dashboard in them (with their
    /// versions, tags, stars and provisioning records). `FolderNotFound`.
    async fn delete_folder(&self, org: OrgId, uid: &FolderUid) -> Result<DeletedFolder>;

    // ---- provisioning

    /// Provisions one file in one transaction: creates the dashboard, or saves a new
    /// version when the recorded checksum (or the folder) differs, or does nothing. Safe
    /// to run from several instances at once: each change yields exactly one version.
    async fn provision_dashboard(&self, provision: ProvisionDashboard) -> Result<ProvisionOutcome>;
    /// The provider's records in the org.
    async fn provisioned_dashboards(
        &self,
        org: OrgId,
        provider: &str,
    ) -> Result<Vec<ProvisionedDashboard>>;
    /// Handles a provider's file that disappeared: deletes its dashboard when `delete`,
    /// otherwise only forgets the record (the dashboard becomes an ordinary one, as
    /// Grafana does with `disableDeletion`). Returns the deleted dashboard when this call
    /// deleted it; `None` when there was nothing to do (another instance did it, or
    /// `still_gone` no longer holds once the record is locked: the file came back).
    async fn remove_provisioned(
        &self,
        org: OrgId,
        provider: &str,
        external_id: &str,
        delete: bool,
        still_gone: SourceCheck,
    ) -> Result<Option<DeletedDashboard>>;
}
