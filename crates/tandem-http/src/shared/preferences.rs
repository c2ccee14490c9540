//! The caller's effective preferences, which both the preference routes and the home
//! dashboard read.

use tandem_dashboards::{Dashboard, DashboardId};
use tandem_sessions::{Preferences, TeamId};

use crate::shared::content::org;
use crate::{ApiError, AppState, CurrentUser};

/// The org's preferences, overridden by each of the caller's teams (in id order), then by
/// the caller's own: what Grafana applies.
pub(crate) async fn effective(
    state: &AppState,
    current: &CurrentUser,
) -> Result<Preferences, ApiError> {
    let mut teams: Vec<TeamId> = state
        .identity
        .store()
        .user_teams(current.org_id, current.user.id)
        .await?
        .into_iter()
        .map(|team| team.id)
        .collect();
    teams.sort_unstable_by_key(|team| team.0);
    let layers = state
        .preferences
        .layers(current.org_id, current.user.id, &teams)
        .await?;
    Ok(Preferences::merged(&layers))
}

/// The dashboard a stored home dashboard id names, if it still exists in the org.
pub(crate) async fn home_dashboard(
    state: &AppState,
    current: &CurrentUser,
    id: i64,
) -> Result<Option<Dashboard>, ApiError> {
    if id == 0 {
        return Ok(None);
    }
    match state
        .dashboards
        .get_by_id(org(current), DashboardId(id))
        .await
    {
        Ok(dashboard) => Ok(Some(dashboard)),
        Err(tandem_dashboards::Error::DashboardNotFound) => Ok(None),
        Err(err) => Err(err.into()),
    }
}
