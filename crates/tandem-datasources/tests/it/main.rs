mod common;
mod prometheus;
mod provisioning;
mod query;
mod store;
