//! What the data source routes share.

use tandem_datasources::OrgId;

use crate::{ApiError, CurrentUser};

/// The org a request acts in, as the data sources domain numbers it.
pub(crate) fn org(current: &CurrentUser) -> OrgId {
    OrgId(current.org_id.0)
}

/// A deletion's error, with Grafana's wording for a read-only data source.
pub(crate) fn read_only_delete(err: tandem_datasources::Error) -> ApiError {
    match err {
        tandem_datasources::Error::ReadOnly => ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "Cannot delete read-only data source",
        ),
        other => other.into(),
    }
}
