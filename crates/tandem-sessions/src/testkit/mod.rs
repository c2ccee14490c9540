//! Test support: the conformance suite of [`crate::SessionStore`].
pub mod conformance;
