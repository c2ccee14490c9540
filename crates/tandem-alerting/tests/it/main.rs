//! Integration tests of `tandem-alerting`.
