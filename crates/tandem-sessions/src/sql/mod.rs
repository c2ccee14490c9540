//! The sea-orm [`SessionStore`], over the tables of the identity migration.
//!
//! Every method is one transaction ([`Database::transaction`], retried on busy and deadlock
//! errors) or one read ([`Database::read`]). A closure may run more than once, so each reads
//! the clock itself and touches nothing but the database. The schema has no foreign keys:
//! the store deletes dependent rows itself, in the same transaction as the parent.

mod batch;
mod entity;
pub(crate) mod preferences;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use tandem_storage::{Database, from_ms, now_ms};
use time::OffsetDateTime;

use crate::sql::entity::{
    api_key, login_attempt, org, org_user, team, team_member, user, user_auth_token,
};
use crate::{
    ApiKey, Error, NewUser, Org, OrgId, OrgUser, Page, Paging, Result, Role, Session, SessionStore,
    StoredSession, Team, TeamId, TokenId, User, UserFilter, UserId, UserUpdate,
};

/// Grafana's team permission of a team's Admin.
const TEAM_ADMIN: i64 = 4;

/// Grafana's answer to demoting the last server admin.
const LAST_ADMIN: &str = "cannot remove last grafana admin";
/// Grafana's answer to demoting the last Admin of an org.
pub(crate) const LAST_ORG_ADMIN_ROLE: &str =
    "Cannot change role so that there is no organization admin left";
/// Grafana's answer to removing the last Admin of an org.
pub(crate) const LAST_ORG_ADMIN_REMOVAL: &str = "Cannot remove last organization admin";

/// [`SessionStore`] over sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, migrated by
/// `tandem-migrations`.
#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    db: Database,
    /// Session lookups, batched under load.
    lookups: std::sync::Arc<batch::SessionLookups>,
}

impl SqlSessionStore {
    /// A store in `db`, whose schema must be migrated.
    pub fn new(db: Database) -> SqlSessionStore {
        let lookups = std::sync::Arc::new(batch::SessionLookups::new(db.clone()));
        SqlSessionStore { db, lookups }
    }
}

#[async_trait::async_trait]
impl SessionStore for SqlSessionStore {
    /// `Conflict("Organization name taken")`; `NotFound("user not found")` when `admin` does
    /// not exist.
    async fn create_org(&self, name: &str, admin: Option<UserId>) -> Result<Org> {
        check_len("an org name", name, NAME_LEN)?;
        self.db
            .transaction(|tx| async move {
                let now = now_ms();
                let taken = org::Entity::find()
                    .filter(org::Column::Name.eq(name))
                    .one(&*tx)
                    .await?;
                if taken.is_some() {
                    return Err(Error::Conflict(ORG_NAME_TAKEN.to_owned()));
                }
                if let Some(admin) = admin
                    && tandem_storage::first_row(user::Entity::find_by_id(admin.0), &*tx)
                        .await?
                        .is_none()
                {
                    return Err(Error::NotFound("user not found"));
                }
                let row = org::ActiveModel {
                    id: ActiveValue::NotSet,
                    name: ActiveValue::Set(name.to_owned()),
                    created: ActiveValue::Set(now),
                    updated: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|err| conflict(err, || ORG_NAME_TAKEN.to_owned()))?;
                if let Some(admin) = admin {
                    insert_org_user(&*tx, OrgId(row.id), admin, Role::Admin, now).await?;
                }
                Ok(to_org(row))
            })
            .await
    }

    async fn get_org(&self, id: OrgId) -> Result<Option<Org>> {
        let row = self
            .db
            .read(|conn| async move {
                tandem_storage::first_row(org::Entity::find_by_id(id.0), &conn).await
            })
            .await?;
        Ok(row.map(to_org))
    }

    async fn get_org_by_name(&self, name: &str) -> Result<Option<Org>> {
        if name.contains('\0') {
            return Ok(None);
        }
        let row = self
            .db
            .read(|conn| async move {
                org::Entity::find()
                    .filter(org::Column::Name.eq(name))
                    .one(&conn)
                    .await
            })
            .await?;
        Ok(row.map(to_org))
    }

    async fn search_orgs(&self, query: &str, paging: Paging) -> Result<Page<Org>> {
        let pattern = contains_pattern(query)?;
        let pattern = pattern.as_deref();
        let (total, rows) = self
            .db
            .read(|conn| async move {
                let mut select = org::Entity::find();
                if let Some(pattern) = pattern {
                    select =
                        select.filter(lower((org::Entity, org::Column::Name)).like(like(pattern)));
                }
                let total = select.clone().count(&conn).await?;
                let rows = select
                    .order_by_asc(org::Column::Name)
                    .offset(paging.offset())
                    .limit(paging.per_page)
                    .all(&conn)
                    .await?;
                Ok((total, rows))
            })
            .await?;
        Ok(Page {
            total,
            items: rows.into_iter().map(to_org).collect(),
        })
    }

