//! What folder and dashboard permissions let the caller do: the [`Subject`] a request
//! acts as, and the checks every content route makes before it reads or writes.
//!
//! A refusal is Grafana 12's 403 with the action it needed named in the message. An org
//! Admin passes every check without a lookup; anyone else costs one read of their teams
//! and one read of the items on the resource and the folders above it.

use axum::http::StatusCode;
use tandem_dashboards::{
    BasicRole, Dashboard, FolderUid, Level, OrgId, Permissions, Subject, TeamId, UserId,
};
use tandem_sessions::Role;

use crate::shared::content::org;
use crate::{ApiError, AppState, CurrentUser};

/// The caller as the permissions see them: user, basic role and teams in the org.
pub(crate) async fn subject(state: &AppState, current: &CurrentUser) -> Result<Subject, ApiError> {
    let role = current.role.map(|role| match role {
        Role::Viewer => BasicRole::Viewer,
        Role::Editor => BasicRole::Editor,
        Role::Admin => BasicRole::Admin,
    });
    Ok(subject_for(&state.identity, current.org_id, current.user.id, role).await?)
}

/// User `user` with `role` in `org` as the permissions see them: their teams are read
/// (one query) unless they are an org Admin, whom no item can restrict. What HTTP
/// requests and Live connections both ask.
pub(crate) async fn subject_for(
    identity: &tandem_sessions::Identity,
    org: tandem_sessions::OrgId,
    user: tandem_sessions::UserId,
    role: Option<BasicRole>,
) -> tandem_sessions::Result<Subject> {
    let teams = if role == Some(BasicRole::Admin) || user.0 <= 0 {
        Vec::new()
    } else {
        identity
            .store()
            .user_team_ids(org, user)
            .await?
            .into_iter()
            .map(|team| TeamId(team.0))
            .collect()
    };
    Ok(Subject {
        user: UserId(user.0),
        role,
        teams,
    })
}

/// Deletes the items naming a deleted user (in every org) or team, so that a later user
/// or team can never inherit them.
pub(crate) async fn forget(
    state: &AppState,
    org: Option<OrgId>,
    principal: tandem_dashboards::Principal,
) -> Result<(), ApiError> {
    state
        .permissions
        .store()
        .forget_principal(org, &principal)
        .await?;
    Ok(())
}

/// The uids of the folders the caller may view; `None` for an org Admin, who views them
/// all. What lists of folder content (alert rules, their alerts) filter by.
pub(crate) async fn viewable_folders(
    state: &AppState,
    current: &CurrentUser,
) -> Result<Option<std::collections::HashSet<String>>, ApiError> {
    let subject = subject(state, current).await?;
    Ok(state
        .permissions
        .viewable_folders(&subject, org(current))
        .await?
        .map(|folders| folders.into_iter().map(FolderUid::into_string).collect()))
}

/// Refused with 403 unless the caller holds `need` on the folder of alert rules `uid`
/// (Grafana's `alert.rules:read` and `:write` are scoped by folder the same way).
pub(crate) async fn require_rules_folder(
    state: &AppState,
    current: &CurrentUser,
    uid: &str,
    need: Level,
) -> Result<(), ApiError> {
    let subject = subject(state, current).await?;
    match state
        .permissions
        .folder_level(&subject, org(current), &FolderUid::from(uid))
        .await?
    {
        Some(level) if level >= need => Ok(()),
        _ => Err(denied(match need {
            Level::View => "alert.rules:read",
            _ => "alert.rules:write",
        })),
    }
}

/// Grafana 12's refusal, naming the action that was needed.
pub(crate) fn denied(action: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "You'll need additional permissions to perform this action. Permissions needed: {action}"
        ),
    )
}

/// The action Grafana names for a level on a dashboard.
fn dashboard_action(need: Level) -> &'static str {
    match need {
        Level::View => "dashboards:read",
        Level::Edit => "dashboards:write",
        Level::Admin => "dashboards.permissions:write",
    }
}

/// The action Grafana names for a level on a folder.
fn folder_action(need: Level) -> &'static str {
    match need {
        Level::View => "folders:read",
        Level::Edit => "folders:write",
        Level::Admin => "folders.permissions:write",
    }
}

/// The caller's level on a dashboard, refused with 403 below `need`.
pub(crate) async fn require_dashboard(
    state: &AppState,
    subject: &Subject,
    dashboard: &Dashboard,
    need: Level,
) -> Result<Level, ApiError> {
    match state
        .permissions
        .dashboard_level(subject, dashboard)
        .await?
    {
        Some(level) if level >= need => Ok(level),
        _ => Err(denied(dashboard_action(need))),
    }
}

/// The caller's level on a folder, refused with 403 below `need`; 404 when it is missing.
pub(crate) async fn require_folder(
    state: &AppState,
    subject: &Subject,
    org: OrgId,
    uid: &FolderUid,
    need: Level,
) -> Result<Level, ApiError> {
    match state.permissions.folder_level(subject, org, uid).await? {
        Some(level) if level >= need => Ok(level),
        _ => Err(denied(folder_action(need))),
    }
}

/// Refused with 403 unless the caller may create content in `folder` (`None`: the root,
/// where Editors create, as in Grafana); `action` is what Grafana names.
pub(crate) async fn require_create(
    state: &AppState,
    subject: &Subject,
    current: &CurrentUser,
    folder: Option<&FolderUid>,
    action: &str,
) -> Result<(), ApiError> {
    let level = match folder {
        None => Permissions::root_level(subject),
        Some(uid) => {
            match state
                .permissions
                .folder_level(subject, org(current), uid)
                .await
            {
                Ok(level) => level,
                // The write itself answers for a folder that does not exist.
                Err(tandem_dashboards::Error::FolderNotFound) => return Ok(()),
                Err(err) => return Err(err.into()),
            }
        }
    };
    if level.is_some_and(|level| level >= Level::Edit) {
        Ok(())
    } else {
        Err(denied(action))
    }
}

/// Grafana's `can*` fields for a level.
pub(crate) struct Abilities {
    pub(crate) can_edit: bool,
    pub(crate) can_admin: bool,
}

impl Abilities {
    pub(crate) fn of(level: Option<Level>) -> Abilities {
        Abilities {
            can_edit: level.is_some_and(|level| level >= Level::Edit),
            can_admin: level.is_some_and(|level| level >= Level::Admin),
        }
    }
}
