//! The API's handlers, grouped by domain as the URLs are: each module is a leaf that
//! declares its routes (`routes()`) and imports only from the modules below the routes.

pub(crate) mod alerting;
pub(crate) mod content;
pub(crate) mod datasources;
pub(crate) mod identity;
pub(crate) mod live;
pub(crate) mod web;
