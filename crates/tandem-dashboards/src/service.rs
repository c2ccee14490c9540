use std::sync::Arc;

use crate::{
    CreateFolder, Dashboard, DashboardAction, DashboardEvent, DashboardEvents, DashboardId,
    DashboardStore, DashboardUid, DashboardVersion, DeletedDashboard, DeletedFolder, Error, Folder,
    FolderId, FolderUid, OrgId, Result, SaveDashboard, SearchHit, SearchQuery, TagCount,
    UpdateFolder, UserId, Version, VersionPage, VersionQuery,
};

/// The dashboards settings (`[dashboards]`); `Default` is the documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardSettings {
    /// How many versions of each dashboard retention keeps (`[dashboards] versions_to_keep`,
    /// Grafana's default 20, at least 1).
    pub versions_to_keep: u32,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            versions_to_keep: 20,
        }
    }
}

/// Dashboards and folders over a [`DashboardStore`], announcing every committed change to
/// a [`DashboardEvents`] sink: what an HTTP handler calls.
///
/// Lookups that find nothing are errors here ([`Error::DashboardNotFound`],
/// [`Error::FolderNotFound`]), so a handler can `?` them into a 404. Cloning is cheap.
#[derive(Clone)]
pub struct Dashboards {
    store: Arc<dyn DashboardStore>,
    events: Arc<dyn DashboardEvents>,
    settings: DashboardSettings,
}

