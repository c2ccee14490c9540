//! The API's handlers, one module per area.

pub(crate) mod admin;
pub(crate) mod dashboards;
pub(crate) mod dto;
pub(crate) mod folders;
pub(crate) mod login;
pub(crate) mod orgs;
pub(crate) mod search;
pub(crate) mod service_accounts;
pub(crate) mod teams;
pub(crate) mod user;
pub(crate) mod users;
