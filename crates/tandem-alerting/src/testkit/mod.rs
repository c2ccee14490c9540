//! Test support: the conformance suite of [`crate::AlertStore`].
// A test kit fails by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod conformance;
pub mod smtp;