impl Dashboards {
    /// Dashboards in `store`, announcing changes to `events`.
    pub fn new(
        store: Arc<dyn DashboardStore>,
        events: Arc<dyn DashboardEvents>,
        settings: DashboardSettings,
    ) -> Dashboards {
        Dashboards {
            store,
            events,
            settings,
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn DashboardStore> {
        &self.store
    }

    /// The sink changes go to.
    pub fn events(&self) -> &Arc<dyn DashboardEvents> {
        &self.events
    }

    /// The settings.
    pub fn settings(&self) -> &DashboardSettings {
        &self.settings
    }

    /// Saves a dashboard (see [`DashboardStore::save_dashboard`] for the rules) and
    /// announces it.
    pub async fn save(&self, save: SaveDashboard) -> Result<Dashboard> {
        let dashboard = self.store.save_dashboard(save).await?;
        self.saved(&dashboard);
        Ok(dashboard)
    }

    /// The dashboard with this uid; `DashboardNotFound`.
    pub async fn get(&self, org: OrgId, uid: &DashboardUid) -> Result<Dashboard> {
        self.store
            .get_dashboard(org, uid)
            .await?
            .ok_or(Error::DashboardNotFound)
    }

    /// The dashboard with this id; `DashboardNotFound`.
    pub async fn get_by_id(&self, org: OrgId, id: DashboardId) -> Result<Dashboard> {
        self.store
            .get_dashboard_by_id(org, id)
            .await?
            .ok_or(Error::DashboardNotFound)
    }

    /// Deletes a dashboard and announces it; `DashboardNotFound`,
    /// `ProvisionedDashboardDelete`.
    pub async fn delete(&self, org: OrgId, uid: &DashboardUid) -> Result<DeletedDashboard> {
        let deleted = self.store.delete_dashboard(org, uid).await?;
        self.deleted(org, &deleted);
        Ok(deleted)
    }

    /// The dashboard's versions, newest first.
    pub async fn versions(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        query: VersionQuery,
    ) -> Result<VersionPage> {
        self.store.list_versions(org, uid, query).await
    }

    /// The versions of the dashboard with this id (Grafana's older
    /// `/api/dashboards/id/:id/versions`).
    pub async fn versions_by_id(
        &self,
        org: OrgId,
        id: DashboardId,
        query: VersionQuery,
    ) -> Result<VersionPage> {
        let dashboard = self.get_by_id(org, id).await?;
        self.store.list_versions(org, &dashboard.uid, query).await
    }

    /// One version with its JSON.
    pub async fn version(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
    ) -> Result<DashboardVersion> {
        self.store.get_version(org, uid, version).await
    }

    /// Saves an old version as the next one and announces it.
    pub async fn restore(
        &self,
        org: OrgId,
        uid: &DashboardUid,
        version: Version,
        user: UserId,
    ) -> Result<Dashboard> {
        let dashboard = self.store.restore_version(org, uid, version, user).await?;
        self.saved(&dashboard);
        Ok(dashboard)
    }

    /// The org's tags with their counts.
    pub async fn tags(&self, org: OrgId) -> Result<Vec<TagCount>> {
        self.store.tags(org).await
    }

    /// One page of folders and dashboards matching `query`.
    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        self.store.search(query).await
    }

    /// Stars a dashboard for a user.
    pub async fn star(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<()> {
        self.store.star(user, org, uid).await
    }

    /// Removes a user's star; `false` when there was none.
    pub async fn unstar(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool> {
        self.store.unstar(user, org, uid).await
    }

    /// Whether the user starred the dashboard.
    pub async fn is_starred(&self, user: UserId, org: OrgId, uid: &DashboardUid) -> Result<bool> {
        self.store.is_starred(user, org, uid).await
    }

    /// The uids of the dashboards the user starred in the org.
    pub async fn starred(&self, user: UserId, org: OrgId) -> Result<Vec<DashboardUid>> {
        self.store.starred(user, org).await
    }

    /// Creates a folder.
    pub async fn create_folder(&self, create: CreateFolder) -> Result<Folder> {
        self.store.create_folder(create).await
    }

    /// The folder with this uid; `FolderNotFound`.
    pub async fn folder(&self, org: OrgId, uid: &FolderUid) -> Result<Folder> {
        self.store
            .get_folder(org, uid)
            .await?
            .ok_or(Error::FolderNotFound)
    }

    /// The folder with this id; `FolderNotFound`.
    pub async fn folder_by_id(&self, org: OrgId, id: FolderId) -> Result<Folder> {
        self.store
            .get_folder_by_id(org, id)
            .await?
            .ok_or(Error::FolderNotFound)
    }

    /// The folders directly in `parent` (the root when `None`), by title.
    pub async fn folders(&self, org: OrgId, parent: Option<&FolderUid>) -> Result<Vec<Folder>> {
        self.store.list_folders(org, parent).await
    }

    /// Renames a folder.
    pub async fn update_folder(&self, update: UpdateFolder) -> Result<Folder> {
        self.store.update_folder(update).await
    }

    /// Moves a folder under another one or to the root.
    pub async fn move_folder(&self, request: crate::MoveFolder) -> Result<Folder> {
        self.store.move_folder(request).await
    }

    /// Deletes a folder with its subfolders and dashboards, announcing each dashboard's
    /// deletion.
    pub async fn delete_folder(&self, org: OrgId, uid: &FolderUid) -> Result<DeletedFolder> {
        let deleted = self.store.delete_folder(org, uid).await?;
        for dashboard in &deleted.dashboards {
            self.deleted(org, dashboard);
        }
        Ok(deleted)
    }

    /// Deletes every version beyond the newest `versions_to_keep` of each dashboard;
    /// returns how many were deleted.
    ///
    /// Meant to run once per cluster per interval: the composition layer registers it with
    /// `tandem_storage::ClusterJobs`, whose job signature [`Dashboards::run_retention`] has.
    pub async fn trim_versions(&self) -> Result<u64> {
        self.store
            .trim_versions(self.settings.versions_to_keep)
            .await
    }

    /// [`Dashboards::trim_versions`] with the error type `ClusterJobs` wants:
    ///
    /// ```text
    /// let dashboards = dashboards.clone();
    /// jobs.add("dashboard-version-retention", Duration::from_secs(600), move || {
    ///     let dashboards = dashboards.clone();
    ///     async move { dashboards.run_retention().await }
    /// });
    /// ```
    pub async fn run_retention(&self) -> tandem_storage::Result<u64> {
        self.trim_versions().await.map_err(Error::into_job_error)
    }

    pub(crate) fn saved(&self, dashboard: &Dashboard) {
        self.events.publish(DashboardEvent {
            org: dashboard.org_id,
            uid: dashboard.uid.clone(),
            action: DashboardAction::Saved,
            version: dashboard.version,
        });
    }

    pub(crate) fn deleted(&self, org: OrgId, dashboard: &DeletedDashboard) {
        self.events.publish(DashboardEvent {
            org,
            uid: dashboard.uid.clone(),
            action: DashboardAction::Deleted,
            version: dashboard.version,
        });
    }
}

impl std::fmt::Debug for Dashboards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboards")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
