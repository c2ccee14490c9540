//! Who is calling: every `/api` request except `/api/health` is authenticated here, by
//! session cookie, `Authorization: Basic` (login or email and password, or `api_key` and a
//! service-account key), or `Authorization: Bearer glsa_…`; and the org it acts in is chosen
//! by `X-Grafana-Org-Id` or `?orgId=`, checked against membership.

use std::net::SocketAddr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tandem_sessions::{OrgId, Role, Session, User};
use time::OffsetDateTime;

use crate::{ApiError, AppState, SameSite};

/// The remote address of the connection, put in each request's extensions by the server.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// How the caller proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A session cookie; the session is known.
    Session(Session),
    /// `Authorization: Basic` with a password.
    Basic,
    /// A service-account key (Bearer or `Basic api_key:`).
    ApiKey {
        /// The key's id.
        key_id: i64,
    },
}

/// The authenticated caller of a request, and the org it acts in.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    /// The user (or service account).
    pub user: User,
    /// The org the request acts in.
    pub org_id: OrgId,
    /// The user's role in that org; `None` when not a member.
    pub role: Option<Role>,
    /// How the caller authenticated.
    pub method: AuthMethod,
}

impl CurrentUser {
    /// Passes when the caller has at least `role` in the current org (being a server admin
    /// does not stand in for an org role, as in Grafana). Otherwise 403 with a JSON body.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role.is_some_and(|have| have >= role) {
            return Ok(());
        }
        Err(ApiError::new(StatusCode::FORBIDDEN, "Permission denied"))
    }

    /// Passes for a server admin (Grafana's `isGrafanaAdmin`); otherwise 403.
    pub fn require_server_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin && !self.user.is_service_account {
            return Ok(());
        }
        Err(ApiError::new(StatusCode::FORBIDDEN, "Permission denied"))
    }

    /// The session this request came with, if it came with one.
    pub fn session(&self) -> Option<&Session> {
        match &self.method {
            AuthMethod::Session(session) => Some(session),
            _ => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Authenticates the request or answers 401 with a JSON body. A session whose token was
/// rotated by this request gets its new cookies on the response.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let client_ip = client_ip(&request);
    let outcome = identify(&state, request.headers(), &client_ip).await;
    let Identified {
        user,
        method,
        rotated,
        default_role,
    } = match outcome {
        Ok(found) => found,
        Err(err) => return err.into_response(),
    };
    let org_id = requested_org(&request).unwrap_or(user.org_id);
    let role = match default_role {
        // The session lookup already brought the role in the user's default org.
        Some(role) if org_id == user.org_id => role,
        _ => match state.identity.org_role(user.id, org_id).await {
            Ok(role) => role,
            Err(err) => return ApiError::from(err).into_response(),
        },
    };
    if let AuthMethod::ApiKey { .. } = &method {
        // A key acts only in its own org.
        if role.is_none() {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "API key does not belong to the requested organization",
            )
            .into_response();
        }
    }
    let expiry = match &method {
        AuthMethod::Session(session) => Some(session.rotated_at),
        _ => None,
    };
    request.extensions_mut().insert(CurrentUser {
        user,
        org_id,
        role,
        method,
    });
    let mut response = next.run(request).await;
    if let (Some(token), Some(rotated_at)) = (rotated, expiry) {
        set_session_cookies(&state, response.headers_mut(), &token, rotated_at);
    }
    response
}

/// What the credentials of a request establish.
struct Identified {
    user: User,
    method: AuthMethod,
    /// A token the session was rotated to by this request.
    rotated: Option<String>,
    /// The role in the user's default org, when the lookup already knows it.
    default_role: Option<Option<Role>>,
}

