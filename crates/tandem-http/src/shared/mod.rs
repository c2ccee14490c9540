//! What two or more route modules need, below all of them: route modules import from here
//! and never from each other.

pub(crate) mod access;
pub(crate) mod alerting;
pub(crate) mod content;
pub(crate) mod datasources;
pub(crate) mod identity;
pub(crate) mod live;
pub(crate) mod preferences;