    /// `NotFound("org not found")`; `Conflict("Organization name taken")` when another org
    /// has the name.
    async fn rename_org(&self, id: OrgId, name: &str) -> Result<()> {
        check_len("an org name", name, NAME_LEN)?;
        self.db
            .transaction(|tx| async move {
                let taken = org::Entity::find()
                    .filter(org::Column::Name.eq(name))
                    .filter(org::Column::Id.ne(id.0))
                    .one(&*tx)
                    .await?;
                if taken.is_some() {
                    return Err(Error::Conflict(ORG_NAME_TAKEN.to_owned()));
                }
                let updated = org::Entity::update_many()
                    .col_expr(org::Column::Name, Expr::value(name))
                    .col_expr(org::Column::Updated, Expr::value(now_ms()))
                    .filter(org::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await
                    .map_err(|err| conflict(err, || ORG_NAME_TAKEN.to_owned()))?;
                found(updated.rows_affected, "org not found")
            })
            .await
    }

    /// `NotFound("org not found")`. Members who worked in the org move to their remaining
    /// org with the lowest id; members with no other org keep the deleted id (and so have no
    /// role anywhere until they join an org). Refusing to delete the main org is the
    /// service's business.
    async fn delete_org(&self, id: OrgId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if tandem_storage::first_row(org::Entity::find_by_id(id.0), &*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("org not found"));
                }
                team_member::Entity::delete_many()
                    .filter(team_member::Column::OrgId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                team::Entity::delete_many()
                    .filter(team::Column::OrgId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                api_key::Entity::delete_many()
                    .filter(api_key::Column::OrgId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                org_user::Entity::delete_many()
                    .filter(org_user::Column::OrgId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                entity::preferences::Entity::delete_many()
                    .filter(entity::preferences::Column::OrgId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                // A service account lives in one org and goes with it, as in Grafana;
                // its keys went with the org's keys above.
                let accounts: Vec<i64> = user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .filter(user::Column::OrgId.eq(id.0))
                    .filter(user::Column::IsServiceAccount.eq(true))
                    .into_tuple()
                    .all(&*tx)
                    .await?;
                if !accounts.is_empty() {
                    user_auth_token::Entity::delete_many()
                        .filter(user_auth_token::Column::UserId.is_in(accounts.clone()))
                        .exec(&*tx)
                        .await?;
                    user::Entity::delete_many()
                        .filter(user::Column::Id.is_in(accounts))
                        .exec(&*tx)
                        .await?;
                }
                move_to_remaining_org(&*tx, id, None).await?;
                org::Entity::delete_by_id(id.0).exec(&*tx).await?;
                Ok(())
            })
            .await
    }

    /// `NotFound("org not found")` when `user.org_id` does not exist; `Conflict` (Grafana's
    /// "User with email … or username … already exists") when the login or email is any
    /// user's login or email, so that a login-or-email lookup never finds two users.
    /// An empty email becomes the login, as in Grafana.
    async fn create_user(&self, new: NewUser) -> Result<User> {
        let login = new.login.to_lowercase();
        let email = email_or_login(&new.email, &login);
        check_len("a login", &login, LOGIN_LEN)?;
        check_len("an email", &email, LOGIN_LEN)?;
        check_len("a name", &new.name, USER_NAME_LEN)?;
        let (login, email, new) = (login.as_str(), email.as_str(), &new);
        self.db
            .transaction(|tx| async move {
                let now = now_ms();
                if org::Entity::find_by_id(new.org_id.0)
                    .one(&*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("org not found"));
                }
                if login_taken(&*tx, login, email, None).await? {
                    return Err(Error::Conflict(user_taken(email, login)));
                }
                let row = user::ActiveModel {
                    id: ActiveValue::NotSet,
                    uid: ActiveValue::Set(new_uid()),
                    login: ActiveValue::Set(login.to_owned()),
                    email: ActiveValue::Set(email.to_owned()),
                    name: ActiveValue::Set(new.name.clone()),
                    password: ActiveValue::Set(new.password_hash.clone()),
                    salt: ActiveValue::Set(new.salt.clone()),
                    org_id: ActiveValue::Set(new.org_id.0),
                    is_admin: ActiveValue::Set(new.is_admin),
                    is_disabled: ActiveValue::Set(new.is_disabled),
                    is_service_account: ActiveValue::Set(new.is_service_account),
                    // Never seen; Grafana shows the epoch as "10 years" ago.
                    last_seen_at: ActiveValue::Set(0),
                    created: ActiveValue::Set(now),
                    updated: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|err| conflict(err, || user_taken(email, login)))?;
                insert_org_user(&*tx, new.org_id, UserId(row.id), new.role, now).await?;
                Ok(to_user(row))
            })
            .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        let row = self
            .db
            .read(|conn| async move {
                tandem_storage::first_row(user::Entity::find_by_id(id.0), &conn).await
            })
            .await?;
        Ok(row.map(to_user))
    }

    async fn find_user(&self, login_or_email: &str) -> Result<Option<User>> {
        if login_or_email.contains('\0') {
            return Ok(None);
        }
        let key = login_or_email.to_lowercase();
        let key = key.as_str();
        let row = self
            .db
            .read(|conn| async move { by_login_or_email(&conn, key).await })
            .await?;
        Ok(row.map(to_user))
    }

    async fn credentials(&self, login_or_email: &str) -> Result<Option<(User, String, String)>> {
        if login_or_email.contains('\0') {
            return Ok(None);
        }
        let key = login_or_email.to_lowercase();
        let key = key.as_str();
        let row = self
            .db
            .read(|conn| async move { by_login_or_email(&conn, key).await })
            .await?;
        Ok(row.map(|row| {
            let (password, salt) = (row.password.clone(), row.salt.clone());
            (to_user(row), password, salt)
        }))
    }

    async fn search_users(&self, filter: UserFilter, paging: Paging) -> Result<Page<User>> {
        let pattern = filter
            .query
            .as_deref()
            .map(contains_pattern)
            .transpose()?
            .flatten();
        let pattern = pattern.as_deref();
        let (service_accounts, org_id) = (filter.service_accounts, filter.org_id);
        let (total, rows) = self
            .db
            .read(|conn| async move {
                let mut select = user::Entity::find()
                    .filter(user::Column::IsServiceAccount.eq(service_accounts));
                if let Some(org_id) = org_id {
                    select = select
                        .inner_join(org_user::Entity)
                        .filter(org_user::Column::OrgId.eq(org_id.0));
                }
                if let Some(pattern) = pattern {
                    select = select.filter(user_matches(pattern));
                }
                let total = select.clone().count(&conn).await?;
                let rows = select
                    .order_by_asc(user::Column::Login)
                    .offset(paging.offset())
                    .limit(paging.per_page)
                    .all(&conn)
                    .await?;
                Ok((total, rows))
            })
            .await?;
        Ok(Page {
            total,
            items: rows.into_iter().map(to_user).collect(),
        })
    }

    /// `NotFound("user not found")`; `Conflict` as in [`SessionStore::create_user`] when
    /// the new login or email is another user's login or email.
    async fn update_user(&self, id: UserId, update: UserUpdate) -> Result<User> {
        let login = update.login.as_deref().map(str::to_lowercase);
        if let Some(login) = &login {
            check_len("a login", login, LOGIN_LEN)?;
        }
        let email = update.email.as_deref().map(str::to_lowercase);
        if let Some(email) = &email {
            check_len("an email", email, LOGIN_LEN)?;
        }
        if let Some(name) = &update.name {
            check_len("a name", name, USER_NAME_LEN)?;
        }
        let (login, email, name) = (login.as_deref(), email.as_deref(), update.name.as_deref());
        self.db
            .transaction(|tx| async move {
                let Some(current) =
                    tandem_storage::first_row(user::Entity::find_by_id(id.0), &*tx).await?
                else {
                    return Err(Error::NotFound("user not found"));
                };
                let new_login = login.unwrap_or(&current.login).to_owned();
                let new_email = match email {
                    Some(email) => email_or_login(email, &new_login),
                    None => current.email.clone(),
                };
                let message = || user_taken(&new_email, &new_login);
                if (login.is_some() || email.is_some())
                    && login_taken(&*tx, &new_login, &new_email, Some(id)).await?
                {
                    return Err(Error::Conflict(message()));
                }
                let mut row: user::ActiveModel = current.into();
                row.login = ActiveValue::Set(new_login.clone());
                row.email = ActiveValue::Set(new_email.clone());
                if let Some(name) = name {
                    row.name = ActiveValue::Set(name.to_owned());
                }
                row.updated = ActiveValue::Set(now_ms());
                let row = row
                    .update(&*tx)
                    .await
                    .map_err(|err| conflict(err, message))?;
                Ok(to_user(row))
            })
            .await
    }

    /// `NotFound("user not found")`.
    async fn set_password(
        &self,
        id: UserId,
        hash: &str,
        salt: &str,
        keep: Option<TokenId>,
    ) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                let updated = user::Entity::update_many()
                    .col_expr(user::Column::Password, Expr::value(hash))
                    .col_expr(user::Column::Salt, Expr::value(salt))
                    .col_expr(user::Column::Updated, Expr::value(now_ms()))
                    .filter(user::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user not found")?;
                delete_sessions(&*tx, id, keep).await?;
                Ok(())
            })
            .await
    }

