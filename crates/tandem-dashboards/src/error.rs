/// The result type of `tandem-dashboards`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with folders, dashboards and provisioning.
///
/// The messages of the variants a client sees are Grafana's own wording (capitalised as
/// Grafana writes them), because clients and people compare them with what Grafana says.
/// [`Error::grafana_status`] gives the `status` word Grafana adds to dashboard save errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// No dashboard with this uid or id in the org (Grafana: 404, `not-found`).
    #[error("Dashboard not found")]
    DashboardNotFound,
    /// The folder a dashboard is saved into, a parent folder, or the folder asked for does
    /// not exist in the org (Grafana answers 400 on a save, 404 on a folder lookup).
    #[error("folder not found")]
    FolderNotFound,
    /// No annotation with this id in the org (Grafana: 404).
    #[error("Annotation not found")]
    AnnotationNotFound,
    /// The dashboard version asked for does not exist (Grafana: 404).
    #[error("Dashboard version not found")]
    VersionNotFound,
    /// The dashboard was saved by someone else since the caller read it, and the save did
    /// not ask to overwrite (Grafana: 412, `version-mismatch`).
    #[error("The dashboard has been changed by someone else")]
    VersionMismatch,
    /// The folder was changed by someone else since the caller read it, and the update did
    /// not ask to overwrite (Grafana: 412, `version-mismatch`).
    #[error("the folder has been changed by someone else")]
    FolderVersionMismatch,
    /// The dashboard title is empty after trimming (Grafana: 400, `empty-name`).
    #[error("Dashboard title cannot be empty")]
    EmptyTitle,
    /// The dashboard title is longer than 5000 bytes (Grafana: 400, `title-too-long`).
    #[error("Dashboard title cannot contain more than 5 000 characters")]
    TitleTooLong,
    /// The folder title is empty after trimming (Grafana 12.1: 400 with these words).
    #[error("folder title cannot be empty")]
    EmptyFolderTitle,
    /// The folder title is longer than 5000 bytes (400).
    #[error("folder title cannot be longer than 5000 characters")]
    InvalidFolderTitle,
    /// The version message is longer than 500 characters (Grafana: 400, `message-too-long`).
    #[error("Message cannot contain more than 500 characters")]
    MessageTooLong,
    /// A uid has a character outside `[a-zA-Z0-9-_]` (Grafana: 400).
    #[error("uid contains illegal characters")]
    InvalidUid,
    /// A uid is longer than 40 characters (Grafana: 400).
    #[error("uid too long, max 40 characters")]
    UidTooLong,
    /// The JSON id and uid name two different dashboards, or the uid is a folder's
    /// (Grafana: 400, `uid-exists`).
    #[error("A dashboard with the same uid already exists")]
    DashboardUidTaken,
    /// A folder (or a dashboard) with this uid already exists in the org (Grafana: 409).
    #[error("a folder with the same uid already exists")]
    FolderUidTaken,
    /// The dashboard JSON is not acceptable: not an object, an `id` that is not a number,
    /// a tag that is not text or too long; the message says which.
    #[error("invalid dashboard: {0}")]
    InvalidDashboard(String),
    /// The dashboard was provisioned from a file whose provider does not allow saving it
    /// from the UI or the API (`allowUiUpdates: false`; Grafana: 400).
    #[error("Cannot save provisioned dashboard")]
    ProvisionedDashboard,
    /// The dashboard was provisioned from a file and cannot be deleted through the API
    /// (Grafana: 400); remove the file instead.
    #[error("provisioned dashboard cannot be deleted")]
    ProvisionedDashboardDelete,
    /// Nesting the folder there would exceed the maximum depth.
    #[error("folder max depth exceeded, max depth is {0}")]
    FolderTooDeep(usize),
    /// No snapshot with this key (Grafana: 404).
    #[error("Snapshot not found")]
    SnapshotNotFound,
    /// A snapshot already uses this key or delete key (409).
    #[error("a snapshot with this key already exists")]
    SnapshotKeyTaken,
    /// No library element with this uid (or name) in the org (Grafana: 404).
    #[error("library element could not be found")]
    LibraryElementNotFound,
    /// An element with this uid is in the org, or one with this name and kind is in the
    /// folder (Grafana: 400).
    #[error("library element with that name or UID already exists")]
    LibraryElementExists,
    /// The element was changed by someone else since the caller read it (Grafana: 412).
    #[error("the library element has been changed by someone else")]
    LibraryElementVersionMismatch,
    /// A dashboard uses the element, so it cannot be deleted (Grafana: 403).
    #[error("the library element has connections")]
    LibraryElementHasConnections,
    /// A `kind` other than 1 (panel) or 2 (variable) (Grafana: 400 on a create or patch).
    #[error("the element kind is not supported")]
    UnsupportedLibraryKind,
    /// A folder holds library elements that dashboards use, so it cannot be deleted
    /// (Grafana: 403).
    #[error("Folder could not be deleted because it contains library elements in use")]
    FolderHasConnectedLibraryElements,
    /// A folder would move into itself or one of its subfolders (400).
    #[error("a folder cannot be moved into itself or one of its subfolders")]
    FolderCycle,
    /// An access list names one principal twice (400).
    #[error("a permission list cannot name the same user, team or role twice")]
    DuplicatePermission,
    /// An access list has more items than [`crate::MAX_PERMISSION_ITEMS`] (400).
    #[error("a permission list holds at most {0} items")]
    TooManyPermissions(usize),
    /// A request parameter is not acceptable (a malformed continue token, say); the
    /// message says why (Grafana: 400).
    #[error("{0}")]
    InvalidInput(String),
    /// A provisioning configuration file cannot be used; the message says why.
    #[error("invalid dashboard provisioning configuration: {0}")]
    InvalidProvisioningConfig(String),
    /// A provisioning file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The `status` word Grafana puts beside `message` in a dashboard save error body, if
    /// it puts one for this error.
    pub fn grafana_status(&self) -> Option<&'static str> {
        match self {
            Error::DashboardNotFound => Some("not-found"),
            Error::VersionMismatch | Error::FolderVersionMismatch => Some("version-mismatch"),
            Error::EmptyTitle => Some("empty-name"),
            Error::TitleTooLong => Some("title-too-long"),
            Error::MessageTooLong => Some("message-too-long"),
            Error::DashboardUidTaken => Some("uid-exists"),
            _ => None,
        }
    }

    /// Whether the caller's input was at fault (a 4xx at the HTTP edge) rather than the
    /// database or the server's files.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Storage(_) | Error::Io { .. } | Error::InvalidProvisioningConfig(_)
        )
    }

    /// The error a `tandem_storage::ClusterJobs` job answers: the storage error itself, or
    /// any other as an invalid argument (a job's own input is at fault).
    pub fn into_job_error(self) -> tandem_storage::Error {
        match self {
            Error::Storage(err) => err,
            other => tandem_storage::Error::InvalidArgument(other.to_string()),
        }
    }

    /// Whether this is a violated unique constraint (a concurrent insert of the same key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Storage(err) if err.is_unique_violation())
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Error {
        Error::Storage(err.into())
    }
}

impl tandem_storage::TransactionError for Error {
    fn is_retryable(&self) -> bool {
        matches!(self, Error::Storage(err) if err.is_retryable())
    }
}
