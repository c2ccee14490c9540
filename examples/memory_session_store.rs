//! Plugs a backend of your own into Tandem's identity layer: an in-memory `SessionStore`.
//!
//! ```sh
//! cargo run --example memory_session_store
//! ```
//!
//! The store keeps plain maps behind one `std::sync::Mutex`. Every method locks, checks
//! everything it needs, and only then writes, so a refused call changes nothing, as the
//! trait asks of a transaction; nothing awaits while the lock is held.
//! `main` runs the conformance suite (`tandem_sessions::testkit::conformance`) against two
//! handles on one store, standing for two instances; `cargo test` runs it too.
//! A backend of your own passes the same suite before it serves a cluster.
//!
//! Being in one process, this store serves a single instance: a real backend is shared by
//! every instance of the cluster.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tandem_sessions::testkit::conformance;
use tandem_sessions::{
    ApiKey, Error, NewUser, Org, OrgId, OrgUser, Page, Paging, Result, Role, Session, SessionStore,
    StoredSession, Team, TeamId, TokenId, User, UserFilter, UserId, UserUpdate,
};
use time::OffsetDateTime;

#[tokio::main]
async fn main() {
    conformance::all(two_instances()).await;
    // The example has no logger of its own; say on the terminal that it passed.
    #[allow(clippy::print_stdout)]
    {
        println!("the in-memory SessionStore passes the SessionStore conformance suite");
    }
}

/// Two handles on one in-memory store, as two instances would share one database.
fn two_instances() -> Vec<Arc<dyn SessionStore>> {
    let store = MemorySessionStore::new();
    vec![Arc::new(store.clone()), Arc::new(store)]
}

/// A `SessionStore` in memory; clones share the same data.
#[derive(Clone)]
struct MemorySessionStore {
    state: Arc<Mutex<State>>,
}