    /// `NotFound("user not found")`.
    async fn set_server_admin(&self, id: UserId, is_admin: bool) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if !is_admin {
                    // Lock every admin row (FOR UPDATE; SQLite's write transaction already
                    // excludes other writers): a concurrent demotion waits here, then sees
                    // this one, so two admins demoting each other cannot both succeed.
                    let admins: Vec<i64> = user::Entity::find()
                        .select_only()
                        .column(user::Column::Id)
                        .filter(user::Column::IsAdmin.eq(true))
                        .filter(user::Column::IsServiceAccount.eq(false))
                        .lock_exclusive()
                        .into_tuple()
                        .all(&*tx)
                        .await?;
                    if admins == [id.0] {
                        return Err(Error::InvalidInput(LAST_ADMIN.to_owned()));
                    }
                }
                let updated = user::Entity::update_many()
                    .col_expr(user::Column::IsAdmin, Expr::value(is_admin))
                    .col_expr(user::Column::Updated, Expr::value(now_ms()))
                    .filter(user::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user not found")
            })
            .await
    }

    /// `NotFound("user not found")`.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                let updated = user::Entity::update_many()
                    .col_expr(user::Column::IsDisabled, Expr::value(disabled))
                    .col_expr(user::Column::Updated, Expr::value(now_ms()))
                    .filter(user::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user not found")?;
                if disabled {
                    delete_sessions(&*tx, id, None).await?;
                }
                Ok(())
            })
            .await
    }

    /// `NotFound("user is not a member of the org")`, also when the user does not exist.
    async fn set_current_org(&self, id: UserId, org: OrgId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if membership(&*tx, org, id).await?.is_none() {
                    return Err(Error::NotFound("user is not a member of the org"));
                }
                let updated = user::Entity::update_many()
                    .col_expr(user::Column::OrgId, Expr::value(org.0))
                    .filter(user::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user not found")
            })
            .await
    }

    /// `NotFound("user not found")`. The time never moves back, so an instance with a
    /// slower clock, or a late write, cannot undo a newer one.
    async fn touch_user(&self, id: UserId, at: OffsetDateTime) -> Result<()> {
        let at = ms(at);
        self.db
            .transaction(|tx| async move {
                let updated = user::Entity::update_many()
                    .col_expr(
                        user::Column::LastSeenAt,
                        later_of((user::Entity, user::Column::LastSeenAt), at, false),
                    )
                    .filter(user::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user not found")
            })
            .await
    }

    /// `NotFound("user not found")`.
    async fn delete_user(&self, id: UserId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if tandem_storage::first_row(user::Entity::find_by_id(id.0), &*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("user not found"));
                }
                org_user::Entity::delete_many()
                    .filter(org_user::Column::UserId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                team_member::Entity::delete_many()
                    .filter(team_member::Column::UserId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                entity::preferences::Entity::delete_many()
                    .filter(entity::preferences::Column::UserId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                delete_sessions(&*tx, id, None).await?;
                api_key::Entity::delete_many()
                    .filter(api_key::Column::ServiceAccountId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                user::Entity::delete_by_id(id.0).exec(&*tx).await?;
                Ok(())
            })
            .await
    }

    /// `NotFound("org not found" | "user not found")`;
    /// `Conflict("User is already member of this organization")`. A user whose current
    /// org they are not a member of (it was deleted, or they left it) moves to this one,
    /// as in Grafana.
    async fn add_org_user(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if tandem_storage::first_row(org::Entity::find_by_id(org.0), &*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("org not found"));
                }
                let Some(row) =
                    tandem_storage::first_row(user::Entity::find_by_id(user.0), &*tx).await?
                else {
                    return Err(Error::NotFound("user not found"));
                };
                if membership(&*tx, org, user).await?.is_some() {
                    return Err(Error::Conflict(ALREADY_ORG_MEMBER.to_owned()));
                }
                insert_org_user(&*tx, org, user, role, now_ms()).await?;
                if membership(&*tx, OrgId(row.org_id), user).await?.is_none() {
                    user::Entity::update_many()
                        .col_expr(user::Column::OrgId, Expr::value(org.0))
                        .filter(user::Column::Id.eq(user.0))
                        .exec(&*tx)
                        .await?;
                }
                Ok(())
            })
            .await
    }

    /// `NotFound("user is not a member of the org")`.
    /// `InvalidInput(LAST_ORG_ADMIN_ROLE)` when the user is the org's last Admin and
    /// `role` is not Admin.
    async fn set_org_role(&self, org: OrgId, user: UserId, role: Role) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if role != Role::Admin && is_last_org_admin(&*tx, org, user).await? {
                    return Err(Error::InvalidInput(LAST_ORG_ADMIN_ROLE.to_owned()));
                }
                let updated = org_user::Entity::update_many()
                    .col_expr(org_user::Column::Role, Expr::value(role.as_str()))
                    .col_expr(org_user::Column::Updated, Expr::value(now_ms()))
                    .filter(org_user::Column::OrgId.eq(org.0))
                    .filter(org_user::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "user is not a member of the org")
            })
            .await
    }

    /// `NotFound("user is not a member of the org")`; `InvalidInput(LAST_ORG_ADMIN_REMOVAL)`
    /// when the user is the org's last Admin. When the org was the user's current one, the
    /// user moves to their remaining org with the lowest id, if any.
    async fn remove_org_user(&self, org: OrgId, user: UserId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if is_last_org_admin(&*tx, org, user).await? {
                    return Err(Error::InvalidInput(LAST_ORG_ADMIN_REMOVAL.to_owned()));
                }
                let deleted = org_user::Entity::delete_many()
                    .filter(org_user::Column::OrgId.eq(org.0))
                    .filter(org_user::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                found(deleted.rows_affected, "user is not a member of the org")?;
                team_member::Entity::delete_many()
                    .filter(team_member::Column::OrgId.eq(org.0))
                    .filter(team_member::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                move_to_remaining_org(&*tx, org, Some(user)).await?;
                Ok(())
            })
            .await
    }

    async fn org_role(&self, org: OrgId, user: UserId) -> Result<Option<Role>> {
        let row = self
            .db
            .read(|conn| async move { membership(&conn, org, user).await })
            .await?;
        row.map(|row| parse_role(&row.role)).transpose()
    }

    async fn org_users(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<OrgUser>> {
        let pattern = contains_pattern(query)?;
        let pattern = pattern.as_deref();
        let (total, rows) = self
            .db
            .read(|conn| async move {
                let mut select = user::Entity::find()
                    .inner_join(org_user::Entity)
                    .filter(org_user::Column::OrgId.eq(org.0));
                if let Some(pattern) = pattern {
                    select = select.filter(user_matches(pattern));
                }
                let total = select.clone().count(&conn).await?;
                let rows = select
                    .select_also(org_user::Entity)
                    .order_by_asc(user::Column::Login)
                    .offset(paging.offset())
                    .limit(paging.per_page)
                    .all(&conn)
                    .await?;
                Ok((total, rows))
            })
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for (user, membership) in rows {
            // The inner join guarantees the membership; a missing one is skipped, not trusted.
            let Some(membership) = membership else {
                continue;
            };
            items.push(OrgUser {
                org_id: org,
                user: to_user(user),
                role: parse_role(&membership.role)?,
            });
        }
        Ok(Page { total, items })
    }

    async fn user_orgs(&self, user: UserId) -> Result<Vec<(Org, Role)>> {
        let rows = self
            .db
            .read(|conn| async move {
                org::Entity::find()
                    .inner_join(org_user::Entity)
                    .filter(org_user::Column::UserId.eq(user.0))
                    .select_also(org_user::Entity)
                    .order_by_asc(org::Column::Name)
                    .all(&conn)
                    .await
            })
            .await?;
        let mut orgs = Vec::with_capacity(rows.len());
        for (org, membership) in rows {
            if let Some(membership) = membership {
                orgs.push((to_org(org), parse_role(&membership.role)?));
            }
        }
        Ok(orgs)
    }

    /// `NotFound("org not found")`; `Conflict("Team name taken")` when the org has a team of
    /// that name.
    async fn create_team(&self, org: OrgId, name: &str, email: &str) -> Result<Team> {
        check_len("a team name", name, NAME_LEN)?;
        check_len("a team email", email, NAME_LEN)?;
        self.db
            .transaction(|tx| async move {
                let now = now_ms();
                if tandem_storage::first_row(org::Entity::find_by_id(org.0), &*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("org not found"));
                }
                if team_named(&*tx, org, name, None).await? {
                    return Err(Error::Conflict(TEAM_NAME_TAKEN.to_owned()));
                }
                let row = team::ActiveModel {
                    id: ActiveValue::NotSet,
                    uid: ActiveValue::Set(new_uid()),
                    org_id: ActiveValue::Set(org.0),
                    name: ActiveValue::Set(name.to_owned()),
                    email: ActiveValue::Set(email.to_owned()),
                    created: ActiveValue::Set(now),
                    updated: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|err| conflict(err, || TEAM_NAME_TAKEN.to_owned()))?;
                Ok(to_team(row, 0))
            })
            .await
    }

    async fn get_team(&self, org: OrgId, id: TeamId) -> Result<Option<Team>> {
        let found = self
            .db
            .read(|conn| async move {
                let Some(row) = team_in_org(&conn, org, id).await? else {
                    return Ok(None);
                };
                let counts = member_counts(&conn, &[row.id]).await?;
                Ok(Some((row, counts)))
            })
            .await?;
        Ok(found.map(|(row, counts)| {
            let members = counts.get(&row.id).copied().unwrap_or(0);
            to_team(row, members)
        }))
    }

    async fn search_teams(&self, org: OrgId, query: &str, paging: Paging) -> Result<Page<Team>> {
        let pattern = contains_pattern(query)?;
        let pattern = pattern.as_deref();
        let (total, rows, counts) = self
            .db
            .read(|conn| async move {
                let mut select = team::Entity::find().filter(team::Column::OrgId.eq(org.0));
                if let Some(pattern) = pattern {
                    select = select
                        .filter(lower((team::Entity, team::Column::Name)).like(like(pattern)));
                }
                let total = select.clone().count(&conn).await?;
                let rows = select
                    .order_by_asc(team::Column::Name)
                    .offset(paging.offset())
                    .limit(paging.per_page)
                    .all(&conn)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
                let counts = member_counts(&conn, &ids).await?;
                Ok((total, rows, counts))
            })
            .await?;
        let items = rows
            .into_iter()
            .map(|row| {
                let members = counts.get(&row.id).copied().unwrap_or(0);
                to_team(row, members)
            })
            .collect();
        Ok(Page { total, items })
    }

    async fn user_team_ids(&self, org: OrgId, user: UserId) -> Result<Vec<TeamId>> {
        let ids: Vec<i64> = self
            .db
            .read(|conn| async move {
                team_member::Entity::find()
                    .select_only()
                    .column(team_member::Column::TeamId)
                    .filter(team_member::Column::OrgId.eq(org.0))
                    .filter(team_member::Column::UserId.eq(user.0))
                    .order_by_asc(team_member::Column::TeamId)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(ids.into_iter().map(TeamId).collect())
    }

    async fn user_teams(&self, org: OrgId, user: UserId) -> Result<Vec<Team>> {
        let (rows, counts) = self
            .db
            .read(|conn| async move {
                let rows = team::Entity::find()
                    .filter(team::Column::OrgId.eq(org.0))
                    .filter(
                        team::Column::Id.in_subquery(
                            Query::select()
                                .column(team_member::Column::TeamId)
                                .from(team_member::Entity)
                                .and_where(Expr::col(team_member::Column::OrgId).eq(org.0))
                                .and_where(Expr::col(team_member::Column::UserId).eq(user.0))
                                .to_owned(),
                        ),
                    )
                    .order_by_asc(team::Column::Name)
                    .all(&conn)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
                let counts = member_counts(&conn, &ids).await?;
                Ok((rows, counts))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let members = counts.get(&row.id).copied().unwrap_or(0);
                to_team(row, members)
            })
            .collect())
    }

    /// `NotFound("team not found")`; `Conflict("Team name taken")` when another team of the
    /// org has the name.
    async fn update_team(&self, org: OrgId, id: TeamId, name: &str, email: &str) -> Result<()> {
        check_len("a team name", name, NAME_LEN)?;
        check_len("a team email", email, NAME_LEN)?;
        self.db
            .transaction(|tx| async move {
                if team_in_org(&*tx, org, id).await?.is_none() {
                    return Err(Error::NotFound("team not found"));
                }
                if team_named(&*tx, org, name, Some(id)).await? {
                    return Err(Error::Conflict(TEAM_NAME_TAKEN.to_owned()));
                }
                team::Entity::update_many()
                    .col_expr(team::Column::Name, Expr::value(name))
                    .col_expr(team::Column::Email, Expr::value(email))
                    .col_expr(team::Column::Updated, Expr::value(now_ms()))
                    .filter(team::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await
                    .map_err(|err| conflict(err, || TEAM_NAME_TAKEN.to_owned()))?;
                Ok(())
            })
            .await
    }

    /// `NotFound("team not found")`.
    async fn delete_team(&self, org: OrgId, id: TeamId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if team_in_org(&*tx, org, id).await?.is_none() {
                    return Err(Error::NotFound("team not found"));
                }
                team_member::Entity::delete_many()
                    .filter(team_member::Column::TeamId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                entity::preferences::Entity::delete_many()
                    .filter(entity::preferences::Column::OrgId.eq(org.0))
                    .filter(entity::preferences::Column::TeamId.eq(id.0))
                    .exec(&*tx)
                    .await?;
                team::Entity::delete_by_id(id.0).exec(&*tx).await?;
                Ok(())
            })
            .await
    }

    /// `NotFound("team not found" | "user is not a member of the org")`;
    /// `Conflict("User is already added to this team")`.
    async fn add_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if team_in_org(&*tx, org, team).await?.is_none() {
                    return Err(Error::NotFound("team not found"));
                }
                if membership(&*tx, org, user).await?.is_none() {
                    return Err(Error::NotFound("user is not a member of the org"));
                }
                let existing = team_member::Entity::find()
                    .filter(team_member::Column::TeamId.eq(team.0))
                    .filter(team_member::Column::UserId.eq(user.0))
                    .one(&*tx)
                    .await?;
                if existing.is_some() {
                    return Err(Error::Conflict(ALREADY_TEAM_MEMBER.to_owned()));
                }
                let row = team_member::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(org.0),
                    team_id: ActiveValue::Set(team.0),
                    user_id: ActiveValue::Set(user.0),
                    created: ActiveValue::Set(now_ms()),
                    permission: ActiveValue::Set(0),
                };
                team_member::Entity::insert(row)
                    .exec(&*tx)
                    .await
                    .map_err(|err| conflict(err, || ALREADY_TEAM_MEMBER.to_owned()))?;
                Ok(())
            })
            .await
    }

    async fn set_team_admin(
        &self,
        org: OrgId,
        team: TeamId,
        user: UserId,
        admin: bool,
    ) -> Result<()> {
        let permission = if admin { TEAM_ADMIN } else { 0 };
        self.db
            .transaction(|tx| async move {
                if team_in_org(&*tx, org, team).await?.is_none() {
                    return Err(Error::NotFound("team not found"));
                }
                let updated = team_member::Entity::update_many()
                    .col_expr(team_member::Column::Permission, Expr::value(permission))
                    .filter(team_member::Column::TeamId.eq(team.0))
                    .filter(team_member::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                // MySQL counts changed rows: setting the same value again changes none.
                if updated.rows_affected == 0
                    && team_member::Entity::find()
                        .filter(team_member::Column::TeamId.eq(team.0))
                        .filter(team_member::Column::UserId.eq(user.0))
                        .count(&*tx)
                        .await?
                        == 0
                {
                    return Err(Error::NotFound("team member not found"));
                }
                Ok(())
            })
            .await
    }

    async fn team_admins(&self, org: OrgId, team: TeamId) -> Result<Vec<UserId>> {
        let ids: Vec<i64> = self
            .db
            .read(|conn| async move {
                team_member::Entity::find()
                    .select_only()
                    .column(team_member::Column::UserId)
                    .filter(team_member::Column::OrgId.eq(org.0))
                    .filter(team_member::Column::TeamId.eq(team.0))
                    .filter(team_member::Column::Permission.eq(TEAM_ADMIN))
                    .order_by_asc(team_member::Column::UserId)
                    .into_tuple()
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    /// `NotFound("team not found" | "team member not found")`.
    async fn remove_team_member(&self, org: OrgId, team: TeamId, user: UserId) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                if team_in_org(&*tx, org, team).await?.is_none() {
                    return Err(Error::NotFound("team not found"));
                }
                let deleted = team_member::Entity::delete_many()
                    .filter(team_member::Column::TeamId.eq(team.0))
                    .filter(team_member::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                found(deleted.rows_affected, "team member not found")
            })
            .await
    }

    /// `NotFound("team not found")` when the org has no such team.
    async fn team_members(&self, org: OrgId, team: TeamId) -> Result<Vec<User>> {
        let rows = self
            .db
            .read(|conn| async move {
                if team_in_org(&conn, org, team).await?.is_none() {
                    return Ok(None);
                }
                let rows = user::Entity::find()
                    .inner_join(team_member::Entity)
                    .filter(team_member::Column::TeamId.eq(team.0))
                    .order_by_asc(user::Column::Login)
                    .all(&conn)
                    .await?;
                Ok(Some(rows))
            })
            .await?
            .ok_or(Error::NotFound("team not found"))?;
        Ok(rows.into_iter().map(to_user).collect())
    }

    /// `NotFound("service account not found")` unless `service_account` is a service account
    /// in `org`; `Conflict("service account token with given name already exists in the
    /// organization")`.
    async fn create_api_key(
        &self,
        org: OrgId,
        service_account: UserId,
        name: &str,
        hash: &str,
        expires: Option<OffsetDateTime>,
    ) -> Result<ApiKey> {
        check_len("a token name", name, NAME_LEN)?;
        check_len("a token hash", hash, NAME_LEN)?;
        let expires = expires.map(ms);
        self.db
            .transaction(|tx| async move {
                let now = now_ms();
                let account = user::Entity::find_by_id(service_account.0)
                    .filter(user::Column::IsServiceAccount.eq(true))
                    .one(&*tx)
                    .await?;
                if account.is_none() || membership(&*tx, org, service_account).await?.is_none() {
                    return Err(Error::NotFound("service account not found"));
                }
                let taken = api_key::Entity::find()
                    .filter(api_key::Column::ServiceAccountId.eq(service_account.0))
                    .filter(api_key::Column::Name.eq(name))
                    .one(&*tx)
                    .await?;
                if taken.is_some() {
                    return Err(Error::Conflict(API_KEY_NAME_TAKEN.to_owned()));
                }
                let row = api_key::ActiveModel {
                    id: ActiveValue::NotSet,
                    org_id: ActiveValue::Set(org.0),
                    service_account_id: ActiveValue::Set(service_account.0),
                    name: ActiveValue::Set(name.to_owned()),
                    key_hash: ActiveValue::Set(hash.to_owned()),
                    expires: ActiveValue::Set(expires),
                    last_used_at: ActiveValue::Set(None),
                    created: ActiveValue::Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|err| conflict(err, || API_KEY_NAME_TAKEN.to_owned()))?;
                Ok(to_api_key(row))
            })
            .await
    }

    async fn api_keys(&self, service_account: UserId) -> Result<Vec<ApiKey>> {
        let rows = self
            .db
            .read(|conn| async move {
                api_key::Entity::find()
                    .filter(api_key::Column::ServiceAccountId.eq(service_account.0))
                    .order_by_asc(api_key::Column::Id)
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows.into_iter().map(to_api_key).collect())
    }

    /// `NotFound("api key not found")` when the service account has no such key.
    async fn delete_api_key(&self, service_account: UserId, id: i64) -> Result<()> {
        self.db
            .transaction(|tx| async move {
                let deleted = api_key::Entity::delete_many()
                    .filter(api_key::Column::Id.eq(id))
                    .filter(api_key::Column::ServiceAccountId.eq(service_account.0))
                    .exec(&*tx)
                    .await?;
                found(deleted.rows_affected, "api key not found")
            })
            .await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        if hash.is_empty() {
            return Ok(None);
        }
        let row = self
            .db
            .read(|conn| async move {
                api_key::Entity::find()
                    .filter(api_key::Column::KeyHash.eq(hash))
                    .one(&conn)
                    .await
            })
            .await?;
        Ok(row.map(to_api_key))
    }

    /// `NotFound("api key not found")`. The time never moves back.
    async fn touch_api_key(&self, id: i64, at: OffsetDateTime) -> Result<()> {
        let at = ms(at);
        self.db
            .transaction(|tx| async move {
                let updated = api_key::Entity::update_many()
                    .col_expr(
                        api_key::Column::LastUsedAt,
                        later_of((api_key::Entity, api_key::Column::LastUsedAt), at, true),
                    )
                    .filter(api_key::Column::Id.eq(id))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "api key not found")
            })
            .await
    }

    /// `NotFound("user not found")`. The user agent and address are cut to the 255
    /// characters their columns hold rather than failing the login.
    async fn create_session(
        &self,
        user: UserId,
        hash: &str,
        user_agent: &str,
        client_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Session> {
        check_len("a session hash", hash, SESSION_HASH_LEN)?;
        if hash.is_empty() {
            return Err(Error::InvalidInput(
                "a session hash cannot be empty".to_owned(),
            ));
        }
        let now = ms(now);
        let (user_agent, client_ip) = (
            truncated(user_agent, SESSION_TEXT_LEN),
            truncated(client_ip, SESSION_TEXT_LEN),
        );
        self.db
            .transaction(|tx| async move {
                if tandem_storage::first_row(user::Entity::find_by_id(user.0), &*tx)
                    .await?
                    .is_none()
                {
                    return Err(Error::NotFound("user not found"));
                }
                let row = user_auth_token::ActiveModel {
                    id: ActiveValue::NotSet,
                    user_id: ActiveValue::Set(user.0),
                    auth_token: ActiveValue::Set(hash.to_owned()),
                    prev_auth_token: ActiveValue::Set(String::new()),
                    user_agent: ActiveValue::Set(user_agent.to_owned()),
                    client_ip: ActiveValue::Set(client_ip.to_owned()),
                    seen_at: ActiveValue::Set(now),
                    rotated_at: ActiveValue::Set(now),
                    created_at: ActiveValue::Set(now),
                    revoked_at: ActiveValue::Set(None),
                }
                .insert(&*tx)
                .await
                .map_err(|err| {
                    conflict(err, || {
                        "a session with this token already exists".to_owned()
                    })
                })?;
                Ok(to_session(&row))
            })
            .await
    }

    /// An empty hash finds nothing (the previous hash of a never-rotated session is empty).
    /// Should a hash be one session's current and another's previous, the current wins.
    async fn find_session(&self, hash: &str) -> Result<Option<StoredSession>> {
        if hash.is_empty() {
            return Ok(None);
        }
        let rows = self
            .db
            .read(|conn| async move {
                user_auth_token::Entity::find()
                    .filter(
                        Condition::any()
                            .add(user_auth_token::Column::AuthToken.eq(hash))
                            .add(user_auth_token::Column::PrevAuthToken.eq(hash)),
                    )
                    .order_by_asc(user_auth_token::Column::Id)
                    .limit(2)
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .max_by_key(|row| row.auth_token == hash)
            .map(|row| StoredSession {
                session: to_session(&row),
                auth_token: row.auth_token,
                prev_auth_token: row.prev_auth_token,
            }))
    }

    /// One query: the session joined with its user and the user's membership of its
    /// default org.
    /// One query, shared with the lookups of other requests waiting at the same moment
    /// (see `batch.rs`).
    async fn find_session_with_user(
        &self,
        hash: &str,
    ) -> Result<Option<(StoredSession, User, Option<Role>)>> {
        if hash.is_empty() {
            return Ok(None);
        }
        self.lookups.find(hash).await
    }

    /// Also records the rotation as a use (`seen_at`, which never moves back).
    async fn rotate_session(
        &self,
        id: TokenId,
        current: &str,
        new: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        check_len("a session hash", new, SESSION_HASH_LEN)?;
        let now = ms(now);
        self.db
            .transaction(|tx| async move {
                // MySQL evaluates a multi-column SET left to right with the values already
                // assigned, so `prev_auth_token = auth_token` must come before `auth_token`
                // changes or it would copy the new hash; sea-query keeps this order, and the
                // other engines read the old row whatever the order.
                let updated = user_auth_token::Entity::update_many()
                    .col_expr(
                        user_auth_token::Column::PrevAuthToken,
                        Expr::col((user_auth_token::Entity, user_auth_token::Column::AuthToken)),
                    )
                    .col_expr(user_auth_token::Column::AuthToken, Expr::value(new))
                    .col_expr(user_auth_token::Column::RotatedAt, Expr::value(now))
                    // A rotation is a use: the request that rotates does not touch the
                    // session as well, and an active session must not expire as idle.
                    .col_expr(
                        user_auth_token::Column::SeenAt,
                        later_of(
                            (user_auth_token::Entity, user_auth_token::Column::SeenAt),
                            now,
                            false,
                        ),
                    )
                    .filter(user_auth_token::Column::Id.eq(id.0))
                    .filter(user_auth_token::Column::AuthToken.eq(current))
                    .exec(&*tx)
                    .await
                    .map_err(|err| {
                        conflict(err, || {
                            "a session with this token already exists".to_owned()
                        })
                    })?;
                Ok(updated.rows_affected == 1)
            })
            .await
    }

    /// `NotFound("session not found")`. The time never moves back.
    async fn touch_session(&self, id: TokenId, at: OffsetDateTime) -> Result<()> {
        let at = ms(at);
        self.db
            .transaction(|tx| async move {
                let updated = user_auth_token::Entity::update_many()
                    .col_expr(
                        user_auth_token::Column::SeenAt,
                        later_of(
                            (user_auth_token::Entity, user_auth_token::Column::SeenAt),
                            at,
                            false,
                        ),
                    )
                    .filter(user_auth_token::Column::Id.eq(id.0))
                    .exec(&*tx)
                    .await?;
                found(updated.rows_affected, "session not found")
            })
            .await
    }

    async fn revoke_session(&self, user: UserId, id: TokenId) -> Result<bool> {
        self.db
            .transaction(|tx| async move {
                let deleted = user_auth_token::Entity::delete_many()
                    .filter(user_auth_token::Column::Id.eq(id.0))
                    .filter(user_auth_token::Column::UserId.eq(user.0))
                    .exec(&*tx)
                    .await?;
                Ok(deleted.rows_affected == 1)
            })
            .await
    }

    async fn revoke_user_sessions(&self, user: UserId, except: Option<TokenId>) -> Result<u64> {
        self.db
            .transaction(|tx| async move { Ok(delete_sessions(&*tx, user, except).await?) })
            .await
    }

    async fn user_sessions(&self, user: UserId) -> Result<Vec<Session>> {
        let rows = self
            .db
            .read(|conn| async move {
                user_auth_token::Entity::find()
                    .filter(user_auth_token::Column::UserId.eq(user.0))
                    .order_by_desc(user_auth_token::Column::CreatedAt)
                    .order_by_desc(user_auth_token::Column::Id)
                    .all(&conn)
                    .await
            })
            .await?;
        Ok(rows.iter().map(to_session).collect())
    }

    async fn delete_expired_sessions(
        &self,
        created_before: OffsetDateTime,
        seen_before: OffsetDateTime,
    ) -> Result<u64> {
        let (created_before, seen_before) = (ms(created_before), ms(seen_before));
        self.db
            .transaction(|tx| async move {
                let deleted = user_auth_token::Entity::delete_many()
                    .filter(
                        Condition::any()
                            .add(user_auth_token::Column::CreatedAt.lt(created_before))
                            .add(user_auth_token::Column::SeenAt.lt(seen_before)),
                    )
                    .exec(&*tx)
                    .await?;
                Ok(deleted.rows_affected)
            })
            .await
    }

    /// The login is kept lower-case and cut to the 190 characters of its column (the same
    /// cut applies when counting), so an over-long guess is still counted.
    async fn record_failed_login(&self, login: &str, ip: &str, at: OffsetDateTime) -> Result<()> {
        let username = attempt_username(login);
        let (username, ip, at) = (username.as_str(), truncated(ip, IP_LEN), ms(at));
        self.db
            .transaction(|tx| async move {
                let row = login_attempt::ActiveModel {
                    id: ActiveValue::NotSet,
                    username: ActiveValue::Set(username.to_owned()),
                    ip_address: ActiveValue::Set(Some(ip.to_owned())),
                    created: ActiveValue::Set(at),
                };
                login_attempt::Entity::insert(row).exec(&*tx).await?;
                Ok(())
            })
            .await
    }

    async fn failed_logins_since(&self, login: &str, since: OffsetDateTime) -> Result<u64> {
        let username = attempt_username(login);
        let (username, since) = (username.as_str(), ms(since));
        Ok(self
            .db
            .read(|conn| async move {
                login_attempt::Entity::find()
                    .filter(login_attempt::Column::Username.eq(username))
                    .filter(login_attempt::Column::Created.gte(since))
                    .count(&conn)
                    .await
            })
            .await?)
    }

    async fn clear_failed_logins(&self, login: &str) -> Result<()> {
        let username = attempt_username(login);
        let username = username.as_str();
        self.db
            .transaction(|tx| async move {
                login_attempt::Entity::delete_many()
                    .filter(login_attempt::Column::Username.eq(username))
                    .exec(&*tx)
                    .await?;
                Ok(())
            })
            .await
    }

    async fn delete_login_attempts_before(&self, before: OffsetDateTime) -> Result<u64> {
        let before = ms(before);
        self.db
            .transaction(|tx| async move {
                let deleted = login_attempt::Entity::delete_many()
                    .filter(login_attempt::Column::Created.lt(before))
                    .exec(&*tx)
                    .await?;
                Ok(deleted.rows_affected)
            })
            .await
    }
}

// Grafana's messages, which clients show as they are.
const ORG_NAME_TAKEN: &str = "Organization name taken";
const TEAM_NAME_TAKEN: &str = "Team name taken";
const API_KEY_NAME_TAKEN: &str =
    "service account token with given name already exists in the organization";
const ALREADY_ORG_MEMBER: &str = "User is already member of this organization";
const ALREADY_TEAM_MEMBER: &str = "User is already added to this team";

// The widths of the columns, in characters.
/// Org, team and token names, team emails, token hashes, login-attempt usernames.
const NAME_LEN: usize = 190;
/// Logins and emails.
const LOGIN_LEN: usize = 190;
/// Display names of users.
const USER_NAME_LEN: usize = 255;
/// Session token hashes.
const SESSION_HASH_LEN: usize = 100;
/// Client addresses of login attempts.
const IP_LEN: usize = 50;
/// User agents and client addresses of sessions.
const SESSION_TEXT_LEN: usize = 255;

/// Grafana's conflict message for a taken login or email.
fn user_taken(email: &str, login: &str) -> String {
    format!("User with email '{email}' or username '{login}' already exists")
}

/// A violated unique index becomes [`Error::Conflict`] with `message`: the check before the
/// write gives the same answer, but only the index settles a race between instances.
fn conflict(err: DbErr, message: impl FnOnce() -> String) -> Error {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(message()),
        _ => err.into(),
    }
}

/// `Ok` when a write matched a row, `NotFound(what)` otherwise. (MySQL connections report
/// matched rather than changed rows, so an update to the same values still counts.)
fn found(rows_affected: u64, what: &'static str) -> Result<()> {
    if rows_affected == 0 {
        return Err(Error::NotFound(what));
    }
    Ok(())
}

/// Refuses a value longer than its column, so that every engine fails the same way (SQLite
/// would store it, the others reject it with an engine-specific error).
fn check_len(what: &str, value: &str, max: usize) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{what} must not contain a NUL character"
        )));
    }
    if value.chars().count() > max {
        return Err(Error::InvalidInput(format!(
            "{what} must be at most {max} characters long"
        )));
    }
    Ok(())
}

