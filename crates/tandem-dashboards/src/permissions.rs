//! Folder and dashboard permissions: the access lists Grafana keeps per folder and per
//! dashboard, and what they grant a caller.
//!
//! An item of a list gives one principal (a user, a team, or everyone with at least a
//! basic role) a level: View, Edit or Admin. A caller's level on a folder is the highest
//! any item grants them on the folder or on a folder above it; on a dashboard, the highest
//! of the dashboard's own items and its folder's level. An org Admin has Admin on
//! everything, as in Grafana, whatever the lists say.
//!
//! New content gets Grafana's default items (the store writes them in the transaction
//! that creates it): its creator, when a user created it, is Admin; a folder at the root
//! and a dashboard at the root also give the Viewer role View and the Editor role Edit.
//! Content in a folder inherits the rest from the folder.

use std::sync::Arc;

use crate::{
    Dashboard, DashboardStore, DashboardUid, Error, Folder, FolderUid, OrgId, Result, UserId,
};

/// The most items an access list can hold.
pub const MAX_PERMISSION_ITEMS: usize = 200;

/// Grafana's permission levels, ordered: `View < Edit < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Read the folder or dashboard (1).
    View,
    /// Also save, delete and create in it (2).
    Edit,
    /// Also change its permissions (4).
    Admin,
}

impl Level {
    /// The level of Grafana's number (1, 2 or 4).
    pub fn from_code(code: i64) -> Option<Level> {
        match code {
            1 => Some(Level::View),
            2 => Some(Level::Edit),
            4 => Some(Level::Admin),
            _ => None,
        }
    }

    /// Grafana's number for the level.
    pub fn code(self) -> i64 {
        match self {
            Level::View => 1,
            Level::Edit => 2,
            Level::Admin => 4,
        }
    }

    /// Grafana's name for the level (`permissionName`).
    pub fn name(self) -> &'static str {
        match self {
            Level::View => "View",
            Level::Edit => "Edit",
            Level::Admin => "Admin",
        }
    }
}

/// An org's basic roles as the access lists name them, ordered: `Viewer < Editor < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BasicRole {
    /// Viewer.
    Viewer,
    /// Editor.
    Editor,
    /// Admin.
    Admin,
}

impl BasicRole {
    /// Every role, lowest first.
    pub const ALL: [BasicRole; 3] = [BasicRole::Viewer, BasicRole::Editor, BasicRole::Admin];

    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BasicRole::Viewer => "Viewer",
            BasicRole::Editor => "Editor",
            BasicRole::Admin => "Admin",
        }
    }

    /// The role of Grafana's spelling.
    pub fn parse(text: &str) -> Option<BasicRole> {
        BasicRole::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// A team's id, as the identity domain numbers teams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TeamId(pub i64);

/// Whom an item gives a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// One user (or service account).
    User(UserId),
    /// Every member of a team.
    Team(TeamId),
    /// Everyone in the org with at least this role (an Editor is also a Viewer).
    Role(BasicRole),
}

/// What an access list belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A folder.
    Folder(FolderUid),
    /// A dashboard.
    Dashboard(DashboardUid),
}

impl Resource {
    /// `folder` or `dashboard`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Folder(_) => "folder",
            Resource::Dashboard(_) => "dashboard",
        }
    }

    /// The uid.
    pub fn uid(&self) -> &str {
        match self {
            Resource::Folder(uid) => uid.as_str(),
            Resource::Dashboard(uid) => uid.as_str(),
        }
    }
}

/// One item of an access list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionItem {
    /// The item's id.
    pub id: i64,
    /// Whom it names.
    pub principal: Principal,
    /// What it grants.
    pub level: Level,
    /// When it was written, ms since the epoch.
    pub created: i64,
    /// When it was last changed, ms since the epoch.
    pub updated: i64,
}

/// Who asks: a user, their basic role in the org (`None` when not a member) and the
/// teams they belong to there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The user; `UserId(0)` for a caller that is no user (an API key).
    pub user: UserId,
    /// Their role in the org.
    pub role: Option<BasicRole>,
    /// Their teams in the org.
    pub teams: Vec<TeamId>,
}

impl Subject {
    /// An org Admin, who has Admin on everything.
    pub fn is_org_admin(&self) -> bool {
        self.role == Some(BasicRole::Admin)
    }

    /// Whether an item naming `principal` applies to this subject.
    pub fn matches(&self, principal: &Principal) -> bool {
        match principal {
            Principal::User(user) => user.0 > 0 && *user == self.user,
            Principal::Team(team) => self.teams.contains(team),
            Principal::Role(role) => self.role.is_some_and(|have| have >= *role),
        }
    }

