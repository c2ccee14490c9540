//! `/api/teams…`: the teams of the org the request acts in, and their members.
//!
//! Viewers read; Admins create, change and delete teams and memberships. Answers and
//! messages follow Grafana 12.1: the person who creates a team becomes its first member, a
//! duplicate name is 409 on create but 400 on rename.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{Error, OrgId, Paging, Role, Team, TeamId, User, UserId};

use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::routing::Routes;
use crate::shared::identity as dto;
use crate::shared::identity::SearchQuery;
use crate::{ApiError, AppState, CurrentUser};

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    Routes::new()
        .post("/api/teams", create)
        .body(r#"{"name":"A team","email":"team@example.com"}"#)
        .get("/api/teams/search", search)
        .query("query=a&name=b&page=1&perpage=10")
        .get("/api/teams/{team_id}", get_one)
        .put("/api/teams/{team_id}", update)
        .body(r#"{"name":"Renamed team","email":"team@example.com"}"#)
        .delete("/api/teams/{team_id}", remove)
        .get("/api/teams/{team_id}/members", members)
        .post("/api/teams/{team_id}/members", add_member)
        .body(r#"{"userId":2}"#)
        .put(
            "/api/teams/{team_id}/members/{user_id}",
            set_member_permission,
        )
        .body(r#"{"permission":4}"#)
        .delete("/api/teams/{team_id}/members/{user_id}", remove_member)
}

/// The body of `POST /api/teams`.
#[derive(Deserialize)]
pub(crate) struct CreateBody {
    #[serde(alias = "Name")]
    name: String,
    #[serde(default, alias = "Email")]
    email: String,
}

/// The body of `PUT /api/teams/:id`. Like Grafana, an absent or empty name keeps the name,
/// while the email is always replaced.
#[derive(Deserialize)]
pub(crate) struct UpdateBody {
    #[serde(default, alias = "Name")]
    name: Option<String>,
    #[serde(default, alias = "Email")]
    email: String,
}

/// The body of `POST /api/teams/:id/members`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MemberBody {
    #[serde(alias = "UserId")]
    user_id: i64,
}

/// `POST /api/teams {name, email}`: creates a team in the current org; a person who creates
/// it becomes its first member.
async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Admin)?;
    let name = team_name(&body.name)?;
    let team = match state
        .identity
        .store()
        .create_team(current.org_id, name, body.email.trim())
        .await
    {
        Ok(team) => team,
        Err(Error::Conflict(_)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "Team name taken"));
        }
        Err(err) => return Err(err.into()),
    };
    if !current.user.is_service_account {
        // As in Grafana, the team exists whatever happens here: a failure is only logged.
        // The creator administers the team (Grafana's team permission 4).
        let store = state.identity.store();
        let added = match store
            .add_team_member(current.org_id, team.id, current.user.id)
            .await
        {
            Ok(()) => {
                store
                    .set_team_admin(current.org_id, team.id, current.user.id, true)
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = added {
            tracing::warn!(error = %err, team = team.id.0, "could not add the creator to the team");
        }
    }
    Ok(Json(
        json!({"teamId": team.id.0, "uid": team.uid, "message": "Team created"}),
    ))
}

/// `GET /api/teams/search?query&name&page&perpage`:
/// `{totalCount, teams, page, perPage}`, by name.
async fn search(
    State(state): State<AppState>,
    current: CurrentUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let paging = query.paging();
    let (total, teams) = match query.name() {
        Some(name) => {
            let found = find_by_name(&state, current.org_id, name).await?;
            let total = found.len() as u64;
            let offset = usize::try_from(paging.offset()).unwrap_or(usize::MAX);
            let page = found
                .into_iter()
                .skip(offset)
                .take(paging.per_page as usize)
                .collect();
            (total, page)
        }
        None => {
            let page = state
                .identity
                .store()
                .search_teams(current.org_id, query.text(), paging)
                .await?;
            (page.total, page.items)
        }
    };
    Ok(Json(json!({
        "totalCount": total,
        "teams": teams.iter().map(dto::team).collect::<Vec<_>>(),
        "page": paging.page,
        "perPage": paging.per_page,
    })))
}

/// `GET /api/teams/:id`.
async fn get_one(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    Ok(Json(dto::team(&team)))
}

/// `PUT /api/teams/:id {name, email}`.
async fn update(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    require_team_admin(&state, &current, team.id).await?;
    let name = match body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        Some(name) => team_name(name)?,
        None => team.name.as_str(),
    };
    match state
        .identity
        .store()
        .update_team(current.org_id, team.id, name, body.email.trim())
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Team updated"}))),
        Err(Error::Conflict(_)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "Team name taken")),
        Err(Error::NotFound(_)) => Err(team_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// `DELETE /api/teams/:id`: the team and its memberships.
async fn remove(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    require_team_admin(&state, &current, team.id).await?;
    match state
        .identity
        .store()
        .delete_team(current.org_id, team.id)
        .await
    {
        Ok(()) => {
            crate::shared::access::forget(
                &state,
                Some(tandem_dashboards::OrgId(current.org_id.0)),
                tandem_dashboards::Principal::Team(tandem_dashboards::TeamId(team.id.0)),
            )
            .await?;
            Ok(Json(json!({"message": "Team deleted"})))
        }
        Err(Error::NotFound(_)) => Err(team_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// `GET /api/teams/:id/members`, by login.
async fn members(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    let members = state
        .identity
        .store()
        .team_members(current.org_id, team.id)
        .await?;
    let admins = state
        .identity
        .store()
        .team_admins(current.org_id, team.id)
        .await?;
    Ok(Json(
        members
            .iter()
            .map(|user| member(&team, user, admins.contains(&user.id)))
            .collect(),
    ))
}

/// The body of `PUT /api/teams/:id/members/:userId`.
#[derive(Deserialize)]
pub(crate) struct PermissionBody {
    permission: i64,
}

/// `PUT /api/teams/:id/members/:userId {permission}`: 4 makes the member an Admin of the
/// team, 0 a plain member again.
async fn set_member_permission(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((team, user)): PathParams<(i64, i64)>,
    JsonBody(body): JsonBody<PermissionBody>,
) -> Result<Json<Value>, ApiError> {
    current.require(Role::Viewer)?;
    let admin = match body.permission {
        0 => false,
        4 => true,
        _ => {
            return Err(ApiError::bad_request(
                "permission must be 0 (Member) or 4 (Admin)",
            ));
        }
    };
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    require_team_admin(&state, &current, team.id).await?;
    match state
        .identity
        .store()
        .set_team_admin(current.org_id, team.id, UserId(user), admin)
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Team member updated"}))),
        Err(Error::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Team member not found",
        )),
        Err(err) => Err(err.into()),
    }
}

/// `POST /api/teams/:id/members {userId}`: adds a member of the current org to the team.
async fn add_member(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams(team): PathParams<i64>,
    JsonBody(body): JsonBody<MemberBody>,
) -> Result<Json<Value>, ApiError> {
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    require_team_admin(&state, &current, team.id).await?;
    let user = UserId(body.user_id);
    // Users of other orgs are as invisible here as users that do not exist.
    if state
        .identity
        .org_role(user, current.org_id)
        .await?
        .is_none()
    {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "User not found"));
    }
    let already = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "User is already added to this team",
        )
    };
    if is_member(&state, &team, user).await? {
        return Err(already());
    }
    match state
        .identity
        .store()
        .add_team_member(current.org_id, team.id, user)
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Member added to Team"}))),
        Err(Error::Conflict(_)) => Err(already()),
        Err(err) => Err(err.into()),
    }
}

