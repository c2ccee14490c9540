/// The result type of `tandem-alerting`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with alert rules, their evaluation and their state.
///
/// The messages a client sees are Grafana 12's wording where Grafana has one (most start
/// with Grafana's `invalid alert rule:` prefix, which [`Error::Invalid`] adds).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// A rule breaks a rule of Grafana's validation; the message says which (400).
    #[error("invalid alert rule: {0}")]
    Invalid(String),
    /// A request breaks a rule that Grafana reports without the `invalid alert rule` prefix
    /// (a group name that is too long, a bad filter) (400).
    #[error("{0}")]
    BadRequest(String),
    /// No rule with this uid in the org (404).
    #[error("could not find alert rule")]
    RuleNotFound,
    /// The group has no rules (404).
    #[error("rule group does not exist")]
    GroupNotFound,
    /// The folder a rule names does not exist in the org.
    #[error("invalid alert rule: folder does not exist")]
    FolderNotFound,
    /// Another rule of the folder has this title (400, as Grafana answers).
    #[error(
        "a conflicting alert rule is found: rule title under the same organisation and folder should be unique"
    )]
    TitleTaken,
    /// Another rule of the org has this uid (400, as Grafana answers).
    #[error(
        "a conflicting alert rule is found: rule UID under the same organisation should be unique"
    )]
    UidTaken,
    /// The rule changed since the caller read it: another writer committed a version first
    /// (409).
    #[error("version conflict while updating a record in the database with optimistic locking")]
    VersionMismatch,
    /// The rule was provisioned with another provenance (a file, say) and this API may not
    /// change it (409).
    #[error("cannot change provenance from '{stored}' to '{provided}'")]
    ProvenanceChange {
        /// The provenance the rule has.
        stored: &'static str,
        /// The provenance of the request.
        provided: &'static str,
    },
    /// The rule was provisioned with another provenance and may not be deleted or replaced
    /// through this API (409).
    #[error("cannot {operation} with provided provenance '{provided}', needs '{stored}'")]
    ProvenanceMismatch {
        /// `update` or `delete`.
        operation: &'static str,
        /// The provenance of the request.
        provided: &'static str,
        /// The provenance the rule has.
        stored: &'static str,
    },
    /// The Ruler API may not touch a group holding provisioned rules (400).
    #[error(
        "failed to update rule group: request affects resources created via provisioning API: alert rule group [{0}]"
    )]
    ProvisionedGroup(String),
    /// A value breaks the input policy (NUL, length, count; 400).
    #[error(transparent)]
    Input(#[from] tandem_storage::input::InputError),
    /// A provisioning file cannot be used; the message says why.
    #[error("invalid alerting provisioning configuration: {0}")]
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
    /// A stored row could not be read back (corrupt JSON in a column).
    #[error("corrupt alerting row: {0}")]
    Corrupt(String),
    /// A data source lookup failed.
    #[error(transparent)]
    DataSources(#[from] tandem_datasources::Error),
    /// A notification resource (contact point, mute timing, template) does not exist (404).
    #[error("{0}")]
    NotificationNotFound(String),
    /// A notification resource conflicts with another or is still used (409).
    #[error("{0}")]
    NotificationConflict(String),
    /// No silence with this id in the org (404, Alertmanager's message).
    #[error("silence not found")]
    SilenceNotFound,
    /// The metrics could not be registered.
    #[error("cannot register the alerting metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// Whether the caller's input was at fault (a 4xx at the HTTP edge).
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Storage(_)
            | Error::Io { .. }
            | Error::InvalidProvisioningConfig(_)
            | Error::Corrupt(_)
            | Error::Metrics(_) => false,
            Error::DataSources(err) => err.is_client_error(),
            _ => true,
        }
    }

    /// Whether this is a violated unique constraint (a concurrent insert of the same key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Storage(err) if err.is_unique_violation())
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
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
