//! Integration tests of `tandem-alerting`: the stores and the dispatcher on every backend.

mod conformance;
mod email;
mod notifications;
mod posted;
mod provision;
mod silences;
mod timing;
