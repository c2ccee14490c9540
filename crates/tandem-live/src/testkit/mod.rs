//! Test support for this crate's tests and the HTTP layer's: a protocol-level client
//! ([`TestClient`]), a per-engine matrix of hubs sharing one engine ([`TestEnv`],
//! [`engine_tests!`](crate::engine_tests)) and private Redis and PostgreSQL servers that
//! tests may stop and restart ([`PrivateRedis`], [`PrivatePostgres`], kept in
//! `tandem_storage::testkit::servers` beside the private MariaDB).
//!
//! The engine matrix follows `tandem_storage::testkit`'s conventions: Redis tests need
//! `TANDEM_TEST_REDIS_URL`, PostgreSQL tests `TANDEM_TEST_POSTGRES_URL`; unset, a test says
//! it skipped, unless `TANDEM_TEST_REQUIRE_SERVICES=1` makes that a failure.
//!
//! This module reads environment variables and panics on broken test infrastructure on
//! purpose; library code proper never does.
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a broken fixture should fail the test loudly"
)]

mod client;
mod env;

pub use crate::testkit::client::{DEADLINE, TestClient, wait_until};
pub use crate::testkit::env::{EngineKind, TestEnv, run_on};
pub use tandem_storage::testkit::servers::{PrivatePostgres, PrivateRedis};