/// `value` cut to at most `max` characters.
fn truncated(value: &str, max: usize) -> &str {
    match value.char_indices().nth(max) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

/// What `login_attempt.username` holds for `login`.
fn attempt_username(login: &str) -> String {
    // A NUL cannot be stored by every engine, and no login contains one.
    truncated(&login.to_lowercase().replace('\0', "\u{fffd}"), NAME_LEN).to_owned()
}

/// The stored email: lower-case, and the login when empty (the unique index would
/// otherwise allow a single user without an email).
fn email_or_login(email: &str, login: &str) -> String {
    if email.trim().is_empty() {
        login.to_owned()
    } else {
        email.to_lowercase()
    }
}

/// A fresh uid: 14 random lower-case letters and digits.
fn new_uid() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..14)
        .map(|_| {
            let at = rand::random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(at).copied().unwrap_or(b'a'))
        })
        .collect()
}

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A `LIKE` pattern for "contains `query`", lower-case, with the wildcards of `query`
/// escaped by `!` (a backslash would need escaping itself in MySQL's string literals);
/// `None` for an empty query, which matches everything.
fn contains_pattern(query: &str) -> Result<Option<String>> {
    tandem_storage::input::check_pattern("query", query)
        .map_err(|err| Error::InvalidInput(err.to_string()))?;
    if query.is_empty() {
        return Ok(None);
    }
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in query.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(Some(pattern))
}

