//! sea-orm models of the dashboard tables; private to the sea-orm store, whose public types
//! are the plain ones of `crate::types`.
//!
//! There are no foreign keys in the schema: the store deletes dependent rows itself, in the
//! same transaction as their dashboard.

// sea-orm's derive macros generate `pub` items (Entity, Column, ActiveModel); the module
// itself is private, so none of them leaks out of the crate.
#![allow(unreachable_pub)]

pub(crate) mod annotation;
pub(crate) mod annotation_tag;
pub(crate) mod content_permission;
pub(crate) mod dashboard;
pub(crate) mod dashboard_provisioning;
pub(crate) mod dashboard_snapshot;
pub(crate) mod dashboard_tag;
pub(crate) mod dashboard_version;
pub(crate) mod folder;
pub(crate) mod library_element;
pub(crate) mod library_element_connection;
pub(crate) mod star;
