//! Tandem's storage layer: the database connection and the HA primitives every other crate
//! builds on.
//!
//! [`Database`] opens a pool on SQLite, PostgreSQL or MySQL/MariaDB, runs transactions with
//! retries on transient conflicts ([`Database::transaction`]) and applies the schema
//! migrations under a database-level lock ([`Database::migrate`]).
//! On top of it sit the primitives that make several instances behave as one:
//! [`ServerLock`] (a job runs once per cluster per interval), [`Leases`] (exclusive,
//! expiring ownership of a key), [`Membership`] (heartbeat rows and the live-peer view) and
//! [`Cache`] (a shared key-value cache with TTL). Each is a trait with a sea-orm
//! implementation (`Sql*`); the `testkit` feature exports a conformance suite that any
//! other implementation can run.
//!
//! [`input`] is the input policy every crate applies to values from clients; [`secrets`]
//! seals secrets at rest with a key derived from `[security] secret_key`.
//!
//! This crate knows nothing about HTTP and reads no files or environment variables: it
//! receives typed [`DatabaseSettings`].

// No panic on a request path: the input policy (`tandem_storage::input`) and checked
// arithmetic instead. Tests and test kits may panic; that is how they fail.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cache;
mod clock;
mod database;
mod entity;
mod error;
pub mod input;
mod jobs;
mod lease;
mod membership;
mod migrate;
mod query;
pub mod secrets;
mod server_lock;
mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::cache::{Cache, MAX_KEY_LEN, SqlCache};
pub use crate::clock::{db_now_ms, db_now_sql, from_ms, now_ms};
pub use crate::database::{Database, Tx};
pub use crate::error::{Error, Result, TransactionError};
pub use crate::jobs::{ClusterJobs, JobsHandle};
pub use crate::lease::{Lease, Leases, MAX_LEASE_NAME_LEN, SqlLeases};
pub use crate::membership::{Heartbeat, Instance, Membership, Peer, SqlMembership};
pub use crate::migrate::MigrationOptions;
pub use crate::query::first_row;
pub use crate::secrets::{SealError, Sealer, Secret};
pub use crate::server_lock::{ServerLock, ServerLockExt, SqlServerLock};
pub use crate::settings::{Backend, DatabaseSettings, Location, redact_url};

pub use sea_orm;
