//! Tandem's dashboards domain: folders, dashboards, their versions, tags, stars, search and
//! file provisioning, correct when several instances share one database.
//!
//! [`DashboardStore`] is the persistence, one transaction per write; [`SqlDashboardStore`]
//! implements it over `tandem_storage::Database`. A save is a compare-and-swap on the
//! stored version, so of two instances saving the same version at once exactly one wins
//! and the other gets [`Error::VersionMismatch`] (Grafana's 412 `version-mismatch`), and
//! every acknowledged save writes exactly one version row. [`Dashboards`] is what a
//! handler calls: the store plus [`DashboardEvents`], announced once per committed change.
//! [`Provisioner`] loads dashboards from Grafana's provisioning files idempotently (by
//! content checksum), so instances provisioning the same files never flip-flop.
//!
//! This crate knows nothing about HTTP (statuses, JSON bodies, URLs are `tandem-http`'s)
//! nor about users and orgs beyond their ids; it reads no environment variables, and no
//! files except the provisioning paths it is given.

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

mod annotations;
mod error;
mod events;
mod library;
mod permissions;
mod provisioning;
mod service;
mod slug;
mod snapshots;
mod sql;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
mod types;

pub use crate::annotations::{
    Annotation, AnnotationPatch, AnnotationQuery, AnnotationStore, AnnotationTag,
    MAX_ANNOTATION_LIMIT, MAX_ANNOTATION_TAG_LEN, MAX_ANNOTATION_TAGS, MAX_ANNOTATION_TEXT,
    NewAnnotation,
};
pub use crate::error::{Error, Result};
pub use crate::events::{DashboardAction, DashboardEvent, DashboardEvents, NoEvents};
pub use crate::library::{
    Author, DEFAULT_LIBRARY_PER_PAGE, LibraryConnection, LibraryElement, LibraryElementPatch,
    LibraryElementStore, LibraryKind, LibraryPage, LibrarySearch, LibrarySort,
    MAX_LIBRARY_DESCRIPTION_LEN, MAX_LIBRARY_FILTERS, MAX_LIBRARY_NAME_LEN, MAX_LIBRARY_PER_PAGE,
    MAX_LIBRARY_TYPE_LEN, NewLibraryElement,
};
pub use crate::permissions::{
    BasicRole, InheritedItems, Level, MAX_PERMISSION_ITEMS, PermissionItem, PermissionStore,
    Permissions, Principal, Resource, Subject, TeamId,
};
pub use crate::provisioning::{
    DashboardProvider, ProvisionReport, Provisioner, ProvisioningConfig, provider_uid,
};
pub use crate::service::{DashboardSettings, Dashboards};
pub use crate::slug::slugify;
pub use crate::snapshots::{
    MAX_SNAPSHOT_EXPIRES_SECONDS, MAX_SNAPSHOT_KEY_LEN, MAX_SNAPSHOT_LIST, MAX_SNAPSHOT_NAME_LEN,
    NewSnapshot, Snapshot, SnapshotStore, generate_snapshot_key,
};
pub use crate::sql::SqlDashboardStore;
pub use crate::store::{
    DashboardStore, ProvisionDashboard, ProvisionOutcome, ProvisionedDashboard, SourceCheck,
};
pub use crate::types::{
    CreateFolder, DEFAULT_SEARCH_LIMIT, Dashboard, DashboardId, DashboardUid, DashboardVersion,
    DeletedDashboard, DeletedFolder, Folder, FolderId, FolderRef, FolderSummary, FolderUid,
    HitKind, MAX_MESSAGE_LEN, MAX_SEARCH_FILTERS, MAX_SEARCH_LIMIT, MAX_TITLE_LEN, MAX_UID_LEN,
    MoveFolder, OrgId, Provisioning, SaveDashboard, SearchAccess, SearchHit, SearchQuery, TagCount,
    UpdateFolder, UserId, Version, VersionInfo, VersionPage, VersionQuery, generate_uid,
    validate_uid,
};