fn like(pattern: &str) -> LikeExpr {
    LikeExpr::new(pattern).escape('!')
}

/// `LOWER(column)`. SQLite lower-cases ASCII only, so there a non-ASCII query matches only
/// the exact case of a display name (logins and emails are stored lower-case anyway).
fn lower(
    column: (
        impl sea_orm::sea_query::IntoIden,
        impl sea_orm::sea_query::IntoIden,
    ),
) -> Expr {
    Expr::expr(Func::lower(Expr::col(column)))
}

/// The login, email or name of a user contains the pattern.
fn user_matches(pattern: &str) -> Condition {
    Condition::any()
        .add(lower((user::Entity, user::Column::Login)).like(like(pattern)))
        .add(lower((user::Entity, user::Column::Email)).like(like(pattern)))
        .add(lower((user::Entity, user::Column::Name)).like(like(pattern)))
}

/// `CASE WHEN column < at THEN at ELSE column END` (a NULL column counts as earlier when
/// `nullable`): a timestamp that only moves forward.
fn later_of(
    column: (
        impl sea_orm::sea_query::IntoIden,
        impl sea_orm::sea_query::IntoIden,
    ),
    at: i64,
    nullable: bool,
) -> Expr {
    let column = Expr::col(column);
    let mut earlier = Condition::any().add(column.clone().lt(at));
    if nullable {
        earlier = earlier.add(column.clone().is_null());
    }
    Expr::case(earlier, at).finally(column).into()
}