async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: &str,
) -> Result<Identified, ApiError> {
    if let Some(authorization) = headers.get(AUTHORIZATION) {
        let value = authorization
            .to_str()
            .map_err(|_| ApiError::unauthorized())?;
        let (scheme, credentials) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return api_key(state, credentials).await;
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(ApiError::unauthorized)?;
            let (login, password) = decoded.split_once(':').ok_or_else(ApiError::unauthorized)?;
            if login == "api_key" {
                return api_key(state, password).await;
            }
            let user = state
                .identity
                .check_password(login, password, client_ip)
                .await?;
            return Ok(Identified {
                user,
                method: AuthMethod::Basic,
                rotated: None,
                default_role: None,
            });
        }
        return Err(ApiError::unauthorized());
    }
    let token =
        cookie(headers, &state.auth.login_cookie_name).ok_or_else(ApiError::unauthorized)?;
    let auth = state.identity.authenticate_session(&token).await?;
    Ok(Identified {
        user: auth.user,
        method: AuthMethod::Session(auth.session),
        rotated: auth.rotated,
        default_role: Some(auth.org_role),
    })
}

async fn api_key(state: &AppState, key: &str) -> Result<Identified, ApiError> {
    let (account, key) = state.identity.authenticate_api_key(key).await?;
    Ok(Identified {
        user: account,
        method: AuthMethod::ApiKey { key_id: key.id },
        rotated: None,
        default_role: None,
    })
}

/// The org named by `X-Grafana-Org-Id` or `?orgId=`, if any and well-formed.
fn requested_org(request: &Request) -> Option<OrgId> {
    let header = request
        .headers()
        .get("x-grafana-org-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let query = || {
        request.uri().query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == "orgId")
                .then(|| value.parse::<i64>().ok())
                .flatten()
        })
    };
    header.or_else(query).filter(|id| *id > 0).map(OrgId)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"').to_owned())
        })
}

/// The client's address as text, for login attempts and the session list.
pub(crate) fn client_ip(request: &Request) -> String {
    request
        .extensions()
        .get::<ClientAddr>()
        .map(|addr| addr.0.ip().to_string())
        .unwrap_or_default()
}

/// The client's user agent, for the session list.
pub(crate) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Sets `grafana_session` (HttpOnly; lives as long as the session may) and
/// `grafana_session_expiry` (readable by scripts: the unix time at which the client should
/// expect the next rotation, a few seconds early).
pub(crate) fn set_session_cookies(
    state: &AppState,
    headers: &mut HeaderMap,
    token: &str,
    rotated_at: OffsetDateTime,
) {
    let identity = state.identity.settings();
    let max_age = identity.max_lifetime.as_secs();
    let expiry = (rotated_at + identity.rotation_interval).unix_timestamp() - 5;
    let session = cookie_line(state, &state.auth.login_cookie_name, token, max_age, true);
    let expiry = cookie_line(
        state,
        "grafana_session_expiry",
        &expiry.to_string(),
        max_age,
        false,
    );
    for line in [session, expiry] {
        if let Ok(value) = HeaderValue::from_str(&line) {
            headers.append(SET_COOKIE, value);
        }
    }
}

/// Clears both session cookies (logout).
pub(crate) fn clear_session_cookies(state: &AppState, headers: &mut HeaderMap) {
    for (name, http_only) in [
        (state.auth.login_cookie_name.as_str(), true),
        ("grafana_session_expiry", false),
    ] {
        let line = cookie_line(state, name, "", 0, http_only);
        if let Ok(value) = HeaderValue::from_str(&line) {
            headers.append(SET_COOKIE, value);
        }
    }
}

fn cookie_line(state: &AppState, name: &str, value: &str, max_age: u64, http_only: bool) -> String {
    let path = match state.sub_path() {
        "" => "/",
        path => path,
    };
    let mut line = format!("{name}={value}; Path={path}; Max-Age={max_age}");
    if http_only {
        line.push_str("; HttpOnly");
    }
    if state.auth.cookie_secure {
        line.push_str("; Secure");
    }
    match state.auth.cookie_samesite {
        SameSite::Lax => line.push_str("; SameSite=Lax"),
        SameSite::Strict => line.push_str("; SameSite=Strict"),
        SameSite::None => line.push_str("; SameSite=None"),
        SameSite::Disabled => {}
    }
    line
}
