//! Test support: the conformance suite of [`crate::DataSourceStore`] and a private
//! Prometheus over known data ([`prometheus::TestPrometheus`]).
//!
//! This module reads environment variables and prints skips on purpose; library code
//! proper never does.
// Test code states its expectations with panics; that is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    clippy::print_stderr
)]

pub mod conformance;
pub mod prometheus;