/// The user whose login, or else whose email, is `key` (already lower-case).
async fn by_login_or_email(
    conn: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<user::Model>, DbErr> {
    if key.is_empty() {
        return Ok(None);
    }
    let rows = user::Entity::find()
        .filter(
            Condition::any()
                .add(user::Column::Login.eq(key))
                .add(user::Column::Email.eq(key)),
        )
        .order_by_asc(user::Column::Id)
        .limit(2)
        .all(conn)
        .await?;
    // Creation keeps logins and emails apart, but should two rows match (data from
    // elsewhere), a login match wins over an email match, as in Grafana.
    Ok(rows.into_iter().max_by_key(|row| row.login == key))
}

/// Whether `login` or `email` is already some user's login or email (`except` that user).
async fn login_taken(
    conn: &impl ConnectionTrait,
    login: &str,
    email: &str,
    except: Option<UserId>,
) -> Result<bool, DbErr> {
    let mut select = user::Entity::find().filter(
        Condition::any()
            .add(user::Column::Login.is_in([login, email]))
            .add(user::Column::Email.is_in([login, email])),
    );
    if let Some(except) = except {
        select = select.filter(user::Column::Id.ne(except.0));
    }
    Ok(select.one(conn).await?.is_some())
}

async fn membership(
    conn: &impl ConnectionTrait,
    org: OrgId,
    user: UserId,
) -> Result<Option<org_user::Model>, DbErr> {
    org_user::Entity::find()
        .filter(org_user::Column::OrgId.eq(org.0))
        .filter(org_user::Column::UserId.eq(user.0))
        .one(conn)
        .await
}

/// `Conflict("User is already member of this organization")` when the index says so.
async fn insert_org_user(
    conn: &impl ConnectionTrait,
    org: OrgId,
    user: UserId,
    role: Role,
    now: i64,
) -> Result<()> {
    let row = org_user::ActiveModel {
        id: ActiveValue::NotSet,
        org_id: ActiveValue::Set(org.0),
        user_id: ActiveValue::Set(user.0),
        role: ActiveValue::Set(role.as_str().to_owned()),
        created: ActiveValue::Set(now),
        updated: ActiveValue::Set(now),
    };
    org_user::Entity::insert(row)
        .exec(conn)
        .await
        .map_err(|err| conflict(err, || ALREADY_ORG_MEMBER.to_owned()))?;
    Ok(())
}

/// Users (`only` that one, when given) whose current org is `org`, of which they are no
/// longer members, move to their remaining membership with the lowest org id; users with
/// none keep `org`.
async fn move_to_remaining_org(
    conn: &impl ConnectionTrait,
    org: OrgId,
    only: Option<UserId>,
) -> Result<(), DbErr> {
    let of_the_user = || {
        Expr::col((org_user::Entity, org_user::Column::UserId))
            .equals((user::Entity, user::Column::Id))
    };
    let lowest = Query::select()
        .expr(Expr::col((org_user::Entity, org_user::Column::OrgId)).min())
        .from(org_user::Entity)
        .and_where(of_the_user())
        .to_owned();
    let any = Query::select()
        .expr(Expr::val(1))
        .from(org_user::Entity)
        .and_where(of_the_user())
        .to_owned();
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::OrgId, Expr::from(lowest))
        .filter(user::Column::OrgId.eq(org.0))
        .filter(Expr::exists(any));
    if let Some(only) = only {
        update = update.filter(user::Column::Id.eq(only.0));
    }
    update.exec(conn).await?;
    Ok(())
}

