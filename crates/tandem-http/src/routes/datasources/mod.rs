//! Data sources (`/api/datasources…`) and queries (`/api/ds/query`), Grafana 12.1's shapes.
//!
//! Grafana 12's basic roles: org Admins read and manage data sources; every member of the
//! org may query one, check its health and look its id up by name
//! (`datasources:query`, `datasources.id:read`).

mod query;
mod registry;

use crate::routing::Routes;

/// The routes of this area; every one is behind authentication.
pub(crate) fn routes() -> Routes {
    registry::routes().merge(query::routes())
}
