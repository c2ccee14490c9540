use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The result type of `tandem-http`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened, migrated or used.
    #[error(transparent)]
    Storage(#[from] tandem_storage::Error),
    /// The admin user could not be created.
    #[error(transparent)]
    Identity(#[from] tandem_sessions::Error),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why the bind failed.
        #[source]
        source: std::io::Error,
    },
    /// The data source provisioning files could not be applied.
    #[error("cannot provision data sources: {0}")]
    DataSources(#[source] tandem_datasources::Error),
    /// Live's hub could not start (its settings cannot work, such as `ha_engine =
    /// postgres` on another database).
    #[error("cannot start Live: {0}")]
    Live(#[source] tandem_live::Error),
    /// Alerting could not be set up (its metrics could not be registered).
    #[error(transparent)]
    Alerting(#[from] tandem_alerting::Error),
    /// The Prometheus registry could not be built.
    #[error("cannot register the metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    /// Accepting connections failed for good.
    #[error("the http listener failed: {0}")]
    Listener(#[source] std::io::Error),
}

/// An error answered to an HTTP client: a status and Grafana's JSON error body
/// `{"message": "...", "status"?: "..."}`.
///
/// Every error response of the API goes through this type, so the mapping from domain
/// errors to statuses lives in one place ([`ApiError::from`] implementations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub code: StatusCode,
    /// The human-readable message.
    pub message: String,
    /// Grafana's machine-readable `status` (dashboard save errors use it).
    pub status: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            status: None,
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 `{"message":"Not found"}`, Grafana's answer to an unknown route.
    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Not found")
    }

    /// 401 `{"message":"Unauthorized"}`: no credentials, or credentials that do not hold.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    /// 413 for a body over the configured limit.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than the limit of {limit} bytes"),
        )
    }

    /// The JSON body for a status that carries no message of its own.
    pub fn from_status(code: StatusCode) -> ApiError {
        ApiError::new(code, code.canonical_reason().unwrap_or("Error"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            message: &self.message,
            status: self.status,
        };
        (self.code, Json(body)).into_response()
    }
}

impl From<tandem_storage::Error> for ApiError {
    fn from(err: tandem_storage::Error) -> ApiError {
        match err {
            tandem_storage::Error::InvalidArgument(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, message)
            }
            tandem_storage::Error::Input(err) => ApiError::from(err),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "the database is unavailable while serving a request");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is unavailable; try again",
                )
            }
            other => {
                // The cause goes to the log, never to the client.
                tracing::error!(error = %other, "storage error while serving a request");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}

