//! Test support: the conformance suite of [`crate::DashboardStore`].
pub mod conformance;
