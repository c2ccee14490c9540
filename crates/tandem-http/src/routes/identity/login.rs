//! `POST /login`, `GET /logout`, `GET /api/login/ping`, `POST /api/user/auth-tokens/rotate`.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{clear_session_cookies, client_ip, cookie, set_session_cookies, user_agent};
use crate::extract::JsonBody;
use crate::{ApiError, AppState, CurrentUser};

#[derive(Deserialize)]
pub(crate) struct LoginBody {
    #[serde(default)]
    user: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login {user, password}`: opens a session and sets its cookies.
pub(crate) async fn login(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let ip = client_ip(&request);
    let agent = user_agent(request.headers());
    let JsonBody(body) = JsonBody::<LoginBody>::from_request_with(request, &state).await?;
    let login = if body.user.is_empty() {
        body.email
    } else {
        body.user
    };
    if login.is_empty() || body.password.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad login data"));
    }
    let (_, new) = state
        .identity
        .login(&login, &body.password, &ip, &agent)
        .await?;
    let redirect = format!("{}/", state.sub_path());
    let mut response =
        Json(json!({"message": "Logged in", "redirectUrl": redirect})).into_response();
    set_session_cookies(
        &state,
        response.headers_mut(),
        &new.token,
        new.session.rotated_at,
    );
    Ok(response)
}

/// `GET /logout`: ends the session (if any), clears both cookies, redirects to the login page.
pub(crate) async fn logout(State(state): State<AppState>, request: Request) -> Response {
    if let Some(token) = cookie(request.headers(), &state.auth.login_cookie_name)
        && let Err(err) = state.identity.logout(&token).await
    {
        tracing::warn!(error = %err, "ending a session at logout failed");
    }
    let mut response = StatusCode::FOUND.into_response();
    let location = format!("{}/login", state.sub_path());
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    clear_session_cookies(&state, response.headers_mut());
    response
}

/// `GET /api/login/ping`: 200 while the caller's credentials hold.
pub(crate) async fn ping(_user: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({"message": "Logged in"}))
}

/// `POST /api/user/auth-tokens/rotate`: rotates the caller's session token now and sets the
/// new cookies. When another request rotated it first, answers 200 without cookies: the
/// token presented still works for the grace period.
pub(crate) async fn rotate(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(token) = cookie(request.headers(), &state.auth.login_cookie_name) else {
        return Err(ApiError::unauthorized());
    };
    let auth = match state.identity.rotate(&token).await {
        Ok(auth) => auth,
        Err(err) => {
            let mut response = ApiError::from(err).into_response();
            clear_session_cookies(&state, response.headers_mut());
            return Ok(response);
        }
    };
    let mut response = Json(json!({})).into_response();
    if let Some(new) = auth.rotated {
        set_session_cookies(
            &state,
            response.headers_mut(),
            &new,
            auth.session.rotated_at,
        );
    }
    Ok(response)
}

impl<T: serde::de::DeserializeOwned> JsonBody<T> {
    /// Extracts the body from a request the handler already holds.
    pub(crate) async fn from_request_with(
        request: Request,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        <Self as axum::extract::FromRequest<AppState>>::from_request(request, state).await
    }
}
