//! Test support: the conformance suites of [`crate::AlertStore`] and of the silences and
//! posted alerts of [`crate::notify::store::NotificationStore`], and an SMTP sink.
// A test kit fails by panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod conformance;
pub mod posted;
pub mod silences;
pub mod smtp;
