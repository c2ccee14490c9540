//! Test support: the conformance suites of [`crate::DashboardStore`] and
//! [`crate::LibraryElementStore`].
// A test kit fails by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod conformance;
pub mod library;