impl MemorySessionStore {
    /// An empty store with Grafana's first org, "Main Org.", as the SQL migration creates it.
    fn new() -> MemorySessionStore {
        let now = OffsetDateTime::now_utc();
        let main = Org {
            id: OrgId(1),
            name: "Main Org.".to_owned(),
            created: now,
            updated: now,
        };
        let state = State {
            next_id: 1,
            orgs: BTreeMap::from([(main.id, main)]),
            ..State::default()
        };
        MemorySessionStore {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never leaves the state half-written (every method checks before it
        // writes), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Each method runs synchronously under the lock, in `State` below.
#[async_trait::async_trait]
impl SessionStore for MemorySessionStore {
    async fn create_org(&self, name: &str, admin: Option<UserId>) -> Result<Org> {
        self.lock().create_org(name, admin)
    }

    async fn get_org(&self, id: OrgId) -> Result<Option<Org>> {
        Ok(self.lock().orgs.get(&id).cloned())
    }

    async fn get_org_by_name(&self, name: &str) -> Result<Option<Org>> {
        Ok(self.lock().org_by_name(name).cloned())
    }

    async fn search_orgs(&self, query: &str, paging: Paging) -> Result<Page<Org>> {
        Ok(self.lock().search_orgs(query, paging))
    }

    async fn rename_org(&self, id: OrgId, name: &str) -> Result<()> {
        self.lock().rename_org(id, name)
    }

    async fn delete_org(&self, id: OrgId) -> Result<()> {
        self.lock().delete_org(id)
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        self.lock().create_user(user)
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.lock().users.get(&id).map(|row| row.user.clone()))
    }

    async fn find_user(&self, login_or_email: &str) -> Result<Option<User>> {
        Ok(self.lock().find(login_or_email).map(|row| row.user.clone()))
    }

    async fn credentials(&self, login_or_email: &str) -> Result<Option<(User, String, String)>> {
        let state = self.lock();
        let row = state.find(login_or_email);
        Ok(row.map(|row| (row.user.clone(), row.password.clone(), row.salt.clone())))
    }

    async fn search_users(&self, filter: UserFilter, paging: Paging) -> Result<Page<User>> {
        Ok(self.lock().search_users(filter, paging))
    }

    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<User> {
        self.lock().update_user(id, update)
    }

    async fn set_password(
        &self,
        id: UserId,
        hash: &str,
        salt: &str,
        keep: Option<TokenId>,
    ) -> Result<()> {
        let mut state = self.lock();
        let row = state.user_mut(id)?;
        row.password = hash.to_owned();
        row.salt = salt.to_owned();
        row.user.updated = OffsetDateTime::now_utc();
        state.end_sessions(id, keep);
        Ok(())
    }

    async fn set_server_admin(&self, id: UserId, is_admin: bool) -> Result<()> {
        let mut state = self.lock();
        let others = state
            .users
            .values()
            .filter(|row| row.user.is_admin && !row.user.is_service_account && row.user.id != id)
            .count();
        let target_is_admin = state.user_mut(id)?.user.is_admin;
        if !is_admin && target_is_admin && others == 0 {
            return Err(Error::InvalidInput(
                "cannot remove last grafana admin".to_owned(),
            ));
        }
        let row = state.user_mut(id)?;
        row.user.is_admin = is_admin;
        row.user.updated = OffsetDateTime::now_utc();
        Ok(())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        let mut state = self.lock();
        let row = state.user_mut(id)?;
        row.user.is_disabled = disabled;
        row.user.updated = OffsetDateTime::now_utc();
        if disabled {
            state.end_sessions(id, None);
        }
        Ok(())
    }

    async fn set_current_org(&self, id: UserId, org: OrgId) -> Result<()> {
        let mut state = self.lock();
        state.user(id)?;
        state.member(org, id)?;
        state.user_mut(id)?.user.org_id = org;
        Ok(())
    }

    async fn touch_user(&self, id: UserId, at: OffsetDateTime) -> Result<()> {
        self.lock().user_mut(id)?.user.last_seen_at = at;
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.lock().delete_user(id)
    }

    async fn add_org_user(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        let mut state = self.lock();
        state.org(org)?;
        state.user(user)?;
        if state.members.contains_key(&(org, user)) {
            return Err(Error::Conflict(
                "user is already member of this organization".to_owned(),
            ));
        }
        state.members.insert((org, user), role);
        Ok(())
    }

    async fn set_org_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        let mut state = self.lock();
        if role != Role::Admin && state.is_last_org_admin(org, user) {
            return Err(Error::InvalidInput(
                "Cannot change role so that there is no organization admin left".to_owned(),
            ));
        }
        *state.member_mut(org, user)? = role;
        Ok(())
    }

    async fn remove_org_user(&self, org: OrgId, user: UserId) -> Result<()> {
        let mut state = self.lock();
        if state.is_last_org_admin(org, user) {
            return Err(Error::InvalidInput(
                "Cannot remove last organization admin".to_owned(),
            ));
        }
        state.remove_org_user(org, user)
    }

    async fn org_role(&self, org: OrgId, user: UserId) -> Result<Option<Role>> {
        Ok(self.lock().members.get(&(org, user)).copied())
    }

    async fn org_users(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<OrgUser>> {
        Ok(self.lock().org_users(org, query, paging))
    }

    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Org, Role)>> {
        Ok(self.lock().user_orgs(user))
    }

    async fn create_team(&self, org: OrgId, name: &str, email: &str) -> Result<Team> {
        self.lock().create_team(org, name, email)
    }

    async fn get_team(&self, org: OrgId, id: TeamId) -> Result<Option<Team>> {
        let state = self.lock();
        Ok(state.team(org, id).ok().map(|team| state.counted(team)))
    }

    async fn search_teams(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<Team>> {
        Ok(self.lock().search_teams(org, query, paging))
    }

    async fn update_team(&self, org: OrgId, id: TeamId, name: &str, email: &str) -> Result<()> {
        self.lock().update_team(org, id, name, email)
    }

    async fn delete_team(&self, org: OrgId, id: TeamId) -> Result<()> {
        let mut state = self.lock();
        state.team(org, id)?;
        state.teams.remove(&id);
        state.team_members.retain(|(team, _)| *team != id);
        Ok(())
    }

    async fn add_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()> {
        let mut state = self.lock();
        state.team(org, team)?;
        state.member(org, user)?;
        if !state.team_members.insert((team, user)) {
            return Err(Error::Conflict(
                "user is already added to this team".to_owned(),
            ));
        }
        Ok(())
    }

    async fn remove_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()> {
        let mut state = self.lock();
        state.team(org, team)?;
        if !state.team_members.remove(&(team, user)) {
            return Err(Error::NotFound("team member not found"));
        }
        Ok(())
    }

    async fn team_members(&self, org: OrgId, team: TeamId) -> Result<Vec<User>> {
        Ok(self.lock().team_members(org, team))
    }

    async fn create_api_key(
        &self,
        org: OrgId,
        service_account: UserId,
        name: &str,
        hash: &str,
        expires: Option<OffsetDateTime>,
    ) -> Result<ApiKey> {
        self.lock()
            .create_api_key(org, service_account, name, hash, expires)
    }

    async fn api_keys(&self, service_account: UserId) -> Result<Vec<ApiKey>> {
        let state = self.lock();
        let keys = state.api_keys.values().map(|(key, _)| key);
        Ok(keys
            .filter(|key| key.service_account_id == service_account)
            .cloned()
            .collect())
    }

    async fn delete_api_key(&self, service_account: UserId, id: i64) -> Result<()> {
        let mut state = self.lock();
        match state.api_keys.get(&id) {
            Some((key, _)) if key.service_account_id == service_account => {
                state.api_keys.remove(&id);
                Ok(())
            }
            _ => Err(Error::NotFound("api key not found")),
        }
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let state = self.lock();
        let mut keys = state.api_keys.values();
        Ok(keys
            .find(|(_, stored)| stored == hash)
            .map(|(key, _)| key.clone()))
    }

    async fn touch_api_key(&self, id: i64, at: OffsetDateTime) -> Result<()> {
        let mut state = self.lock();
        let (key, _) = state
            .api_keys
            .get_mut(&id)
            .ok_or(Error::NotFound("api key not found"))?;
        key.last_used_at = Some(at);
        Ok(())
    }

    async fn create_session(
        &self,
        user: UserId,
        hash: &str,
        user_agent: &str,
        client_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Session> {
        self.lock()
            .create_session(user, hash, user_agent, client_ip, now)
    }

    async fn find_session(&self, hash: &str) -> Result<Option<StoredSession>> {
        if hash.is_empty() {
            return Ok(None);
        }
        let state = self.lock();
        let mut sessions = state.sessions.values();
        Ok(sessions
            .find(|stored| stored.auth_token == hash || stored.prev_auth_token == hash)
            .cloned())
    }

    async fn rotate_session(
        &self,
        id: TokenId,
        current: &str,
        new: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut state = self.lock();
        // The compare-and-swap: the lock makes the check and the write one step.
        match state.sessions.get_mut(&id) {
            Some(stored) if stored.auth_token == current => {
                stored.prev_auth_token = std::mem::replace(&mut stored.auth_token, new.to_owned());
                stored.session.rotated_at = now;
                stored.session.seen_at = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_session(&self, id: TokenId, at: OffsetDateTime) -> Result<()> {
        let mut state = self.lock();
        let stored = state
            .sessions
            .get_mut(&id)
            .ok_or(Error::NotFound("session not found"))?;
        stored.session.seen_at = at;
        Ok(())
    }

    async fn revoke_session(&self, user: UserId, id: TokenId) -> Result<bool> {
        let mut state = self.lock();
        let owned = state
            .sessions
            .get(&id)
            .is_some_and(|stored| stored.session.user_id == user);
        if owned {
            state.sessions.remove(&id);
        }
        Ok(owned)
    }

    async fn revoke_user_sessions(&self, user: UserId, except: Option<TokenId>) -> Result<u64> {
        Ok(self.lock().end_sessions(user, except))
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let state = self.lock();
        let mut sessions: Vec<Session> = state
            .sessions
            .values()
            .filter(|stored| stored.session.user_id == user)
            .map(|stored| stored.session.clone())
            .collect();
        sessions.sort_by_key(|session| Reverse((session.created_at, session.id)));
        Ok(sessions)
    }

    async fn delete_expired_sessions(
        &self,
        created_before: OffsetDateTime,
        seen_before: OffsetDateTime,
    ) -> Result<u64> {
        let mut state = self.lock();
        let before = state.sessions.len();
        state.sessions.retain(|_, stored| {
            stored.session.created_at >= created_before && stored.session.seen_at >= seen_before
        });
        Ok((before - state.sessions.len()) as u64)
    }

    async fn record_failed_login(&self, login: &str, _ip: &str, at: OffsetDateTime) -> Result<()> {
        self.lock().login_attempts.push((login.to_lowercase(), at));
        Ok(())
    }

    async fn failed_logins_since(&self, login: &str, since: OffsetDateTime) -> Result<u64> {
        let login = login.to_lowercase();
        let state = self.lock();
        let attempts = state.login_attempts.iter();
        Ok(attempts
            .filter(|(attempt, at)| *attempt == login && *at >= since)
            .count() as u64)
    }

    async fn clear_failed_logins(&self, login: &str) -> Result<()> {
        let login = login.to_lowercase();
        self.lock()
            .login_attempts
            .retain(|(attempt, _)| *attempt != login);
        Ok(())
    }

    async fn delete_login_attempts_before(&self, before: OffsetDateTime) -> Result<u64> {
        let mut state = self.lock();
        let count = state.login_attempts.len();
        state.login_attempts.retain(|(_, at)| *at >= before);
        Ok((count - state.login_attempts.len()) as u64)
    }
}

/// Everything the store holds; the maps stand for the SQL tables.
#[derive(Default)]
struct State {
    /// The last id handed out, shared by every kind of row.
    next_id: i64,
    orgs: BTreeMap<OrgId, Org>,
    users: BTreeMap<UserId, UserRow>,
    members: BTreeMap<(OrgId, UserId), Role>,
    /// Teams with `member_count` left at 0: it is counted when a team is read.
    teams: BTreeMap<TeamId, Team>,
    team_members: BTreeSet<(TeamId, UserId)>,
    /// Keys by id, with the hash each was stored under.
    api_keys: BTreeMap<i64, (ApiKey, String)>,
    sessions: BTreeMap<TokenId, StoredSession>,
    /// Failed logins: the login, lower-case, and when.
    login_attempts: Vec<(String, OffsetDateTime)>,
}

struct UserRow {
    user: User,
    password: String,
    salt: String,
}

impl State {
    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn org(&self, id: OrgId) -> Result<&Org> {
        self.orgs.get(&id).ok_or(Error::NotFound("org not found"))
    }

    fn org_by_name(&self, name: &str) -> Option<&Org> {
        self.orgs.values().find(|org| org.name == name)
    }

    fn check_org_name(&self, name: &str, renamed: Option<OrgId>) -> Result<()> {
        match self.org_by_name(name) {
            Some(org) if Some(org.id) != renamed => {
                Err(Error::Conflict("organization name taken".to_owned()))
            }
            _ => Ok(()),
        }
    }

    fn create_org(&mut self, name: &str, admin: Option<UserId>) -> Result<Org> {
        self.check_org_name(name, None)?;
        if let Some(admin) = admin {
            self.user(admin)?;
        }
        let now = OffsetDateTime::now_utc();
        let org = Org {
            id: OrgId(self.next_id()),
            name: name.to_owned(),
            created: now,
            updated: now,
        };
        self.orgs.insert(org.id, org.clone());
        if let Some(admin) = admin {
            self.members.insert((org.id, admin), Role::Admin);
        }
        Ok(org)
    }

    fn search_orgs(&self, query: &str, paging: Paging) -> Page<Org> {
        let query = query.to_lowercase();
        let mut orgs: Vec<Org> = self
            .orgs
            .values()
            .filter(|org| org.name.to_lowercase().contains(&query))
            .cloned()
            .collect();
        orgs.sort_by(|a, b| a.name.cmp(&b.name));
        page(orgs, paging)
    }

    fn rename_org(&mut self, id: OrgId, name: &str) -> Result<()> {
        self.org(id)?;
        self.check_org_name(name, Some(id))?;
        let org = self.orgs.get_mut(&id).expect("checked above");
        org.name = name.to_owned();
        org.updated = OffsetDateTime::now_utc();
        Ok(())
    }

    fn delete_org(&mut self, id: OrgId) -> Result<()> {
        self.org(id)?;
        self.orgs.remove(&id);
        self.members.retain(|(org, _), _| *org != id);
        let teams = &self.teams;
        self.team_members
            .retain(|(team, _)| teams.get(team).is_none_or(|team| team.org_id != id));
        self.teams.retain(|_, team| team.org_id != id);
        self.api_keys.retain(|_, (key, _)| key.org_id != id);
        // Service accounts live in one org and go with it.
        let accounts: Vec<UserId> = self
            .users
            .values()
            .filter(|row| row.user.is_service_account && row.user.org_id == id)
            .map(|row| row.user.id)
            .collect();
        for account in accounts {
            self.end_sessions(account, None);
            self.users.remove(&account);
        }
        Ok(())
    }

    fn user(&self, id: UserId) -> Result<&UserRow> {
        self.users.get(&id).ok_or(Error::NotFound("user not found"))
    }

    fn user_mut(&mut self, id: UserId) -> Result<&mut UserRow> {
        self.users
            .get_mut(&id)
            .ok_or(Error::NotFound("user not found"))
    }

    /// The user whose login, or else whose email, is `login_or_email` in any case.
    fn find(&self, login_or_email: &str) -> Option<&UserRow> {
        let key = login_or_email.to_lowercase();
        let mut rows = self.users.values();
        rows.clone()
            .find(|row| row.user.login == key)
            .or_else(|| rows.find(|row| row.user.email == key))
    }

    /// Refuses a login or email (both lower-case) that a user other than `except` has.
    fn check_login_email(&self, login: &str, email: &str, except: Option<UserId>) -> Result<()> {
        let others = self
            .users
            .values()
            .filter(|row| Some(row.user.id) != except);
        for row in others {
            if row.user.login == login || row.user.email == email {
                return Err(Error::Conflict(
                    "user with email or login already exists".to_owned(),
                ));
            }
        }
        Ok(())
    }

    fn create_user(&mut self, new: NewUser) -> Result<User> {
        self.org(new.org_id)?;
        let (login, email) = (new.login.to_lowercase(), new.email.to_lowercase());
        self.check_login_email(&login, &email, None)?;
        let id = UserId(self.next_id());
        let now = OffsetDateTime::now_utc();
        let user = User {
            id,
            uid: format!("memory-user-{}", id.0),
            login,
            email,
            name: new.name,
            org_id: new.org_id,
            is_admin: new.is_admin,
            is_disabled: new.is_disabled,
            is_service_account: new.is_service_account,
            last_seen_at: now,
            created: now,
            updated: now,
        };
        let row = UserRow {
            user: user.clone(),
            password: new.password_hash,
            salt: new.salt,
        };
        self.users.insert(id, row);
        self.members.insert((new.org_id, id), new.role);
        Ok(user)
    }

    fn search_users(&self, filter: UserFilter, paging: Paging) -> Page<User> {
        let query = filter.query.map(|query| query.to_lowercase());
        let mut users: Vec<User> = self
            .users
            .values()
            .map(|row| &row.user)
            .filter(|user| user.is_service_account == filter.service_accounts)
            .filter(|user| {
                filter
                    .org_id
                    .is_none_or(|org| self.members.contains_key(&(org, user.id)))
            })
            .filter(|user| query.as_deref().is_none_or(|query| matches(user, query)))
            .cloned()
            .collect();
        users.sort_by(|a, b| a.login.cmp(&b.login));
        page(users, paging)
    }

    fn update_user(&mut self, id: UserId, update: UserUpdate) -> Result<User> {
        let current = &self.user(id)?.user;
        let login = update
            .login
            .map_or_else(|| current.login.clone(), |login| login.to_lowercase());
        let email = update
            .email
            .map_or_else(|| current.email.clone(), |email| email.to_lowercase());
        self.check_login_email(&login, &email, Some(id))?;
        let user = &mut self.user_mut(id)?.user;
        user.login = login;
        user.email = email;
        if let Some(name) = update.name {
            user.name = name;
        }
        user.updated = OffsetDateTime::now_utc();
        Ok(user.clone())
    }

    fn delete_user(&mut self, id: UserId) -> Result<()> {
        self.user(id)?;
        self.users.remove(&id);
        self.members.retain(|(_, user), _| *user != id);
        self.team_members.retain(|(_, user)| *user != id);
        self.sessions
            .retain(|_, stored| stored.session.user_id != id);
        self.api_keys
            .retain(|_, (key, _)| key.service_account_id != id);
        Ok(())
    }

    fn member(&self, org: OrgId, user: UserId) -> Result<Role> {
        self.members
            .get(&(org, user))
            .copied()
            .ok_or(Error::NotFound("org user not found"))
    }

    fn member_mut(&mut self, org: OrgId, user: UserId) -> Result<&mut Role> {
        self.members
            .get_mut(&(org, user))
            .ok_or(Error::NotFound("org user not found"))
    }

    /// Whether `user` is the only Admin of `org`; the one lock makes the check and the
    /// change one step.
    fn is_last_org_admin(&self, org: OrgId, user: UserId) -> bool {
        let mut admins = self
            .members
            .iter()
            .filter(|((member_org, _), role)| *member_org == org && **role == Role::Admin)
            .map(|((_, member), _)| *member);
        admins.next() == Some(user) && admins.next().is_none()
    }

    fn remove_org_user(&mut self, org: OrgId, user: UserId) -> Result<()> {
        self.member(org, user)?;
        self.members.remove(&(org, user));
        let teams = &self.teams;
        self.team_members.retain(|(team, member)| {
            *member != user || teams.get(team).is_none_or(|team| team.org_id != org)
        });
        Ok(())
    }

    fn org_users(&self, org: OrgId, query: &str, paging: Paging) -> Page<OrgUser> {
        let query = query.to_lowercase();
        let mut members: Vec<OrgUser> = self
            .members
            .iter()
            .filter(|((member_org, _), _)| *member_org == org)
            .filter_map(|((_, user), role)| {
                let user = &self.users.get(user)?.user;
                matches(user, &query).then(|| OrgUser {
                    org_id: org,
                    user: user.clone(),
                    role: *role,
                })
            })
            .collect();
        members.sort_by(|a, b| a.user.login.cmp(&b.user.login));
        page(members, paging)
    }

    fn user_orgs(&self, user: UserId) -> Vec<(Org, Role)> {
        let mut orgs: Vec<(Org, Role)> = self
            .members
            .iter()
            .filter(|((_, member), _)| *member == user)
            .filter_map(|((org, _), role)| Some((self.orgs.get(org)?.clone(), *role)))
            .collect();
        orgs.sort_by(|(a, _), (b, _)| a.name.cmp(&b.name));
        orgs
    }

    /// The team, if it belongs to `org`.
    fn team(&self, org: OrgId, id: TeamId) -> Result<&Team> {
        self.teams
            .get(&id)
            .filter(|team| team.org_id == org)
            .ok_or(Error::NotFound("team not found"))
    }

    /// The team with its members counted.
    fn counted(&self, team: &Team) -> Team {
        let members = self.team_members.iter();
        Team {
            member_count: members.filter(|(id, _)| *id == team.id).count() as u64,
            ..team.clone()
        }
    }

    fn check_team_name(&self, org: OrgId, name: &str, renamed: Option<TeamId>) -> Result<()> {
        let taken = self
            .teams
            .values()
            .any(|team| team.org_id == org && team.name == name && Some(team.id) != renamed);
        if taken {
            return Err(Error::Conflict("team name taken".to_owned()));
        }
        Ok(())
    }

    fn create_team(&mut self, org: OrgId, name: &str, email: &str) -> Result<Team> {
        self.org(org)?;
        self.check_team_name(org, name, None)?;
        let id = TeamId(self.next_id());
        let team = Team {
            id,
            uid: format!("memory-team-{}", id.0),
            org_id: org,
            name: name.to_owned(),
            email: email.to_owned(),
            member_count: 0,
            created: OffsetDateTime::now_utc(),
        };
        self.teams.insert(id, team.clone());
        Ok(team)
    }

    fn search_teams(&self, org: OrgId, query: &str, paging: Paging) -> Page<Team> {
        let query = query.to_lowercase();
        let mut teams: Vec<Team> = self
            .teams
            .values()
            .filter(|team| team.org_id == org && team.name.to_lowercase().contains(&query))
            .map(|team| self.counted(team))
            .collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        page(teams, paging)
    }

    fn update_team(&mut self, org: OrgId, id: TeamId, name: &str, email: &str) -> Result<()> {
        self.team(org, id)?;
        self.check_team_name(org, name, Some(id))?;
        let team = self.teams.get_mut(&id).expect("checked above");
        team.name = name.to_owned();
        team.email = email.to_owned();
        Ok(())
    }

    fn team_members(&self, org: OrgId, team: TeamId) -> Vec<User> {
        if self.team(org, team).is_err() {
            return Vec::new();
        }
        let mut users: Vec<User> = self
            .team_members
            .iter()
            .filter(|(id, _)| *id == team)
            .filter_map(|(_, user)| Some(self.users.get(user)?.user.clone()))
            .collect();
        users.sort_by(|a, b| a.login.cmp(&b.login));
        users
    }

    fn create_api_key(
        &mut self,
        org: OrgId,
        service_account: UserId,
        name: &str,
        hash: &str,
        expires: Option<OffsetDateTime>,
    ) -> Result<ApiKey> {
        self.org(org)?;
        if !self.user(service_account)?.user.is_service_account {
            return Err(Error::NotFound("service account not found"));
        }
        for (key, stored) in self.api_keys.values() {
            if key.service_account_id == service_account && key.name == name {
                return Err(Error::Conflict(
                    "a token with the same name already exists".to_owned(),
                ));
            }
            if stored == hash {
                return Err(Error::Conflict("the token's hash is taken".to_owned()));
            }
        }
        let key = ApiKey {
            id: self.next_id(),
            org_id: org,
            service_account_id: service_account,
            name: name.to_owned(),
            expires,
            last_used_at: None,
            created: OffsetDateTime::now_utc(),
        };
        self.api_keys.insert(key.id, (key.clone(), hash.to_owned()));
        Ok(key)
    }

    fn create_session(
        &mut self,
        user: UserId,
        hash: &str,
        user_agent: &str,
        client_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Session> {
        self.user(user)?;
        let session = Session {
            id: TokenId(self.next_id()),
            user_id: user,
            user_agent: user_agent.to_owned(),
            client_ip: client_ip.to_owned(),
            created_at: now,
            seen_at: now,
            rotated_at: now,
        };
        let stored = StoredSession {
            session: session.clone(),
            auth_token: hash.to_owned(),
            prev_auth_token: String::new(),
        };
        self.sessions.insert(session.id, stored);
        Ok(session)
    }

    /// Ends every session of `user` but `except`; returns how many ended. An ended session
    /// is simply forgotten.
    fn end_sessions(&mut self, user: UserId, except: Option<TokenId>) -> u64 {
        let before = self.sessions.len();
        self.sessions
            .retain(|id, stored| stored.session.user_id != user || Some(*id) == except);
        (before - self.sessions.len()) as u64
    }
}

/// Whether the user's login, email or name contains `query` (lower-case).
fn matches(user: &User, query: &str) -> bool {
    user.login.contains(query)
        || user.email.contains(query)
        || user.name.to_lowercase().contains(query)
}

/// One page of `items`, which are in order already.
fn page<T>(items: Vec<T>, paging: Paging) -> Page<T> {
    let total = items.len() as u64;
    let skip = usize::try_from(paging.offset()).unwrap_or(usize::MAX);
    let take = usize::try_from(paging.per_page).unwrap_or(usize::MAX);
    Page {
        total,
        items: items.into_iter().skip(skip).take(take).collect(),
    }
}

#[cfg(test)]
mod tests {
    use tandem_sessions::testkit::conformance;

    use crate::two_instances;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        conformance::all(two_instances()).await;
    }
}
