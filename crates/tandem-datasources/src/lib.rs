//! Tandem's data sources: the registry every instance shares, the query clients, and
//! Grafana's server-side expressions.
//!
//! - [`DataSourceStore`] is the persistence, one transaction per write;
//!   [`SqlDataSourceStore`] implements it over `tandem_storage::Database`, sealing secrets
//!   with a key derived from `[security] secret_key`. Updates are a compare-and-swap on the
//!   version, so of two instances editing one data source exactly one wins and the other
//!   gets [`Error::VersionMismatch`]; at most one data source per org is the default.
//! - [`DataSourceService`] implements [`QueryService`]: a request of queries
//!   (`prometheus`, `grafana-testdata-datasource`) and `__expr__` expressions
//!   ([`Pipeline`]) answers one [`QueryResult`] of [`Frame`]s per refId, a failing query
//!   failing alone. Clients are built from the row and cached by uid and version, so an
//!   edit on any instance is used by the next query on every instance. It also runs
//!   health checks.
//! - [`DataSourceProvisioner`] applies Grafana's provisioning files
//!   ([`DataSourceProvisioning`]) idempotently across instances.
//!
//! This crate knows nothing about HTTP routes and statuses (those are `tandem-http`'s; the
//! only statuses here are the ones Grafana writes inside query results) and reads no
//! environment variables, and no files except the provisioning paths it is given.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod error;
mod expr;
mod frame;
mod prometheus;
mod provisioning;
mod query;
mod service;
mod sql;
mod store;
mod testdata;
#[cfg(feature = "testkit")]
pub mod testkit;
mod time;
mod types;

pub use crate::error::{Error, Result};
pub use crate::expr::{Number, Pipeline, Series, Value};
pub use crate::frame::{Field, FieldConfig, Frame, FrameMeta, Labels, Values};
pub use crate::prometheus::HttpSettings;
pub use crate::provisioning::{DataSourceProvisioner, DataSourceProvisioning, ProvisioningReport};
pub use crate::query::{
    DEFAULT_INTERVAL_MS, DEFAULT_MAX_DATA_POINTS, DataSourceRef, EXPRESSION_UID, MAX_QUERIES,
    MAX_REF_ID_LEN, Query, QueryError, QueryRequest, QueryResponse, QueryResult, QueryService,
};
pub use crate::service::{DataSourceService, DataSourceSettings, HealthCheck, HealthStatus};
pub use crate::sql::{SEALER_PURPOSE, SqlDataSourceStore};
pub use crate::store::{DataSourceStore, ProvisionDataSource, ProvisionOutcome};
pub use crate::time::{TimeRange, format_interval, parse_duration_ms, parse_time, round_interval};
pub use crate::types::{
    DataSource, DataSourceId, DataSourceKey, DataSourceSpec, DataSourceType, DataSourceUid,
    MAX_JSON_DATA_BYTES, MAX_NAME_LEN, MAX_SECRET_LEN, MAX_SECRET_NAME_LEN, MAX_SECRETS,
    MAX_SHORT_TEXT_LEN, MAX_UID_LEN, MAX_URL_LEN, NewDataSource, OrgId, SecureJsonData,
    UpdateDataSource, ValidSpec, Version, validate_uid, validate_url,
};
