//! What the identity routes share: Grafana's JSON shapes of users, orgs, teams and
//! sessions, the profile body, the search query of orgs, teams and service accounts, and
//! the lookup of a person by id.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_sessions::{Error, Org, OrgUser, Paging, Role, Session, Team, User, UserId, UserUpdate};

use crate::{ApiError, AppState};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time in RFC 3339, as Grafana's JSON writes `time.Time`.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// `lastSeenAt` of a user never seen: Grafana shows creation minus ten years.
fn last_seen(user: &User) -> OffsetDateTime {
    if user.last_seen_at.unix_timestamp() == 0 {
        user.created - time::Duration::days(3652)
    } else {
        user.last_seen_at
    }
}

/// Grafana's `lastSeenAtAge`: "10 years", "3 days", "< 1 minute".
pub(crate) fn age(since: OffsetDateTime) -> String {
    let elapsed = OffsetDateTime::now_utc() - since;
    let minutes = elapsed.whole_minutes();
    let (n, unit) = if minutes < 1 {
        return "< 1 minute".to_owned();
    } else if minutes < 60 {
        (minutes, "minute")
    } else if minutes < 60 * 24 {
        (minutes / 60, "hour")
    } else if minutes < 60 * 24 * 30 {
        (minutes / (60 * 24), "day")
    } else if minutes < 60 * 24 * 365 {
        (minutes / (60 * 24 * 30), "month")
    } else {
        (minutes / (60 * 24 * 365), "year")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The profile of `/api/user` and `/api/users/:id`.
pub(crate) fn user_profile(user: &User) -> Value {
    json!({
        "id": user.id.0,
        "uid": user.uid,
        "email": user.email,
        "name": user.name,
        "login": user.login,
        "theme": "",
        "orgId": user.org_id.0,
        "isGrafanaAdmin": user.is_admin,
        "isDisabled": user.is_disabled,
        "isExternal": false,
        "isExternallySynced": false,
        "isGrafanaAdminExternallySynced": false,
        "authLabels": [],
        "updatedAt": rfc3339(user.updated),
        "createdAt": rfc3339(user.created),
        "avatarUrl": "",
        "isProvisioned": false,
    })
}

/// An item of `/api/users` and `/api/users/search`.
pub(crate) fn user_hit(user: &User) -> Value {
    let seen = last_seen(user);
    json!({
        "id": user.id.0,
        "uid": user.uid,
        "name": user.name,
        "login": user.login,
        "email": user.email,
        "avatarUrl": "",
        "isAdmin": user.is_admin,
        "isDisabled": user.is_disabled,
        "lastSeenAt": rfc3339(seen),
        "lastSeenAtAge": age(seen),
        "authLabels": [],
    })
}

/// An item of `/api/user/orgs` and `/api/users/:id/orgs`.
pub(crate) fn user_org(org: &Org, role: Role) -> Value {
    json!({"orgId": org.id.0, "name": org.name, "role": role.as_str()})
}

/// An org of `/api/org`, `/api/orgs/:id`.
pub(crate) fn org(org: &Org) -> Value {
    json!({
        "id": org.id.0,
        "name": org.name,
        "address": {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "", "country": ""},
    })
}

/// A member of `/api/org/users` and `/api/orgs/:id/users`.
pub(crate) fn org_user(member: &OrgUser) -> Value {
    let seen = last_seen(&member.user);
    json!({
        "orgId": member.org_id.0,
        "userId": member.user.id.0,
        "uid": member.user.uid,
        "email": member.user.email,
        "name": member.user.name,
        "avatarUrl": "",
        "login": member.user.login,
        "role": member.role.as_str(),
        "lastSeenAt": rfc3339(seen),
        "lastSeenAtAge": age(seen),
        "isDisabled": member.user.is_disabled,
        "authLabels": [],
        "isExternallySynced": false,
        "isProvisioned": false,
    })
}

/// A team of `/api/teams/:id` and `/api/teams/search`.
pub(crate) fn team(team: &Team) -> Value {
    json!({
        "id": team.id.0,
        "uid": team.uid,
        "orgId": team.org_id.0,
        "name": team.name,
        "email": team.email,
        "avatarUrl": "",
        "memberCount": team.member_count,
        "permission": 0,
    })
}

/// An item of `/api/user/auth-tokens` and `/api/admin/users/:id/auth-tokens`.
pub(crate) fn session(session: &Session, active: bool) -> Value {
    json!({
        "id": session.id.0,
        "isActive": active,
        "clientIp": session.client_ip,
        "browser": browser(&session.user_agent),
        "browserVersion": "",
        "os": "",
        "osVersion": "",
        "device": "Other",
        "authModule": "",
        "createdAt": rfc3339(session.created_at),
        "seenAt": rfc3339(session.seen_at),
    })
}

/// A rough browser family from the user agent (Grafana parses it fully; clients only show it).
fn browser(user_agent: &str) -> &'static str {
    let checks = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-requests", "Python Requests"),
    ];
    checks
        .iter()
        .find(|(needle, _)| user_agent.contains(needle))
        .map_or("Other", |(_, family)| family)
}