    /// The basic roles whose items apply to this subject.
    pub fn roles(&self) -> Vec<BasicRole> {
        BasicRole::ALL
            .into_iter()
            .filter(|role| self.role.is_some_and(|have| have >= *role))
            .collect()
    }
}

/// Persistence of access lists. Every org's lists are its own: a uid of another org
/// names nothing.
///
/// `SqlDashboardStore` implements it beside [`DashboardStore`], whose writes keep the
/// lists in step with the content: creating a folder or a dashboard writes its default
/// items, deleting one deletes its list, all in the same transaction.
#[async_trait::async_trait]
pub trait PermissionStore: Send + Sync {
    /// The resource's own items (not the inherited ones): users, then teams, then roles,
    /// each by id. [`Error::FolderNotFound`] or [`Error::DashboardNotFound`].
    async fn permissions(&self, org: OrgId, resource: &Resource) -> Result<Vec<PermissionItem>>;

    /// Replaces the resource's list with `items` in one transaction, so a concurrent
    /// reader sees the old list or the new one, never a mix. A principal named twice is
    /// [`Error::DuplicatePermission`], more than [`MAX_PERMISSION_ITEMS`] items
    /// [`Error::TooManyPermissions`]; a missing resource as in [`Self::permissions`].
    async fn set_permissions(
        &self,
        org: OrgId,
        resource: &Resource,
        items: &[(Principal, Level)],
    ) -> Result<()>;

    /// The highest level the subject's items grant on each resource of `kind` (`folder`
    /// or `dashboard`) that has such an item, restricted to `uids` when given; own items
    /// only, no inheritance.
    async fn granted(
        &self,
        org: OrgId,
        subject: &Subject,
        kind: &str,
        uids: Option<&[String]>,
    ) -> Result<Vec<(String, Level)>>;

    /// Every folder of the org with its parent (`None` at the root).
    async fn folder_parents(&self, org: OrgId) -> Result<Vec<(FolderUid, Option<FolderUid>)>>;

    /// Deletes every item naming the principal, in the org or (`None`) in every org: what
    /// deleting a user or a team leaves behind. Returns how many went.
    async fn forget_principal(&self, org: Option<OrgId>, principal: &Principal) -> Result<u64>;
}

/// The access lists and what they grant, over the stores: what a handler asks before it
/// reads or writes content. Cloning is cheap.
#[derive(Clone)]
pub struct Permissions {
    store: Arc<dyn PermissionStore>,
    content: Arc<dyn DashboardStore>,
}

impl std::fmt::Debug for Permissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permissions").finish_non_exhaustive()
    }
}

/// A folder's own items and the ones it inherits, nearest folder first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InheritedItems {
    /// The folder the items are on.
    pub folder: FolderUid,
    /// Its items.
    pub items: Vec<PermissionItem>,
}

