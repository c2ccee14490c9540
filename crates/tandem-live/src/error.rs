use tandem_storage::input::InputError;

use crate::channel::ChannelError;
use crate::influx::InfluxError;
use crate::protocol::ErrorCode;

/// What can go wrong in Live.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `[live] max_connections` connections are open already.
    #[error("the live connection limit is reached")]
    ConnectionLimit,
    /// The channel name is malformed or names no channel Tandem serves.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The client may not do this on this channel.
    #[error("permission denied")]
    PermissionDenied,
    /// The request breaks the input policy.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The request is malformed (a publication that is not what the channel takes).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The InfluxDB line protocol body cannot be read.
    #[error(transparent)]
    Influx(#[from] InfluxError),
    /// The channel does not offer this feature (history, presence, publishing).
    #[error("not available")]
    NotAvailable,
    /// The HA engine cannot be reached; Live keeps serving this instance's subscribers.
    #[error("the live engine is unavailable: {0}")]
    EngineUnavailable(String),
    /// The HA engine answered something Tandem cannot read.
    #[error("the live engine returned malformed data: {0}")]
    EngineData(String),
    /// The settings cannot work (for example `ha_engine = postgres` on a SQLite database).
    #[error("invalid live settings: {0}")]
    InvalidSettings(String),
    /// A storage primitive (a lease) failed.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// The hub is shutting down.
    #[error("the live hub is shutting down")]
    ShuttingDown,
    /// A PostgreSQL engine query failed.
    #[error("the live postgres engine failed: {0}")]
    Postgres(#[source] sqlx::Error),
    /// A Redis engine command failed.
    #[error("the live redis engine failed: {0}")]
    Redis(#[source] redis::RedisError),
}

/// `Result` with Live's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The Centrifuge error code a client sees in a reply when this error answers its
    /// command.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Channel(err) => err.code(),
            Error::PermissionDenied => ErrorCode::PERMISSION_DENIED,
            Error::Input(_) | Error::BadRequest(_) | Error::Influx(_) => ErrorCode::BAD_REQUEST,
            Error::NotAvailable => ErrorCode::NOT_AVAILABLE,
            Error::ConnectionLimit => ErrorCode::LIMIT_EXCEEDED,
            Error::EngineUnavailable(_)
            | Error::EngineData(_)
            | Error::InvalidSettings(_)
            | Error::Storage(_)
            | Error::ShuttingDown
            | Error::Postgres(_)
            | Error::Redis(_) => ErrorCode::INTERNAL,
        }
    }

    /// Whether the error is the engine being unreachable (as opposed to a refusal).
    pub fn is_engine_unavailable(&self) -> bool {
        matches!(
            self,
            Error::EngineUnavailable(_) | Error::Postgres(_) | Error::Redis(_)
        )
    }
}
