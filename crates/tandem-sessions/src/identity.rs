use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::crypto::{
    hash_password, hash_session_token, is_session_token_shaped, new_salt, new_service_account_key,
    new_session_token, service_account_key_hash, verify_password,
};
use crate::{
    ApiKey, Error, NewUser, OrgId, Result, Role, Session, SessionStore, StoredSession, TokenId,
    User, UserFilter, UserId,
};

/// The identity settings (`[security]`, `[auth]`); `Default` is the documented default.
#[derive(Clone)]
pub struct SessionSettings {
    /// Hashes session tokens; shared by every instance (`[security] secret_key`).
    pub secret_key: String,
    /// How often a session's token is replaced (`[auth] token_rotation_interval_minutes`).
    pub rotation_interval: Duration,
    /// A session unused for this long ends (`[auth] login_maximum_inactive_lifetime_duration`).
    pub max_inactive_lifetime: Duration,
    /// A session ends this long after the login whatever happens
    /// (`[auth] login_maximum_lifetime_duration`).
    pub max_lifetime: Duration,
    /// How long the token before a rotation keeps working, for requests already in flight
    /// (`[auth] token_rotation_grace_period`, Tandem's own).
    pub rotation_grace: Duration,
    /// Count failed logins and block a login after too many
    /// (the opposite of `[security] disable_brute_force_login_protection`).
    pub brute_force_protection: bool,
    /// Failed logins allowed within [`SessionSettings::failed_login_window`].
    pub max_failed_logins: u64,
    /// The window failed logins are counted in.
    pub failed_login_window: Duration,
    /// The server admin created on an empty database (`[security] admin_user`).
    pub admin_user: String,
    /// Its first password (`[security] admin_password`).
    pub admin_password: String,
    /// Its email (`[security] admin_email`).
    pub admin_email: String,
    /// The shortest password accepted for a new user or a password change.
    pub min_password_length: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            secret_key: "SW2YcwTIb9zpOOhoPsMm".to_owned(),
            rotation_interval: Duration::from_secs(10 * 60),
            max_inactive_lifetime: Duration::from_secs(7 * 24 * 3600),
            max_lifetime: Duration::from_secs(30 * 24 * 3600),
            rotation_grace: Duration::from_secs(30),
            brute_force_protection: true,
            max_failed_logins: 5,
            failed_login_window: Duration::from_secs(5 * 60),
            admin_user: "admin".to_owned(),
            admin_password: "admin".to_owned(),
            admin_email: "admin@localhost".to_owned(),
            min_password_length: 4,
        }
    }
}

// Written by hand so that secrets never reach a log line.
impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("rotation_interval", &self.rotation_interval)
            .field("max_inactive_lifetime", &self.max_inactive_lifetime)
            .field("max_lifetime", &self.max_lifetime)
            .field("rotation_grace", &self.rotation_grace)
            .field("brute_force_protection", &self.brute_force_protection)
            .field("admin_user", &self.admin_user)
            .finish_non_exhaustive()
    }
}

/// A session just created by a login: the token goes to the client once, in its cookie.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// The raw token (64 hex digits); the store only knows its hash.
    pub token: String,
    /// The session.
    pub session: Session,
}

/// A request authenticated by its session token.
#[derive(Clone, Debug)]
pub struct SessionAuth {
    /// The user.
    pub user: User,
    /// The session, as it is after this request.
    pub session: Session,
    /// A new token when this request rotated the session: the client must get it (cookie).
    /// `None` when no rotation was due, or when another request rotated it first — then the
    /// token presented keeps working for the grace period and the client already has, or
    /// will get, the new one from that other request.
    pub rotated: Option<String>,
    /// The user's role in its default org (`user.org_id`), looked up with the session.
    pub org_role: Option<Role>,
}

/// A user to create, with a clear-text password to hash.
#[derive(Clone, Debug)]
pub struct CreateUser {
    /// Login; defaults to the email when empty.
    pub login: String,
    /// Email; defaults to the login when empty.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Clear-text password.
    pub password: String,
    /// The org to join; the user's default when `None`.
    pub org_id: Option<OrgId>,
    /// The role there; Viewer when `None`.
    pub role: Option<Role>,
    /// Server admin.
    pub is_admin: bool,
}