/// The body of `PUT /api/user` and `PUT /api/users/:id`.
#[derive(Deserialize)]
pub(crate) struct ProfileBody {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) login: Option<String>,
}

impl ProfileBody {
    /// The update, with Grafana's rule that an empty login becomes the email.
    pub(crate) fn into_update(self) -> Result<UserUpdate, ApiError> {
        let email = self
            .email
            .map(|email| email.trim().to_owned())
            .filter(|email| !email.is_empty());
        let mut login = self
            .login
            .map(|login| login.trim().to_owned())
            .filter(|login| !login.is_empty());
        if login.is_none() {
            login = email.clone();
        }
        if login.is_none() && email.is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "Need to specify either username or email",
            ));
        }
        Ok(UserUpdate {
            login,
            email,
            name: self.name,
        })
    }
}

/// Maps a profile update's conflict to Grafana's message.
pub(crate) fn update_error(err: Error) -> ApiError {
    match err {
        Error::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "Update would result in user login conflict",
        ),
        other => other.into(),
    }
}

/// The query of the searches of orgs, teams and service accounts: Grafana's `query`, an
/// exact `name`, `page` (from 1; smaller values mean 1) and `perpage` (1000 when absent or
/// not positive). Numbers that do not parse count as absent, as in Grafana.
#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    perpage: Option<String>,
}

impl SearchQuery {
    /// The page asked for.
    pub(crate) fn paging(&self) -> Paging {
        let number =
            |value: &Option<String>| value.as_deref().and_then(|v| v.trim().parse::<i64>().ok());
        let page = number(&self.page).unwrap_or(1).max(1);
        let per_page = number(&self.perpage).filter(|n| *n > 0).unwrap_or(1000);
        Paging::new(page.unsigned_abs(), per_page.unsigned_abs())
    }

    /// The search text; empty when absent.
    pub(crate) fn text(&self) -> &str {
        self.query.as_deref().unwrap_or_default().trim()
    }

    /// The exact name asked for, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
    }
}

/// The person with this id: 404 `{"message":"User not found"}` for an unknown id or a
/// service account.
pub(crate) async fn person(state: &AppState, id: i64) -> Result<User, ApiError> {
    state
        .identity
        .store()
        .get_user(UserId(id))
        .await?
        .filter(|user| !user.is_service_account)
        .ok_or_else(user_not_found)
}

/// Grafana 12's 404 for a user id or login it does not know.
pub(crate) fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "User not found")
}

/// The user a `/api/users/:id…` path names: a non-numeric id names nobody, so it is the
/// same 404 as an unknown one, as Grafana 12 answers.
pub(crate) async fn person_at(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id: i64 = id.trim().parse().map_err(|_| user_not_found())?;
    person(state, id).await
}
