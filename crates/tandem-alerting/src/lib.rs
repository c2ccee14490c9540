//! Tandem's alerting: Grafana's alert rules, evaluated on every instance (`all`, Grafana's
//! semantics) or shared out over the live instances (`sharded`), with alert state in the
//! shared database so that no restart, crash or move loses it.
//!
//! - [`AlertStore`] is the persistence of rules (a compare-and-swap on the version, one
//!   version row per change), alert instances, rule statuses and shard leases;
//!   [`SqlAlertStore`] implements it over `tandem_storage::Database`.
//! - [`AlertRules`] is what the HTTP layer calls: validation with Grafana's messages, the
//!   folder and data source checks (through [`FolderLookup`] and the data source store),
//!   provenance, and the reads of the Prometheus-style API.
//! - [`Scheduler`] evaluates the rules every group interval, spread inside the interval,
//!   through `tandem_datasources::QueryService`, runs Grafana's state machine
//!   ([`state`]) and writes alert instances when they change (plus a bounded refresh).
//!   In `sharded` mode each rule's shard is held by one live instance under that
//!   instance's lease, whose watermark claims the evaluation slots before they are evaluated.
//! - [`AlertProvisioner`] applies Grafana's `provisioning/alerting/*.yaml` rule groups
//!   idempotently across instances.
//!
//! - [`notify`] is notifications: contact points, the policy tree, templates, and the
//!   [`Dispatcher`], which reads firing and resolved instances with
//!   [`AlertStore::list_instances`], groups them, and sends each group's notifications
//!   once per cluster through claims in [`SqlNotificationStore`].
//!
//! This crate knows nothing about HTTP (statuses and JSON shapes are `tandem-http`'s), does
//! not depend on the dashboards domain (folders come through [`FolderLookup`]), and reads
//! no environment variables, and no files but the provisioning paths it is given.

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

mod duration;
mod error;
pub mod eval;
mod history;
mod matcher;
mod metrics;
pub mod notify;
mod provisioning;
mod scheduler;
mod service;
mod sql;
pub mod state;
mod store;
mod template;
#[cfg(feature = "testkit")]
pub mod testkit;
mod types;
mod validate;

pub use crate::duration::{format_duration, go_duration, parse_duration};
pub use crate::error::{Error, Result};
pub use crate::matcher::Matcher;
pub use crate::metrics::AlertingMetrics;
pub use crate::notify::{Dispatcher, DispatcherDeps, NotifySettings, SmtpSettings, StartTlsPolicy};
pub use crate::provisioning::{
    AlertProvisioner, AlertProvisioning, AlertProvisioningReport, ProvisionedGroup,
};
pub use crate::scheduler::{Evaluated, Scheduler, SchedulerDeps, latest_slot};
pub use crate::service::{AlertRules, AlertingSettings, EvaluationMode, Folder, FolderLookup};
pub use crate::sql::SqlAlertStore;
pub use crate::sql::notify::SqlNotificationStore;
pub use crate::store::{
    AlertStore, GroupChanges, GroupRule, GroupWriter, HolderLease, InstanceWrite, NewRule,
    ReplaceGroup, RuleFilter, RulesFingerprint, ShardClaim, StateHistory, UpdateRule,
};
pub use crate::template::{TemplateData, expand};
pub use crate::types::{
    AlertInstance, AlertQuery, AlertRule, ExecErrState, FolderUid, InstanceState, Labels,
    MAX_DURATION_MS, MAX_GROUP_RULES, MAX_ITEMS, MAX_LABEL_NAME_LEN, MAX_LABEL_VALUE_LEN,
    MAX_MODEL_BYTES, MAX_TITLE_LEN, MAX_UID_LEN, NoDataState, OrgId, Provenance, RelativeTimeRange,
    RuleSpec, RuleStatus, RuleUid, RuleVersion, fingerprint, generate_uid, validate_uid,
};
pub use crate::validate::{validate_group_name, validate_interval, validate_spec};
