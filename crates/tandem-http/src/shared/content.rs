//! What the content routes (dashboards, folders, search) share: the ids the dashboards
//! domain uses for the caller, the URLs Grafana gives dashboards and folders, and the logins
//! of authors.

use std::collections::HashMap;

use tandem_dashboards::UserId;

use crate::{ApiError, AppState, CurrentUser};

/// The org a request acts in, as the dashboards domain numbers it.
pub(crate) fn org(current: &CurrentUser) -> tandem_dashboards::OrgId {
    tandem_dashboards::OrgId(current.org_id.0)
}

/// The caller, as the dashboards domain numbers users.
pub(crate) fn user(current: &CurrentUser) -> UserId {
    UserId(current.user.id.0)
}

/// The URL of a dashboard, under the server's sub-path.
pub(crate) fn dashboard_url(state: &AppState, uid: &str, slug: &str) -> String {
    format!("{}/d/{uid}/{slug}", state.sub_path())
}

/// The logins Grafana shows for who created or saved something, each looked up once per
/// answer (a page of versions names the same few authors many times): `Anonymous` for the
/// system (file provisioning) and for users that no longer exist.
#[derive(Default)]
pub(crate) struct Logins(HashMap<i64, String>);

impl Logins {
    pub(crate) async fn of(&mut self, state: &AppState, id: UserId) -> Result<String, ApiError> {
        if let Some(login) = self.0.get(&id.0) {
            return Ok(login.clone());
        }
        let user = if id.0 <= 0 {
            None
        } else {
            state
                .identity
                .store()
                .get_user(tandem_sessions::UserId(id.0))
                .await?
        };
        let login = user.map_or_else(|| "Anonymous".to_owned(), |user| user.login);
        self.0.insert(id.0, login.clone());
        Ok(login)
    }
}

/// The URL of a folder, under the server's sub-path.
pub(crate) fn folder_url(state: &AppState, uid: &str, title: &str) -> String {
    format!(
        "{}/dashboards/f/{uid}/{}",
        state.sub_path(),
        tandem_dashboards::slugify(title)
    )
}
