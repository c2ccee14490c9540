//! Dashboards, their versions and stars, folders, library elements, and search.

pub(crate) mod annotations;
pub(crate) mod dashboards;
pub(crate) mod folders;
pub(crate) mod library_elements;
pub(crate) mod permissions;
pub(crate) mod search;
pub(crate) mod snapshots;
