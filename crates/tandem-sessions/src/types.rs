use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An organisation's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A user's (or service account's) id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// A team's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamId(pub i64);

/// A session token row's id (never the token itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub i64);

/// A user's role in an org. Ordered: `Viewer < Editor < Admin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and writes content.
    Editor,
    /// Also manages the org's users and teams.
    Admin,
}

impl Role {
    /// Grafana's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Editor => "Editor",
            Role::Admin => "Admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Role> {
        match s {
            "Viewer" => Ok(Role::Viewer),
            "Editor" => Ok(Role::Editor),
            "Admin" => Ok(Role::Admin),
            other => Err(crate::Error::InvalidInput(format!(
                "invalid role {other:?}: expected Viewer, Editor or Admin"
            ))),
        }
    }
}

/// An organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    /// Its id.
    pub id: OrgId,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it last changed.
    pub updated: OffsetDateTime,
}

/// A user or a service account (`is_service_account`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// A stable string id.
    pub uid: String,
    /// The login, lower-case.
    pub login: String,
    /// The email, lower-case.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The org the user works in when a request names none.
    pub org_id: OrgId,
    /// Server admin (Grafana's `isGrafanaAdmin`).
    pub is_admin: bool,
    /// A disabled user cannot log in or use a session.
    pub is_disabled: bool,
    /// A service account, not a person.
    pub is_service_account: bool,
    /// When the user was last seen.
    pub last_seen_at: OffsetDateTime,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it last changed.
    pub updated: OffsetDateTime,
}

/// A user's membership of an org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgUser {
    /// The org.
    pub org_id: OrgId,
    /// The member.
    pub user: User,
    /// The member's role there.
    pub role: Role,
}

/// A team within an org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// A stable string id.
    pub uid: String,
    /// Its org.
    pub org_id: OrgId,
    /// Its name, unique in the org.
    pub name: String,
    /// A contact email, possibly empty.
    pub email: String,
    /// How many members it has.
    pub member_count: u64,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// A service account token's metadata (the key itself is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: i64,
    /// The org it acts in.
    pub org_id: OrgId,
    /// The service account it belongs to.
    pub service_account_id: UserId,
    /// Its name, unique for the service account.
    pub name: String,
    /// When it stops working, if ever.
    pub expires: Option<OffsetDateTime>,
    /// When it was last used.
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// A session (a login), as the user sees it: never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The row id, used to revoke it.
    pub id: TokenId,
    /// Whose it is.
    pub user_id: UserId,
    /// The browser's user agent at login.
    pub user_agent: String,
    /// The client address at login.
    pub client_ip: String,
    /// When it was created (the login).
    pub created_at: OffsetDateTime,
    /// When it was last used.
    pub seen_at: OffsetDateTime,
    /// When its token was last rotated.
    pub rotated_at: OffsetDateTime,
}

/// One page of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// How many items match in all.
    pub total: u64,
    /// This page's items.
    pub items: Vec<T>,
}

/// Which page of a search to return; pages count from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// The page, from 1.
    pub page: u64,
    /// Items per page, at least 1.
    pub per_page: u64,
}

impl Paging {
    /// Page `page` (from 1) of `per_page` items, clamped to sane bounds.
    pub fn new(page: u64, per_page: u64) -> Paging {
        Paging {
            page: page.max(1),
            per_page: per_page.clamp(1, 5000),
        }
    }

    /// How many items to skip, at most [`tandem_storage::input::MAX_OFFSET`]: a page far
    /// past the end is empty.
    pub fn offset(self) -> u64 {
        tandem_storage::input::offset(self.page, self.per_page)
    }
}