/// `DELETE /api/teams/:id/members/:userId`.
async fn remove_member(
    State(state): State<AppState>,
    current: CurrentUser,
    PathParams((team, user)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    let team = existing_team(&state, current.org_id, TeamId(team)).await?;
    require_team_admin(&state, &current, team.id).await?;
    let user = UserId(user);
    let not_member = || ApiError::new(StatusCode::NOT_FOUND, "Team member not found");
    if !is_member(&state, &team, user).await? {
        return Err(not_member());
    }
    match state
        .identity
        .store()
        .remove_team_member(current.org_id, team.id, user)
        .await
    {
        Ok(()) => Ok(Json(json!({"message": "Team Member removed"}))),
        Err(Error::NotFound(_)) => Err(not_member()),
        Err(err) => Err(err.into()),
    }
}

/// Org Admins manage every team of the org; an Admin member of a team (permission 4)
/// manages that team: its name and email, its members and their permissions, its
/// preferences and its deletion, as in Grafana. Anyone else is refused with 403.
pub(crate) async fn require_team_admin(
    state: &AppState,
    current: &CurrentUser,
    team: TeamId,
) -> Result<(), ApiError> {
    if current.require(Role::Admin).is_ok() {
        return Ok(());
    }
    current.require(Role::Viewer)?;
    let admins = state
        .identity
        .store()
        .team_admins(current.org_id, team)
        .await?;
    if !current.user.is_service_account && admins.contains(&current.user.id) {
        return Ok(());
    }
    current.require(Role::Admin)
}

fn team_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Team not found")
}

fn team_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 190 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad request data: name must be 1 to 190 characters",
        ));
    }
    Ok(name)
}

async fn existing_team(state: &AppState, org: OrgId, team: TeamId) -> Result<Team, ApiError> {
    state
        .identity
        .store()
        .get_team(org, team)
        .await?
        .ok_or_else(team_not_found)
}

async fn is_member(state: &AppState, team: &Team, user: UserId) -> Result<bool, ApiError> {
    let members = state
        .identity
        .store()
        .team_members(team.org_id, team.id)
        .await?;
    Ok(members.iter().any(|member| member.id == user))
}

/// The teams of `org` named exactly `name` (at most one: names are unique in an org).
async fn find_by_name(state: &AppState, org: OrgId, name: &str) -> Result<Vec<Team>, ApiError> {
    const PER_PAGE: u64 = 1000;
    let mut found = Vec::new();
    let mut seen = 0;
    for page in 1.. {
        let teams = state
            .identity
            .store()
            .search_teams(org, name, Paging::new(page, PER_PAGE))
            .await?;
        seen += teams.items.len() as u64;
        let last = (teams.items.len() as u64) < PER_PAGE || seen >= teams.total;
        found.extend(teams.items.into_iter().filter(|team| team.name == name));
        if last {
            break;
        }
    }
    Ok(found)
}

/// An item of `GET /api/teams/:id/members` (Grafana spells `auth_module` in snake case).
fn member(team: &Team, user: &User, admin: bool) -> Value {
    json!({
        "orgId": team.org_id.0,
        "teamId": team.id.0,
        "teamUID": team.uid,
        "userId": user.id.0,
        "userUID": user.uid,
        "auth_module": "",
        "email": user.email,
        "name": user.name,
        "login": user.login,
        "avatarUrl": "",
        "labels": [],
        "permission": if admin { 4 } else { 0 },
    })
}
