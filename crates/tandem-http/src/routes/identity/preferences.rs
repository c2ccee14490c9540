//! `/api/user/preferences`, `/api/org/preferences` and `/api/teams/:id/preferences`: theme,
//! home dashboard, time zone, week start and language, in Grafana 12.1's shapes.
//!
//! A GET answers only the fields that are set (Grafana's `preferences.Spec`), with the home
//! dashboard as `homeDashboardUID`; a PUT replaces every field, a PATCH only those it
//! names; both answer `{"message":"Preferences updated"}`. A `homeDashboardUID` names a
//! dashboard of the org (an unknown one is 404 `Dashboard not found`, an empty one clears
//! it); a `homeDashboardId` is stored as given, as Grafana stores it. Anyone signed in sets
//! their own; org members read the org's and team's, Admins change them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tandem_dashboards::DashboardUid;
use tandem_sessions::{PreferenceOwner, Preferences, PreferencesPatch, Role, TeamId};

use crate::extract::{JsonBody, PathParams};
use crate::routing::Routes;
use crate::shared::content::org;
use crate::shared::preferences::home_dashboard;
use crate::{ApiError, AppState, CurrentUser};

/// The example body of the route table.
const EXAMPLE: &str = r#"{"theme":"dark","homeDashboardUID":"","timezone":"utc","weekStart":"monday","language":"en-US","queryHistory":{"homeTab":"query"}}"#;

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .get("/api/user/preferences", get_user)
        .put("/api/user/preferences", put_user)
        .body(EXAMPLE)
        .patch("/api/user/preferences", patch_user)
        .body(EXAMPLE)
        .get("/api/org/preferences", get_org)
        .put("/api/org/preferences", put_org)
        .body(EXAMPLE)
        .patch("/api/org/preferences", patch_org)
        .body(EXAMPLE)
        .get("/api/teams/{team_id}/preferences", get_team)
        .put("/api/teams/{team_id}/preferences", put_team)
        .body(EXAMPLE)
        .patch("/api/teams/{team_id}/preferences", patch_team)
        .body(EXAMPLE)
}

/// Explore's query history preference.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryHistory {
    #[serde(default)]
    home_tab: Option<String>,
}

/// The body of a PUT or PATCH (Grafana's `UpdatePrefsCmd` and `PatchPrefsCmd`); fields
/// Tandem does not keep (`regionalFormat`, `cookies`, `navbar`) are ignored. A PUT treats
/// an absent field as empty.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    home_dashboard_id: Option<i64>,
    #[serde(default, rename = "homeDashboardUID", alias = "homeDashboardUid")]
    home_dashboard_uid: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    week_start: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    query_history: Option<QueryHistory>,
}

impl Body {
    /// Reads a body, which must be a JSON object (serde would take `[]` for a struct).
    fn parse(body: Value) -> Result<Body, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request("bad request data"));
        }
        serde_json::from_value(body)
            .map_err(|err| ApiError::bad_request(format!("bad request data: {err}")))
    }

    /// The change asked for, with the home dashboard's uid turned into its id.
    async fn patch(
        self,
        state: &AppState,
        current: &CurrentUser,
    ) -> Result<PreferencesPatch, ApiError> {
        let home_dashboard_id = match self.home_dashboard_uid.as_deref().map(str::trim) {
            Some("") => Some(0),
            Some(uid) => {
                let dashboard = state
                    .dashboards
                    .get(org(current), &DashboardUid::from(uid))
                    .await?;
                Some(dashboard.id.0)
            }
            None => self.home_dashboard_id,
        };
        Ok(PreferencesPatch {
            theme: self.theme,
            home_dashboard_id,
            timezone: self.timezone,
            week_start: self.week_start,
            language: self.language,
            query_history_home_tab: self.query_history.and_then(|history| history.home_tab),
        })
    }
}

// ---- the caller's own

