/// The result type of `tandem-sessions`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the identity domain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// The thing asked for does not exist (the message names it, e.g. "user not found").
    #[error("{0}")]
    NotFound(&'static str),
    /// A login, email, name or token name that must be unique is taken.
    #[error("{0}")]
    Conflict(String),
    /// The input is not acceptable; the message says why.
    #[error("{0}")]
    InvalidInput(String),
    /// Wrong user or password. Deliberately says nothing about which.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins for this login in the brute-force window.
    #[error(
        "too many consecutive incorrect login attempts for user, login for user temporarily blocked"
    )]
    LoginBlocked,
    /// The session, token or key is missing, unknown, expired or revoked.
    #[error("unauthorized")]
    Unauthenticated,
    /// The user is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
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

impl Error {
    /// Whether this is a violated unique constraint (a concurrent insert of the same name).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Storage(err) if err.is_unique_violation())
    }
}
