//! Tandem's identity domain: orgs, users, roles, teams, service accounts and their keys,
//! and sessions that work on every instance of a cluster.
//!
//! A user logs in once and any instance serves them, because sessions live hashed in the
//! shared database ([`SessionStore`]). [`Identity`] holds the rules on top: password
//! hashing in Grafana's format, brute-force protection counted in the database, session
//! rotation as a compare-and-swap (two instances rotating the same token at once never log
//! the user out), revocation seen by every instance on the next request, and
//! service-account keys.
//!
//! This crate knows nothing about HTTP: cookies, headers and status codes are
//! `tandem-http`'s. Its settings arrive typed ([`SessionSettings`]).

// No panic on a request path: the input policy (`tandem_storage::input`) and checked
// arithmetic instead. Tests and test kits may panic; that is how they fail.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod crypto;
mod error;
mod identity;
mod preferences;
mod sql;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod types;

pub use crate::crypto::{
    constant_time_eq, hash_password, hash_session_token, new_salt, new_service_account_key,
    new_session_token, service_account_key_hash, verify_password,
};
pub use crate::error::{Error, Result};
pub use crate::identity::{
    CreateUser, Identity, MAX_KEY_SECONDS_TO_LIVE, NewSession, SessionAuth, SessionSettings,
};
pub use crate::preferences::{
    MAX_LANGUAGE_LEN, MAX_TIMEZONE_LEN, MAX_WEEK_START_LEN, PreferenceOwner, PreferenceStore,
    Preferences, PreferencesPatch, THEMES,
};
pub use crate::sql::SqlSessionStore;
pub use crate::sql::preferences::SqlPreferenceStore;
pub use crate::store::{NewUser, SessionStore, StoredSession, UserFilter, UserUpdate};
pub use crate::types::{
    ApiKey, Org, OrgId, OrgUser, Page, Paging, Role, Session, Team, TeamId, TokenId, User, UserId,
};
