//! Dashboards, their versions and stars, folders, and search.

pub(crate) mod annotations;
pub(crate) mod dashboards;
pub(crate) mod folders;
pub(crate) mod permissions;
pub(crate) mod search;
pub(crate) mod snapshots;
