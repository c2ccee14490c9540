mod common;
mod prometheus;
mod query;
mod store;
