use time::OffsetDateTime;

use crate::{
    ApiKey, Org, OrgId, OrgUser, Page, Paging, Result, Role, Session, Team, TeamId, TokenId, User,
    UserId,
};

/// What a new user (or service account) is made of; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// The login (stored lower-case).
    pub login: String,
    /// The email (stored lower-case); service accounts use their login.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The password hash (empty for service accounts, which cannot log in).
    pub password_hash: String,
    /// The salt of the hash.
    pub salt: String,
    /// Server admin.
    pub is_admin: bool,
    /// A service account rather than a person.
    pub is_service_account: bool,
    /// Disabled from the start.
    pub is_disabled: bool,
    /// The org the user joins (and works in by default).
    pub org_id: OrgId,
    /// The role in that org.
    pub role: Role,
}

/// A change to a user's profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    /// A new login.
    pub login: Option<String>,
    /// A new email.
    pub email: Option<String>,
    /// A new display name.
    pub name: Option<String>,
}

/// Which users a search returns.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// A case-insensitive substring of the login, email or name.
    pub query: Option<String>,
    /// Only members of this org.
    pub org_id: Option<OrgId>,
    /// Service accounts (`true`) or people (`false`).
    pub service_accounts: bool,
}

/// A session row as stored: the hashes of its current and previous tokens included.
#[derive(Clone, Debug)]
pub struct StoredSession {
    /// The session.
    pub session: Session,
    /// The hash of the current token.
    pub auth_token: String,
    /// The hash of the token before the last rotation (empty before the first).
    pub prev_auth_token: String,
}