async fn team_in_org(
    conn: &impl ConnectionTrait,
    org: OrgId,
    id: TeamId,
) -> Result<Option<team::Model>, DbErr> {
    team::Entity::find_by_id(id.0)
        .filter(team::Column::OrgId.eq(org.0))
        .one(conn)
        .await
}

/// Whether another team of the org (not `except`) is called `name`.
async fn team_named(
    conn: &impl ConnectionTrait,
    org: OrgId,
    name: &str,
    except: Option<TeamId>,
) -> Result<bool, DbErr> {
    let mut select = team::Entity::find()
        .filter(team::Column::OrgId.eq(org.0))
        .filter(team::Column::Name.eq(name));
    if let Some(except) = except {
        select = select.filter(team::Column::Id.ne(except.0));
    }
    Ok(select.one(conn).await?.is_some())
}

/// How many members each of `teams` has; teams without members are absent.
async fn member_counts(
    conn: &impl ConnectionTrait,
    teams: &[i64],
) -> Result<HashMap<i64, u64>, DbErr> {
    if teams.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, i64)> = team_member::Entity::find()
        .select_only()
        .column(team_member::Column::TeamId)
        .column_as(team_member::Column::Id.count(), "members")
        .filter(team_member::Column::TeamId.is_in(teams.iter().copied()))
        .group_by(team_member::Column::TeamId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(team, members)| (team, u64::try_from(members).unwrap_or(0)))
        .collect())
}

