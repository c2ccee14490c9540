//! Integration tests of `tandem-storage`, run on every configured backend.

mod database;
mod migrations;
mod primitives;
mod query;
