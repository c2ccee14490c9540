//! Tandem's schema migrations, one file per migration.
//!
//! Each file holds one [`MigrationTrait`] implementation, named by its date and sequence.
//! A released file is never edited: a schema change is a new file appended to
//! [`Migrator::migrations`].
//!
//! This crate only describes the schema.
//! Running the migrations under a cluster-wide lock, so that several instances can start
//! at once on an empty database, is `tandem_storage::migrate`'s job.

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

mod ddl;
mod m20261125_000001_ha_core;
mod m20261125_000002_identity;
mod m20261125_000003_dashboards;
mod m20261202_000004_datasources;
mod m20261202_000005_live;
mod m20261202_000008_alerting;
mod m20261202_000009_notifications;
mod m20261202_000010_alerting_holders;
mod m20261202_000011_notification_log_retention;
mod m20261202_000012_preferences_annotations;
mod m20261203_000013_silences;
mod m20261203_000014_permissions;
mod m20261203_000015_snapshots;
mod m20261203_000016_posted_alerts;
mod m20261207_000017_library_elements;
mod m20261207_000018_content_ids;

use sea_orm_migration::{MigrationTrait, MigratorTrait};

pub use sea_orm_migration;

/// The ordered list of Tandem's migrations.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_ha_core::Migration),
            Box::new(m20261125_000002_identity::Migration),
            Box::new(m20261125_000003_dashboards::Migration),
            Box::new(m20261202_000004_datasources::Migration),
            Box::new(m20261202_000005_live::Migration),
            Box::new(m20261202_000008_alerting::Migration),
            Box::new(m20261202_000009_notifications::Migration),
            Box::new(m20261202_000010_alerting_holders::Migration),
            Box::new(m20261202_000011_notification_log_retention::Migration),
            Box::new(m20261202_000012_preferences_annotations::Migration),
            Box::new(m20261203_000013_silences::Migration),
            Box::new(m20261203_000014_permissions::Migration),
            Box::new(m20261203_000015_snapshots::Migration),
            Box::new(m20261203_000016_posted_alerts::Migration),
            Box::new(m20261207_000017_library_elements::Migration),
            Box::new(m20261207_000018_content_ids::Migration),
        ]
    }
}
