//! sea-orm models of the HA tables; private to the crate, whose public types are plain.

// sea-orm's derive macros generate `pub` items (Entity, Column, ActiveModel); the module
// itself is private, so none of them leaks out of the crate.
#![allow(unreachable_pub)]

pub(crate) mod cache_data;
pub(crate) mod cluster_member;
pub(crate) mod lease;
pub(crate) mod server_lock;
