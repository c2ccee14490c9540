//! sea-orm models of the identity tables; private to the sea-orm store, whose public types
//! are the plain ones of `crate::types`.
//!
//! There are no foreign keys in the schema: the relations below exist for joins only, and
//! the store deletes dependent rows itself.

// sea-orm's derive macros generate `pub` items (Entity, Column, ActiveModel); the module
// itself is private, so none of them leaks out of the crate.
#![allow(unreachable_pub)]

pub(crate) mod api_key;
pub(crate) mod login_attempt;
pub(crate) mod org;
pub(crate) mod org_user;
pub(crate) mod preferences;
pub(crate) mod team;
pub(crate) mod team_member;
pub(crate) mod user;
pub(crate) mod user_auth_token;
