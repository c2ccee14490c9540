//! Logins and sessions, the current user, the user directory, server administration,
//! orgs, teams and service accounts.

pub(crate) mod admin;
pub(crate) mod login;
pub(crate) mod orgs;
pub(crate) mod preferences;
pub(crate) mod service_accounts;
pub(crate) mod settings;
pub(crate) mod stats;
pub(crate) mod teams;
pub(crate) mod user;
pub(crate) mod users;
