//! Test support: the conformance suite of [`crate::DataSourceStore`].
// Test code states its expectations with panics; that is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod conformance;
