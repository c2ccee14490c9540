//! What the Live routes share: who the client is, the `Origin` check, and the mapping of
//! Live's errors.

use axum::http::{HeaderMap, StatusCode, header};
use tandem_live::{ClientInfo, OrgId};
use tandem_sessions::Role;

use crate::{ApiError, AppState, CurrentUser};

/// The caller as Live knows it; 403 for a caller that is no member of the org.
pub(crate) fn client_info(current: &CurrentUser) -> Result<ClientInfo, ApiError> {
    let role = match current.role {
        Some(Role::Admin) => tandem_live::Role::Admin,
        Some(Role::Editor) => tandem_live::Role::Editor,
        Some(Role::Viewer) => tandem_live::Role::Viewer,
        None => return Err(ApiError::new(StatusCode::FORBIDDEN, "Permission denied")),
    };
    Ok(ClientInfo {
        user_id: current.user.id.0,
        org_id: OrgId(current.org_id.0),
        role,
    })
}

/// The routes whose handlers call [`check_origin`] first (the WebSocket upgrades): the CSRF
/// check leaves their `Origin` to it, so that `[live] allowed_origins` keeps its meaning for
/// browsers with a session.
pub(crate) const ORIGIN_CHECKED_ROUTES: &[&str] = &["/api/live/ws", "/api/live/push/{stream_id}"];

/// Refuses a WebSocket upgrade from a browser page of another site: `Origin` must be
/// `root_url`'s, the request's own `Host`, or one of `[live] allowed_origins` (`*` allows
/// any). No `Origin` (a script, a server) passes, as in Grafana.
pub(crate) fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or_default()
        .trim()
        .trim_end_matches('/');
    let allowed = &state.live.settings().allowed_origins;
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let own = origin_of(&state.root_url);
    let same_host = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
    let listed = allowed
        .iter()
        .any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if origin.eq_ignore_ascii_case(&own) || same_host || listed {
        return Ok(());
    }
    tracing::info!(origin, "refused a Live connection from a foreign origin");
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Request origin is not allowed",
    ))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or_default();
            format!("{scheme}://{authority}")
        }
        None => url.trim_end_matches('/').to_owned(),
    }
}

/// Live's errors on the HTTP routes.
pub(crate) fn live_error(err: tandem_live::Error) -> ApiError {
    use tandem_live::{ChannelError, Error as E};
    let code = match &err {
        E::Channel(ChannelError::Unknown) => StatusCode::NOT_FOUND,
        E::Channel(ChannelError::OtherOrg) | E::PermissionDenied => StatusCode::FORBIDDEN,
        E::Channel(_) | E::BadRequest(_) | E::Input(_) | E::Influx(_) => StatusCode::BAD_REQUEST,
        _ => {
            tracing::error!(error = %err, "live error while serving a request");
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        }
    };
    ApiError::new(code, err.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_origin_of_root_url_is_scheme_and_authority() {
        assert_eq!(
            super::origin_of("http://localhost:3000/"),
            "http://localhost:3000"
        );
        assert_eq!(
            super::origin_of("https://grafana.example.com/sub/"),
            "https://grafana.example.com"
        );
    }
}