/// Persistence of users, orgs, teams, service-account keys, sessions and login attempts.
///
/// Every method is one transaction: a failure leaves nothing half-written. Names that must
/// be unique (logins, emails, org and team names, key names) are enforced by the store and
/// reported as [`Error::Conflict`](crate::Error::Conflict); a missing row the method needs
/// is [`Error::NotFound`](crate::Error::NotFound). Logins and emails are compared
/// case-insensitively (the store keeps them lower-case).
///
/// `SqlSessionStore` implements it over sea-orm; `testkit::conformance` holds the suite any
/// implementation must pass.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    // ---- orgs

    /// Creates an org; `admin`, if given, joins it as Admin.
    async fn create_org(&self, name: &str, admin: Option<UserId>) -> Result<Org>;
    /// The org with this id.
    async fn get_org(&self, id: OrgId) -> Result<Option<Org>>;
    /// The org with this name.
    async fn get_org_by_name(&self, name: &str) -> Result<Option<Org>>;
    /// Orgs whose name contains `query` (case-insensitively), by name.
    async fn search_orgs(&self, query: &str, paging: Paging) -> Result<Page<Org>>;
    /// Renames an org.
    async fn rename_org(&self, id: OrgId, name: &str) -> Result<()>;
    /// Deletes an org with its memberships, teams and service-account keys.
    async fn delete_org(&self, id: OrgId) -> Result<()>;

    // ---- users

    /// Creates a user and its membership of `user.org_id`.
    async fn create_user(&self, user: NewUser) -> Result<User>;
    /// The user with this id.
    async fn get_user(&self, id: UserId) -> Result<Option<User>>;
    /// The user whose login or email is `login_or_email`.
    async fn find_user(&self, login_or_email: &str) -> Result<Option<User>>;
    /// The user whose login or email is `login_or_email`, with its password hash and salt.
    async fn credentials(&self, login_or_email: &str) -> Result<Option<(User, String, String)>>;
    /// Users matching `filter`, by login.
    async fn search_users(&self, filter: UserFilter, paging: Paging) -> Result<Page<User>>;
    /// Changes a user's login, email or name.
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<User>;
    /// Sets a new password hash and, in the same transaction, ends every session of the user
    /// except `keep`.
    async fn set_password(
        &self,
        id: UserId,
        hash: &str,
        salt: &str,
        keep: Option<TokenId>,
    ) -> Result<()>;
    /// Grants or removes server admin. Removing it from the last server admin (among
    /// people) is refused with `Error::InvalidInput("cannot remove last grafana admin")`,
    /// decided inside the write so that two admins demoting each other at the same moment
    /// cannot both succeed.
    async fn set_server_admin(&self, id: UserId, is_admin: bool) -> Result<()>;
    /// Disables (ending every session in the same transaction) or enables a user.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()>;
    /// Makes `org` the user's default org; the user must be a member.
    async fn set_current_org(&self, id: UserId, org: OrgId) -> Result<()>;
    /// Records that the user was seen at `at`.
    async fn touch_user(&self, id: UserId, at: OffsetDateTime) -> Result<()>;
    /// Deletes a user with its memberships, team memberships, sessions and keys.
    async fn delete_user(&self, id: UserId) -> Result<()>;

    // ---- org membership

    /// Adds a user to an org.
    async fn add_org_user(&self, org: OrgId, user: UserId, role: Role) -> Result<()>;
    /// Changes a member's role. An org never loses its last Admin: demoting it is
    /// `InvalidInput`, also when two demotions of the last two Admins race.
    async fn set_org_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()>;
    /// Removes a member (and its team memberships in the org); removing the org's last
    /// Admin is `InvalidInput`, also when two removals race.
    async fn remove_org_user(&self, org: OrgId, user: UserId) -> Result<()>;
    /// The user's role in the org, if a member.
    async fn org_role(&self, org: OrgId, user: UserId) -> Result<Option<Role>>;
    /// The org's members matching `query`, by login.
    async fn org_users(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<OrgUser>>;
    /// The orgs the user belongs to, by name.
    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Org, Role)>>;

    // ---- teams

    /// Creates a team.
    async fn create_team(&self, org: OrgId, name: &str, email: &str) -> Result<Team>;
    /// The team with this id in the org.
    async fn get_team(&self, org: OrgId, id: TeamId) -> Result<Option<Team>>;
    /// Teams of the org whose name contains `query`, by name.
    async fn search_teams(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<Team>>;
    /// Changes a team's name and email.
    async fn update_team(&self, org: OrgId, id: TeamId, name: &str, email: &str) -> Result<()>;
    /// Deletes a team and its memberships.
    async fn delete_team(&self, org: OrgId, id: TeamId) -> Result<()>;
    /// Adds a member of the org to the team.
    async fn add_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()>;
    /// Makes a member of the team its Admin (`admin`) or a plain member again: Grafana's
    /// team permission 4 or 0. `NotFound("team not found" | "team member not found")`.
    /// The default keeps no team permissions and refuses.
    async fn set_team_admin(
        &self,
        _org: OrgId,
        _team: TeamId,
        _user: UserId,
        _admin: bool,
    ) -> Result<()> {
        Err(crate::Error::InvalidInput(
            "this store does not keep team permissions".to_owned(),
        ))
    }
    /// The members of the team who are its Admins. The default: none.
    async fn team_admins(&self, _org: OrgId, _team: TeamId) -> Result<Vec<UserId>> {
        Ok(Vec::new())
    }
    /// Removes a member from the team.
    async fn remove_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()>;
    /// The team's members, by login.
    async fn team_members(&self, org: OrgId, team: TeamId) -> Result<Vec<User>>;
    /// The teams of `org` that `user` is a member of, by name. The default walks the org's
    /// teams; a store that can should answer in one query.
    async fn user_teams(&self, org: OrgId, user: UserId) -> Result<Vec<Team>> {
        let mut teams = Vec::new();
        let mut paging = Paging::new(1, 500);
        loop {
            let page = self.search_teams(org, "", paging).await?;
            let last = (page.items.len() as u64) < paging.per_page;
            for team in page.items {
                let members = self.team_members(org, team.id).await?;
                if members.iter().any(|member| member.id == user) {
                    teams.push(team);
                }
            }
            if last {
                return Ok(teams);
            }
            paging.page += 1;
        }
    }

    /// The ids of the teams of `org` that `user` is a member of: what a permission check
    /// needs, without the teams themselves. The default asks [`Self::user_teams`].
    async fn user_team_ids(&self, org: OrgId, user: UserId) -> Result<Vec<TeamId>> {
        Ok(self
            .user_teams(org, user)
            .await?
            .into_iter()
            .map(|team| team.id)
            .collect())
    }

    // ---- service-account keys

    /// Stores a key's hash for a service account.
    async fn create_api_key(
        &self,
        org: OrgId,
        service_account: UserId,
        name: &str,
        hash: &str,
        expires: Option<OffsetDateTime>,
    ) -> Result<ApiKey>;
    /// The service account's keys, by id.
    async fn api_keys(&self, service_account: UserId) -> Result<Vec<ApiKey>>;
    /// Deletes one of the service account's keys.
    async fn delete_api_key(&self, service_account: UserId, id: i64) -> Result<()>;
    /// The key stored with this hash.
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Records that the key was used at `at`.
    async fn touch_api_key(&self, id: i64, at: OffsetDateTime) -> Result<()>;

    // ---- sessions

    /// Stores a new session whose token hashes to `hash`.
    async fn create_session(
        &self,
        user: UserId,
        hash: &str,
        user_agent: &str,
        client_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Session>;
    /// The session whose current or previous token hashes to `hash`.
    async fn find_session(&self, hash: &str) -> Result<Option<StoredSession>>;
    /// The session whose current or previous token hashes to `hash`, with its user and the
    /// user's role in its default org: everything authenticating a request needs, which an
    /// implementation should fetch in one round trip (the default makes three).
    async fn find_session_with_user(
        &self,
        hash: &str,
    ) -> Result<Option<(StoredSession, User, Option<Role>)>> {
        let Some(stored) = self.find_session(hash).await? else {
            return Ok(None);
        };
        let Some(user) = self.get_user(stored.session.user_id).await? else {
            return Ok(None);
        };
        let role = self.org_role(user.org_id, user.id).await?;
        Ok(Some((stored, user, role)))
    }
    /// Replaces the session's token, if its current hash is still `current`
    /// (compare-and-swap): the current hash becomes the previous one. `false` when another
    /// request rotated it first.
    async fn rotate_session(
        &self,
        id: TokenId,
        current: &str,
        new: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Records that the session was used at `at`.
    async fn touch_session(&self, id: TokenId, at: OffsetDateTime) -> Result<()>;
    /// Ends one of the user's sessions; `false` when there was no such session.
    async fn revoke_session(&self, user: UserId, id: TokenId) -> Result<bool>;
    /// Ends every session of the user except `except`; returns how many ended.
    async fn revoke_user_sessions(&self, user: UserId, except: Option<TokenId>) -> Result<u64>;
    /// The user's sessions, newest first.
    async fn user_sessions(&self, user: UserId) -> Result<Vec<Session>>;
    /// Deletes sessions created before `created_before` or unused since `seen_before`.
    async fn delete_expired_sessions(
        &self,
        created_before: OffsetDateTime,
        seen_before: OffsetDateTime,
    ) -> Result<u64>;

    // ---- login attempts

    /// Records a failed login for `login`.
    async fn record_failed_login(&self, login: &str, ip: &str, at: OffsetDateTime) -> Result<()>;
    /// How many failed logins `login` has had since `since`.
    async fn failed_logins_since(&self, login: &str, since: OffsetDateTime) -> Result<u64>;
    /// Forgets the failed logins of `login` (after a successful one).
    async fn clear_failed_logins(&self, login: &str) -> Result<()>;
    /// Deletes failed logins older than `before`.
    async fn delete_login_attempts_before(&self, before: OffsetDateTime) -> Result<u64>;
}
