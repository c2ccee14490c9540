//! Grafana Live: the WebSocket at `/api/live/ws` (Centrifuge's JSON protocol, served by
//! `tandem-live`'s hub), `POST /api/live/publish`, line-protocol pushes and the channel
//! list. Every route is behind authentication, as in Grafana.

mod http;
mod socket;

use crate::routing::Routes;

/// The routes of this area.
pub(crate) fn routes() -> Routes {
    socket::routes().merge(http::routes())
}