async fn get_user(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    answer(&state, &current, user_owner(&current)).await
}

async fn put_user(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    put(&state, &current, user_owner(&current), body).await
}

async fn patch_user(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    patch(&state, &current, user_owner(&current), body).await
}

// ---- the org's

async fn get_org(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    answer(&state, &current, PreferenceOwner::Org(current.org_id)).await
}

async fn put_org(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    put(&state, &current, PreferenceOwner::Org(current.org_id), body).await
}

async fn patch_org(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    patch(&state, &current, PreferenceOwner::Org(current.org_id), body).await
}

// ---- a team's

async fn get_team(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let owner = team_owner(&state, &current, team).await?;
    answer(&state, &current, owner).await
}

async fn put_team(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let owner = team_owner(&state, &current, team).await?;
    crate::routes::identity::teams::require_team_admin(&state, &current, TeamId(team)).await?;
    put(&state, &current, owner, body).await
}

async fn patch_team(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let owner = team_owner(&state, &current, team).await?;
    crate::routes::identity::teams::require_team_admin(&state, &current, TeamId(team)).await?;
    patch(&state, &current, owner, body).await
}

// ---- helpers

fn user_owner(current: &CurrentUser) -> PreferenceOwner {
    PreferenceOwner::User(current.org_id, current.user.id)
}

/// The team of the org the request acts in; 404 `Team not found` otherwise.
async fn team_owner(
    state: &AppState,
    current: &CurrentUser,
    team: i64,
) -> Result<PreferenceOwner, ApiError> {
    let found = state
        .identity
        .store()
        .get_team(current.org_id, TeamId(team))
        .await?;
    match found {
        Some(team) => Ok(PreferenceOwner::Team(current.org_id, team.id)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "Team not found")),
    }
}

async fn put(
    state: &AppState,
    current: &CurrentUser,
    owner: PreferenceOwner,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    let patch = Body::parse(body)?.patch(state, current).await?;
    let preferences = Preferences {
        theme: patch.theme.unwrap_or_default(),
        home_dashboard_id: patch.home_dashboard_id.unwrap_or_default(),
        timezone: patch.timezone.unwrap_or_default(),
        week_start: patch.week_start.unwrap_or_default(),
        language: patch.language.unwrap_or_default(),
        query_history_home_tab: patch.query_history_home_tab.unwrap_or_default(),
    };
    state.preferences.put(owner, preferences).await?;
    Ok(updated())
}

async fn patch(
    state: &AppState,
    current: &CurrentUser,
    owner: PreferenceOwner,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    let patch = Body::parse(body)?.patch(state, current).await?;
    state.preferences.patch(owner, patch).await?;
    Ok(updated())
}

fn updated() -> Json<Value> {
    Json(json!({"message": "Preferences updated"}))
}

/// Grafana's answer: the fields that are set, the home dashboard by uid (left out when it
/// no longer exists).
async fn answer(
    state: &AppState,
    current: &CurrentUser,
    owner: PreferenceOwner,
) -> Result<Json<Value>, ApiError> {
    let preferences = state.preferences.get(owner).await?;
    let mut out = Map::new();
    let mut text = |key: &str, value: &str| {
        if !value.is_empty() {
            out.insert(key.to_owned(), Value::from(value));
        }
    };
    text("theme", &preferences.theme);
    text("timezone", &preferences.timezone);
    text("weekStart", &preferences.week_start);
    text("language", &preferences.language);
    if let Some(dashboard) = home_dashboard(state, current, preferences.home_dashboard_id).await? {
        out.insert(
            "homeDashboardUID".to_owned(),
            Value::from(dashboard.uid.as_str()),
        );
    }
    if !preferences.query_history_home_tab.is_empty() {
        out.insert(
            "queryHistory".to_owned(),
            json!({"homeTab": preferences.query_history_home_tab}),
        );
    }
    Ok(Json(Value::Object(out)))
}
