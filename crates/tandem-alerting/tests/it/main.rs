//! Integration tests of `tandem-alerting`: the store's conformance suite on every backend.

mod conformance;
mod email;
mod notifications;
mod timing;