/// Deletes the user's sessions but `keep`; returns how many.
async fn delete_sessions(
    conn: &impl ConnectionTrait,
    user: UserId,
    keep: Option<TokenId>,
) -> Result<u64, DbErr> {
    let mut delete =
        user_auth_token::Entity::delete_many().filter(user_auth_token::Column::UserId.eq(user.0));
    if let Some(keep) = keep {
        delete = delete.filter(user_auth_token::Column::Id.ne(keep.0));
    }
    Ok(delete.exec(conn).await?.rows_affected)
}

/// A role as stored; anything else is a corrupt row, reported as a storage error rather
/// than guessed at.
fn parse_role(role: &str) -> Result<Role> {
    role.parse().map_err(|_| {
        Error::Storage(tandem_storage::Error::Database(DbErr::Type(format!(
            "org_user.role holds {role:?}, which is not a role"
        ))))
    })
}

fn to_org(row: org::Model) -> Org {
    Org {
        id: OrgId(row.id),
        name: row.name,
        created: from_ms(row.created),
        updated: from_ms(row.updated),
    }
}

/// The text of the one-query session lookup, for `backend`'s quoting and placeholders.
/// Columns come back prefixed (`t_`, `u_`) so that sea-orm's models read them.
/// Whether `user` is the only Admin of `org` (service accounts count, as in Grafana).
///
/// Locks the org's Admin memberships first (`FOR UPDATE`; SQLite's write transaction
/// already excludes other writers), so of two Admins demoting or removing each other at
/// the same moment the second waits, then sees the first change and is refused.
async fn is_last_org_admin(conn: &impl ConnectionTrait, org: OrgId, user: UserId) -> Result<bool> {
    let admins: Vec<i64> = org_user::Entity::find()
        .select_only()
        .column(org_user::Column::UserId)
        .filter(org_user::Column::OrgId.eq(org.0))
        .filter(org_user::Column::Role.eq(Role::Admin.as_str()))
        .lock_exclusive()
        .into_tuple()
        .all(conn)
        .await?;
    Ok(admins == [user.0])
}

fn to_user(row: user::Model) -> User {
    User {
        id: UserId(row.id),
        uid: row.uid,
        login: row.login,
        email: row.email,
        name: row.name,
        org_id: OrgId(row.org_id),
        is_admin: row.is_admin,
        is_disabled: row.is_disabled,
        is_service_account: row.is_service_account,
        last_seen_at: from_ms(row.last_seen_at),
        created: from_ms(row.created),
        updated: from_ms(row.updated),
    }
}

fn to_team(row: team::Model, member_count: u64) -> Team {
    Team {
        id: TeamId(row.id),
        uid: row.uid,
        org_id: OrgId(row.org_id),
        name: row.name,
        email: row.email,
        member_count,
        created: from_ms(row.created),
    }
}

fn to_api_key(row: api_key::Model) -> ApiKey {
    ApiKey {
        id: row.id,
        org_id: OrgId(row.org_id),
        service_account_id: UserId(row.service_account_id),
        name: row.name,
        expires: row.expires.map(from_ms),
        last_used_at: row.last_used_at.map(from_ms),
        created: from_ms(row.created),
    }
}

fn to_session(row: &user_auth_token::Model) -> Session {
    Session {
        id: TokenId(row.id),
        user_id: UserId(row.user_id),
        user_agent: row.user_agent.clone(),
        client_ip: row.client_ip.clone(),
        created_at: from_ms(row.created_at),
        seen_at: from_ms(row.seen_at),
        rotated_at: from_ms(row.rotated_at),
    }
}