impl Permissions {
    /// Permissions kept in `store`, over the folders and dashboards of `content`.
    pub fn new(store: Arc<dyn PermissionStore>, content: Arc<dyn DashboardStore>) -> Permissions {
        Permissions { store, content }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn PermissionStore> {
        &self.store
    }

    /// The folder and the folders above it, nearest first; `FolderNotFound`.
    pub async fn folder_chain(&self, org: OrgId, uid: &FolderUid) -> Result<Vec<Folder>> {
        let mut chain: Vec<Folder> = Vec::new();
        let mut next = Some(uid.clone());
        while let Some(uid) = next {
            // A cycle cannot be stored, but a bound keeps a damaged table from looping.
            if chain.len() > crate::sql::MAX_FOLDER_DEPTH + 1
                || chain.iter().any(|folder| folder.uid == uid)
            {
                break;
            }
            let folder = self
                .content
                .get_folder(org, &uid)
                .await?
                .ok_or(Error::FolderNotFound)?;
            next = folder.parent_uid.clone();
            chain.push(folder);
        }
        Ok(chain)
    }

    /// The subject's level on a folder, inherited from the folders above it; `None` when
    /// nothing grants one. `FolderNotFound`.
    pub async fn folder_level(
        &self,
        subject: &Subject,
        org: OrgId,
        uid: &FolderUid,
    ) -> Result<Option<Level>> {
        let chain = self.folder_chain(org, uid).await?;
        if subject.is_org_admin() {
            return Ok(Some(Level::Admin));
        }
        let uids: Vec<String> = chain
            .into_iter()
            .map(|folder| folder.uid.into_string())
            .collect();
        Ok(self
            .store
            .granted(org, subject, "folder", Some(&uids))
            .await?
            .into_iter()
            .map(|(_, level)| level)
            .max())
    }

    /// The subject's level on the root ("General"): Grafana lets Editors create there and
    /// everyone read what the root's content grants them.
    pub fn root_level(subject: &Subject) -> Option<Level> {
        match subject.role {
            Some(BasicRole::Admin) => Some(Level::Admin),
            Some(BasicRole::Editor) => Some(Level::Edit),
            Some(BasicRole::Viewer) => Some(Level::View),
            None => None,
        }
    }

    /// The level to create in a folder (`None`: the root).
    pub async fn create_level(
        &self,
        subject: &Subject,
        org: OrgId,
        folder: Option<&FolderUid>,
    ) -> Result<Option<Level>> {
        match folder {
            None => Ok(Permissions::root_level(subject)),
            Some(uid) => self.folder_level(subject, org, uid).await,
        }
    }

    /// The subject's level on a dashboard: its own items and its folder's level.
    pub async fn dashboard_level(
        &self,
        subject: &Subject,
        dashboard: &Dashboard,
    ) -> Result<Option<Level>> {
        if subject.is_org_admin() {
            return Ok(Some(Level::Admin));
        }
        let org = dashboard.org_id;
        let own = self
            .store
            .granted(
                org,
                subject,
                "dashboard",
                Some(&[dashboard.uid.as_str().to_owned()]),
            )
            .await?
            .into_iter()
            .map(|(_, level)| level)
            .max();
        let inherited = match &dashboard.folder {
            None => None,
            Some(folder) => match self.folder_level(subject, org, &folder.uid).await {
                // The folder went between the two reads: nothing to inherit.
                Err(Error::FolderNotFound) => None,
                other => other?,
            },
        };
        Ok(own.max(inherited))
    }

    /// The folders of the org the subject may view (their level inherited down the
    /// tree); `None` for an org Admin, who views everything.
    pub async fn viewable_folders(
        &self,
        subject: &Subject,
        org: OrgId,
    ) -> Result<Option<Vec<FolderUid>>> {
        if subject.is_org_admin() {
            return Ok(None);
        }
        let parents = self.store.folder_parents(org).await?;
        let granted: std::collections::HashMap<String, Level> = self
            .store
            .granted(org, subject, "folder", None)
            .await?
            .into_iter()
            .collect();
        let parent_of: std::collections::HashMap<&str, Option<&str>> = parents
            .iter()
            .map(|(uid, parent)| (uid.as_str(), parent.as_ref().map(FolderUid::as_str)))
            .collect();
        let mut viewable = Vec::new();
        for (uid, _) in &parents {
            let mut next = Some(uid.as_str());
            let mut steps = 0;
            while let Some(at) = next {
                if granted.contains_key(at) {
                    viewable.push(uid.clone());
                    break;
                }
                steps += 1;
                if steps > crate::sql::MAX_FOLDER_DEPTH + 1 {
                    break;
                }
                next = parent_of.get(at).copied().flatten();
            }
        }
        Ok(Some(viewable))
    }

    /// The resource's own items.
    pub async fn list(&self, org: OrgId, resource: &Resource) -> Result<Vec<PermissionItem>> {
        self.store.permissions(org, resource).await
    }

    /// The items a resource inherits: those of its folder and the folders above it,
    /// nearest first (for a folder, those of the folders above it).
    pub async fn inherited(&self, org: OrgId, resource: &Resource) -> Result<Vec<InheritedItems>> {
        let start = match resource {
            Resource::Folder(uid) => {
                self.content
                    .get_folder(org, uid)
                    .await?
                    .ok_or(Error::FolderNotFound)?
                    .parent_uid
            }
            Resource::Dashboard(uid) => self
                .content
                .get_dashboard(org, uid)
                .await?
                .ok_or(Error::DashboardNotFound)?
                .folder
                .map(|folder| folder.uid),
        };
        let Some(start) = start else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for folder in self.folder_chain(org, &start).await? {
            let items = self
                .store
                .permissions(org, &Resource::Folder(folder.uid.clone()))
                .await?;
            out.push(InheritedItems {
                folder: folder.uid,
                items,
            });
        }
        Ok(out)
    }

    /// Replaces the resource's own items.
    pub async fn set(
        &self,
        org: OrgId,
        resource: &Resource,
        items: &[(Principal, Level)],
    ) -> Result<()> {
        self.store.set_permissions(org, resource, items).await
    }
}
