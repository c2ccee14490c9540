use std::time::Duration;

use sea_orm::DbErr;

/// The result type of `tandem-storage`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database rejected a statement or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    /// The database could not be reached or refused the connection (the message never
    /// contains the password).
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// The settings cannot describe a usable database.
    #[error("invalid database settings: {0}")]
    InvalidSettings(String),
    /// Another instance held the migration lock for longer than the configured wait.
    #[error("gave up waiting for the migration lock after {0:?}")]
    MigrationLockTimeout(Duration),
    /// An argument is outside what the store accepts (for example an over-long key).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A value from a client breaks the input policy ([`crate::input`]).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A transaction closure kept a clone of its transaction handle, so it cannot be committed.
    #[error("a transaction handle outlived its closure")]
    TransactionHandleEscaped,
}

impl Error {
    /// Whether retrying the whole transaction may succeed: SQLite busy or locked, MySQL
    /// deadlock or lock wait timeout, PostgreSQL serialization failure or deadlock.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Database(err) => crate::database::is_retryable(err),
            _ => false,
        }
    }

    /// Whether the database cannot be reached now (refused, lost or exhausted connections,
    /// a server shutting down or starting): a request failing so should be answered 503, so
    /// a load balancer may try another instance, never a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(err) => crate::database::is_unavailable(err),
            Error::Connect(_) => true,
            _ => false,
        }
    }

    /// Whether the error is a violated unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Database(err) if is_unique_violation(err))
    }
}

/// An error type that a transaction closure may return: it can carry a storage error and
/// says whether the transaction is worth retrying.
///
/// Domain crates implement it for their own error enums so that
/// [`Database::transaction`](crate::Database::transaction) can return their errors unchanged.
pub trait TransactionError: From<Error> {
    /// Whether the failed transaction should be run again from the start.
    fn is_retryable(&self) -> bool;
}

impl TransactionError for Error {
    fn is_retryable(&self) -> bool {
        Error::is_retryable(self)
    }
}

pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
