/// The result type of `tandem-datasources`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with data sources, their provisioning and health checks.
///
/// Query failures are not errors of this type: a failing query becomes its own
/// [`QueryResult`](crate::QueryResult) with an error message, and the others still answer.
/// The messages a client sees are Grafana 12's wording where Grafana has one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// No data source with this id, uid or name in the org (Grafana: 404).
    #[error("Data source not found")]
    NotFound,
    /// Another data source of the org has this name (Grafana: 409).
    #[error("data source with the same name already exists")]
    NameTaken,
    /// Another data source of the org has this uid (Grafana: 409).
    #[error("data source with the same uid already exists")]
    UidTaken,
    /// The update carried a version older than the stored one: someone else saved the data
    /// source since the caller read it (Grafana: 409).
    #[error("Datasource has already been updated by someone else. Please reload and try again")]
    VersionMismatch,
    /// The data source was provisioned from a file without `editable: true`, so the API may
    /// neither change nor delete it (Grafana: 403 with this message on an update, and
    /// "Cannot delete read-only data source" on a deletion).
    #[error("Cannot update read-only data source")]
    ReadOnly,
    /// The data source type is not one Tandem can query (Grafana: 400).
    #[error("unknown data source type {0:?}")]
    UnknownType(String),
    /// A field breaks the rules (empty name, malformed URL, over-long text, bad uid,
    /// jsonData not an object, too many secrets …); the message says which (Grafana: 400).
    #[error("{0}")]
    Invalid(String),
    /// A value breaks the input policy (NUL, length, count; Grafana: 400).
    #[error(transparent)]
    Input(#[from] tandem_storage::input::InputError),
    /// A stored secret cannot be opened: `[security] secret_key` differs from the one that
    /// sealed it, or the row was altered.
    #[error("cannot open the data source's secrets: {0}")]
    Secrets(#[from] tandem_storage::SealError),
    /// A provisioning configuration file cannot be used; the message says why.
    #[error("invalid data source provisioning configuration: {0}")]
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
    /// Whether the caller's input was at fault (a 4xx at the HTTP edge) rather than the
    /// database, the key or the server's files.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Storage(_)
                | Error::Secrets(_)
                | Error::Io { .. }
                | Error::InvalidProvisioningConfig(_)
        )
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