/// The rules of identity over a [`SessionStore`]: logins with brute-force protection,
/// sessions with rotation and revocation, service-account keys, password changes.
#[derive(Clone)]
pub struct Identity {
    store: Arc<dyn SessionStore>,
    settings: Arc<SessionSettings>,
}

/// How often a session's `seen_at` and a user's `last_seen_at` are written back: once a
/// minute is enough for lifetimes counted in days, and keeps requests read-only.
const SEEN_RESOLUTION: time::Duration = time::Duration::minutes(1);

/// The longest lifetime a service-account key can be given: 100 years, in seconds.
pub const MAX_KEY_SECONDS_TO_LIVE: i64 = 100 * 365 * 24 * 60 * 60 + 25 * 24 * 60 * 60;

impl Identity {
    /// Identity rules over `store`.
    pub fn new(store: Arc<dyn SessionStore>, settings: SessionSettings) -> Identity {
        Identity {
            store,
            settings: Arc::new(settings),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The settings.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Creates the configured server admin in org 1 unless a user with that login exists.
    /// Safe when several instances start together: the unique login lets one insert win.
    pub async fn ensure_admin(&self) -> Result<()> {
        let settings = &self.settings;
        if self.store.find_user(&settings.admin_user).await?.is_some() {
            return Ok(());
        }
        let created = self
            .create_user(CreateUser {
                login: settings.admin_user.clone(),
                email: settings.admin_email.clone(),
                name: String::new(),
                password: settings.admin_password.clone(),
                org_id: Some(OrgId(1)),
                role: Some(Role::Admin),
                is_admin: true,
            })
            .await;
        match created {
            Ok(user) => {
                tracing::info!(login = %user.login, "created the admin user");
                Ok(())
            }
            // Another instance created it at the same moment.
            Err(Error::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Creates a user, hashing the password off the async workers.
    pub async fn create_user(&self, new: CreateUser) -> Result<User> {
        let login = if new.login.trim().is_empty() {
            new.email.clone()
        } else {
            new.login.clone()
        };
        let email = if new.email.trim().is_empty() {
            login.clone()
        } else {
            new.email.clone()
        };
        validate_login(&login)?;
        self.check_password_policy(&new.password)?;
        let salt = new_salt();
        let hash = hash_blocking(new.password, salt.clone()).await?;
        self.store
            .create_user(NewUser {
                name: if new.name.trim().is_empty() {
                    login.clone()
                } else {
                    new.name
                },
                login,
                email,
                password_hash: hash,
                salt,
                is_admin: new.is_admin,
                is_service_account: false,
                is_disabled: false,
                org_id: new.org_id.unwrap_or(OrgId(1)),
                role: new.role.unwrap_or(Role::Viewer),
            })
            .await
    }

    /// Checks a login and password and opens a session.
    ///
    /// Failed logins are counted in the database, so the count is shared by every instance;
    /// past `max_failed_logins` within the window the login is refused without checking the
    /// password. An unknown login costs the same hashing work as a wrong password and gets
    /// the same error, so the answer does not tell whether the user exists.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
        user_agent: &str,
    ) -> Result<(User, NewSession)> {
        let user = self.check_password(login, password, client_ip).await?;
        let session = self.create_session(&user, client_ip, user_agent).await?;
        Ok((user, session))
    }

    /// Checks a login (or email) and password, with the brute-force protection of
    /// [`Identity::login`], without opening a session (HTTP Basic authentication).
    pub async fn check_password(
        &self,
        login: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<User> {
        let login = login.trim().to_lowercase();
        if login.contains('\0') {
            // No user has such a login, and the attempt could not be recorded everywhere.
            return Err(Error::InvalidCredentials);
        }
        let now = OffsetDateTime::now_utc();
        if self.settings.brute_force_protection {
            let since = now - self.settings.failed_login_window;
            let failed = self.store.failed_logins_since(&login, since).await?;
            if failed >= self.settings.max_failed_logins {
                tracing::info!("login refused: too many failed attempts");
                return Err(Error::LoginBlocked);
            }
        }
        let found = self.store.credentials(&login).await?;
        let (user, expected, salt) = match found {
            Some((user, hash, salt)) if !user.is_service_account => (Some(user), hash, salt),
            // Hash anyway, against nothing, so that an unknown login takes as long.
            _ => (None, String::new(), "0000000000".to_owned()),
        };
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let ok = verify_password(&password, &salt, &expected);
            ok && !expected.is_empty()
        })
        .await
        .map_err(|_| Error::InvalidInput("password check interrupted".to_owned()))?;
        match user {
            Some(user) if matches => {
                if user.is_disabled {
                    return Err(Error::UserDisabled);
                }
                if self.settings.brute_force_protection {
                    self.store.clear_failed_logins(&login).await?;
                }
                if user.last_seen_at + SEEN_RESOLUTION < now {
                    self.store.touch_user(user.id, now).await?;
                }
                Ok(user)
            }
            _ => {
                if self.settings.brute_force_protection {
                    self.store
                        .record_failed_login(&login, client_ip, now)
                        .await?;
                }
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Opens a session for `user`.
    pub async fn create_session(
        &self,
        user: &User,
        client_ip: &str,
        user_agent: &str,
    ) -> Result<NewSession> {
        let token = new_session_token();
        let hash = hash_session_token(&token, &self.settings.secret_key);
        let now = OffsetDateTime::now_utc();
        let session = self
            .store
            .create_session(
                user.id,
                &hash,
                truncate(user_agent, 255),
                truncate(client_ip, 255),
                now,
            )
            .await?;
        if user.last_seen_at + SEEN_RESOLUTION < now {
            self.store.touch_user(user.id, now).await?;
        }
        Ok(NewSession { token, session })
    }

    /// Authenticates a request by its session token, and rotates the token when the
    /// rotation interval has passed.
    ///
    /// The token may be the session's current one, or its previous one within the grace
    /// period after a rotation (a request sent before the client saw the new cookie).
    /// Rotation is a compare-and-swap on the current token: when two instances rotate the
    /// same session at once, exactly one wins and returns the new token; the other serves
    /// its request with the token it was given.
    pub async fn authenticate_session(&self, token: &str) -> Result<SessionAuth> {
        let (stored, user, org_role, presented_current) = self.find_live_session(token).await?;
        let now = OffsetDateTime::now_utc();
        let mut session = stored.session.clone();
        let mut rotated = None;
        if presented_current && session.rotated_at + self.settings.rotation_interval <= now {
            rotated = self.try_rotate(&stored, now).await?;
            if rotated.is_some() {
                session.rotated_at = now;
                session.seen_at = now;
            }
        }
        if rotated.is_none() && session.seen_at + SEEN_RESOLUTION < now {
            self.store.touch_session(session.id, now).await?;
            session.seen_at = now;
        }
        if user.last_seen_at + SEEN_RESOLUTION < now {
            self.store.touch_user(user.id, now).await?;
        }
        Ok(SessionAuth {
            user,
            session,
            rotated,
            org_role,
        })
    }

    /// Rotates the session of `token` now, whatever the interval (the explicit rotation
    /// endpoint). Returns the new token, or `None` when `token` is a previous token still in
    /// its grace period or another request rotated it first.
    pub async fn rotate(&self, token: &str) -> Result<SessionAuth> {
        let (stored, user, org_role, presented_current) = self.find_live_session(token).await?;
        let now = OffsetDateTime::now_utc();
        let mut session = stored.session.clone();
        let rotated = if presented_current {
            self.try_rotate(&stored, now).await?
        } else {
            None
        };
        if rotated.is_some() {
            session.rotated_at = now;
            session.seen_at = now;
        }
        Ok(SessionAuth {
            user,
            session,
            rotated,
            org_role,
        })
    }

    /// Ends the session of `token`, if it is one.
    pub async fn logout(&self, token: &str) -> Result<()> {
        if let Ok((stored, user, _, _)) = self.find_live_session(token).await {
            self.store
                .revoke_session(user.id, stored.session.id)
                .await?;
        }
        Ok(())
    }

    /// Authenticates a service-account key (`glsa_…`): well-formed, known, not expired, and
    /// its service account enabled. Returns the service account and the key.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<(User, ApiKey)> {
        let key = key.to_owned();
        let hash = tokio::task::spawn_blocking(move || service_account_key_hash(&key))
            .await
            .map_err(|_| Error::Unauthenticated)?
            .ok_or(Error::Unauthenticated)?;
        let api_key = self
            .store
            .api_key_by_hash(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = OffsetDateTime::now_utc();
        if api_key.expires.is_some_and(|expires| expires <= now) {
            return Err(Error::Unauthenticated);
        }
        let account = self
            .store
            .get_user(api_key.service_account_id)
            .await?
            .filter(|account| !account.is_disabled)
            .ok_or(Error::Unauthenticated)?;
        if api_key
            .last_used_at
            .is_none_or(|at| at + SEEN_RESOLUTION < now)
        {
            self.store.touch_api_key(api_key.id, now).await?;
        }
        if account.last_seen_at + SEEN_RESOLUTION < now {
            self.store.touch_user(account.id, now).await?;
        }
        Ok((account, api_key))
    }

    /// Changes the caller's own password after checking the old one; every other session of
    /// the user ends, `keep` (the caller's own) stays.
    pub async fn change_password(
        &self,
        user: &User,
        old: &str,
        new: &str,
        keep: Option<TokenId>,
    ) -> Result<()> {
        let (_, expected, salt) = self
            .store
            .credentials(&user.login)
            .await?
            .ok_or(Error::NotFound("user not found"))?;
        let old = old.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&old, &salt, &expected))
            .await
            .map_err(|_| Error::InvalidInput("password check interrupted".to_owned()))?;
        if !ok {
            return Err(Error::InvalidInput("Invalid old password".to_owned()));
        }
        self.set_password(user.id, new, keep).await
    }

    /// Sets a user's password (an admin's reset) and ends its sessions except `keep`.
    pub async fn set_password(
        &self,
        user: UserId,
        password: &str,
        keep: Option<TokenId>,
    ) -> Result<()> {
        self.check_password_policy(password)?;
        let salt = new_salt();
        let hash = hash_blocking(password.to_owned(), salt.clone()).await?;
        self.store.set_password(user, &hash, &salt, keep).await
    }

    /// Creates a service account in `org` (login `sa-<org>-<name>`, as Grafana 11+ does).
    pub async fn create_service_account(
        &self,
        org: OrgId,
        name: &str,
        role: Role,
        disabled: bool,
    ) -> Result<User> {
        let name = name.trim();
        if name.is_empty() || name.len() > 190 {
            return Err(Error::InvalidInput(
                "service account name must be 1 to 190 characters".to_owned(),
            ));
        }
        let slug: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let login = format!("sa-{}-{slug}", org.0);
        self.store
            .create_user(NewUser {
                login: login.clone(),
                email: login,
                name: name.to_owned(),
                password_hash: String::new(),
                salt: String::new(),
                is_admin: false,
                is_service_account: true,
                is_disabled: disabled,
                org_id: org,
                role,
            })
            .await
    }

    /// Creates a key for a service account of `org`; the key is returned once and only its
    /// hash is stored.
    pub async fn create_api_key(
        &self,
        org: OrgId,
        service_account: UserId,
        name: &str,
        seconds_to_live: Option<i64>,
    ) -> Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 190 {
            return Err(Error::InvalidInput(
                "token name must be 1 to 190 characters".to_owned(),
            ));
        }
        tandem_storage::input::check_text("token name", name)
            .map_err(|err| Error::InvalidInput(err.to_string()))?;
        // Zero or less means "never expires", as in Grafana; the upper bound keeps the
        // expiry a representable date.
        if seconds_to_live.is_some_and(|seconds| seconds > MAX_KEY_SECONDS_TO_LIVE) {
            return Err(Error::InvalidInput(format!(
                "secondsToLive must be at most {MAX_KEY_SECONDS_TO_LIVE} (100 years)"
            )));
        }
        let (key, hash) = tokio::task::spawn_blocking(new_service_account_key)
            .await
            .map_err(|_| Error::InvalidInput("key generation interrupted".to_owned()))?;
        let expires = match seconds_to_live {
            Some(seconds) if seconds > 0 => {
                Some(OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
            }
            _ => None,
        };
        let api_key = self
            .store
            .create_api_key(org, service_account, name, &hash, expires)
            .await?;
        Ok((api_key, key))
    }

    /// The user's role in `org`, if a member.
    pub async fn org_role(&self, user: UserId, org: OrgId) -> Result<Option<Role>> {
        self.store.org_role(org, user).await
    }

    /// Deletes expired sessions and old failed logins; run as a cluster-singleton job.
    pub async fn cleanup(&self) -> Result<u64> {
        let now = OffsetDateTime::now_utc();
        let sessions = self
            .store
            .delete_expired_sessions(
                now - self.settings.max_lifetime,
                now - self.settings.max_inactive_lifetime,
            )
            .await?;
        let attempts = self
            .store
            .delete_login_attempts_before(now - self.settings.failed_login_window)
            .await?;
        Ok(sessions + attempts)
    }

    /// Service accounts of `org` matching `query`.
    pub fn service_account_filter(org: OrgId, query: Option<String>) -> UserFilter {
        UserFilter {
            query,
            org_id: Some(org),
            service_accounts: true,
        }
    }

    async fn find_live_session(
        &self,
        token: &str,
    ) -> Result<(StoredSession, User, Option<Role>, bool)> {
        if !is_session_token_shaped(token) {
            return Err(Error::Unauthenticated);
        }
        let hash = hash_session_token(token, &self.settings.secret_key);
        let (stored, user, org_role) = self
            .store
            .find_session_with_user(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = OffsetDateTime::now_utc();
        let presented_current = crate::constant_time_eq(&stored.auth_token, &hash);
        if !presented_current {
            let is_previous = crate::constant_time_eq(&stored.prev_auth_token, &hash);
            if !is_previous || stored.session.rotated_at + self.settings.rotation_grace < now {
                return Err(Error::Unauthenticated);
            }
        }
        let session = &stored.session;
        if session.created_at + self.settings.max_lifetime <= now
            || session.seen_at + self.settings.max_inactive_lifetime <= now
            || user.is_disabled
        {
            return Err(Error::Unauthenticated);
        }
        Ok((stored, user, org_role, presented_current))
    }

    async fn try_rotate(
        &self,
        stored: &StoredSession,
        now: OffsetDateTime,
    ) -> Result<Option<String>> {
        let token = new_session_token();
        let hash = hash_session_token(&token, &self.settings.secret_key);
        let won = self
            .store
            .rotate_session(stored.session.id, &stored.auth_token, &hash, now)
            .await?;
        Ok(won.then_some(token))
    }

    fn check_password_policy(&self, password: &str) -> Result<()> {
        if password.chars().count() < self.settings.min_password_length {
            return Err(Error::InvalidInput("New password is too short".to_owned()));
        }
        Ok(())
    }
}

fn validate_login(login: &str) -> Result<()> {
    if login.contains('\0') {
        return Err(Error::InvalidInput(
            "login must not contain a NUL character".to_owned(),
        ));
    }
    if login.trim().is_empty() || login.len() > 190 {
        return Err(Error::InvalidInput(
            "login must be 1 to 190 characters".to_owned(),
        ));
    }
    Ok(())
}

async fn hash_blocking(password: String, salt: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password, &salt))
        .await
        .map_err(|_| Error::InvalidInput("password hashing interrupted".to_owned()))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