impl From<tandem_sessions::Error> for ApiError {
    fn from(err: tandem_sessions::Error) -> ApiError {
        use tandem_sessions::Error as E;
        match err {
            E::Storage(err) => ApiError::from(err),
            E::NotFound(what) => ApiError::new(StatusCode::NOT_FOUND, capitalize(what)),
            E::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            E::InvalidInput(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
            // The same answer for a wrong password, an unknown user and a blocked login.
            E::InvalidCredentials | E::LoginBlocked => {
                ApiError::new(StatusCode::UNAUTHORIZED, "Invalid username or password")
            }
            E::Unauthenticated => ApiError::unauthorized(),
            E::UserDisabled => ApiError::new(StatusCode::UNAUTHORIZED, "User is disabled"),
            E::Forbidden(message) => ApiError::new(StatusCode::FORBIDDEN, message),
        }
    }
}

impl From<tandem_dashboards::Error> for ApiError {
    fn from(err: tandem_dashboards::Error) -> ApiError {
        use tandem_dashboards::Error as E;
        let code = match &err {
            E::Storage(_) | E::Io { .. } | E::InvalidProvisioningConfig(_) => None,
            E::DashboardNotFound
            | E::FolderNotFound
            | E::VersionNotFound
            | E::AnnotationNotFound
            | E::SnapshotNotFound
            | E::LibraryElementNotFound => Some(StatusCode::NOT_FOUND),
            E::LibraryElementHasConnections | E::FolderHasConnectedLibraryElements => {
                Some(StatusCode::FORBIDDEN)
            }
            E::LibraryElementVersionMismatch => Some(StatusCode::PRECONDITION_FAILED),
            E::VersionMismatch | E::FolderVersionMismatch => Some(StatusCode::PRECONDITION_FAILED),
            E::FolderUidTaken | E::SnapshotKeyTaken => Some(StatusCode::CONFLICT),
            E::EmptyTitle
            | E::TitleTooLong
            | E::EmptyFolderTitle
            | E::InvalidFolderTitle
            | E::MessageTooLong
            | E::InvalidUid
            | E::UidTooLong
            | E::DashboardUidTaken
            | E::InvalidDashboard(_)
            | E::ProvisionedDashboard
            | E::ProvisionedDashboardDelete
            | E::FolderTooDeep(_)
            | E::FolderCycle
            | E::DuplicatePermission
            | E::TooManyPermissions(_)
            | E::LibraryElementExists
            | E::UnsupportedLibraryKind
            | E::InvalidInput(_) => Some(StatusCode::BAD_REQUEST),
        };
        match (code, err) {
            (Some(code), err) => ApiError {
                code,
                status: err.grafana_status(),
                message: err.to_string(),
            },
            (None, E::Storage(err)) => ApiError::from(err),
            (None, other) => {
                // The server's own files are at fault; the details go to the log only.
                tracing::error!(error = %other, "dashboards error while serving a request");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            }
        }
    }
}

impl From<tandem_datasources::Error> for ApiError {
    fn from(err: tandem_datasources::Error) -> ApiError {
        use tandem_datasources::Error as E;
        let code = match &err {
            E::NotFound => StatusCode::NOT_FOUND,
            E::NameTaken | E::UidTaken | E::VersionMismatch => StatusCode::CONFLICT,
            E::ReadOnly => StatusCode::FORBIDDEN,
            E::UnknownType(_) | E::Invalid(_) | E::Input(_) => StatusCode::BAD_REQUEST,
            E::Storage(_) | E::Secrets(_) | E::Io { .. } | E::InvalidProvisioningConfig(_) => {
                return match err {
                    E::Storage(err) => ApiError::from(err),
                    other => {
                        // A key or a file of the server's is at fault; the cause is logged.
                        tracing::error!(error = %other, "data sources error while serving a request");
                        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    }
                };
            }
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<tandem_alerting::Error> for ApiError {
    fn from(err: tandem_alerting::Error) -> ApiError {
        use tandem_alerting::Error as E;
        let code = match &err {
            E::Invalid(_)
            | E::BadRequest(_)
            | E::FolderNotFound
            | E::TitleTaken
            | E::UidTaken
            | E::ProvisionedGroup(_)
            | E::Input(_) => StatusCode::BAD_REQUEST,
            E::RuleNotFound
            | E::GroupNotFound
            | E::NotificationNotFound(_)
            | E::SilenceNotFound => StatusCode::NOT_FOUND,
            E::NotificationConflict(_) => StatusCode::CONFLICT,
            E::VersionMismatch | E::ProvenanceChange { .. } | E::ProvenanceMismatch { .. } => {
                StatusCode::CONFLICT
            }
            E::DataSources(inner) if inner.is_client_error() => StatusCode::BAD_REQUEST,
            E::Storage(_) => {
                return ApiError::from(match err {
                    E::Storage(inner) => inner,
                    _ => return ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR),
                });
            }
            _ => {
                // The server's own files or rows are at fault; the details go to the log.
                tracing::error!(error = %err, "alerting error while serving a request");
                return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
            }
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<tandem_storage::input::InputError> for ApiError {
    fn from(err: tandem_storage::input::InputError) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, err.to_string())
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
