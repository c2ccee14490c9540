//! Tandem's Live: Grafana's real-time channels over Centrifuge's JSON protocol, shared by
//! every instance of a cluster.
//!
//! A [`Hub`] holds one instance's WebSocket connections. The HTTP layer upgrades a
//! request, calls [`Hub::connect`] with the authenticated [`ClientInfo`], feeds incoming
//! messages to [`Connection::handle_frame`] and writes what [`Outbox::recv`] yields.
//! Channels ([`Channel`]) carry the org first on the wire (`1/grafana/dashboard/uid/x`);
//! who may use them is the hub's rules plus a [`ChannelAuthorizer`] the composition layer
//! implements. Publications travel between instances through an [`Engine`]: in-process
//! ([`engine::local`]), Redis ([`engine::redis`]) or PostgreSQL ([`engine::postgres`]),
//! with history (Centrifuge offsets and epochs) so a client reconnecting to another
//! instance recovers what it missed. [`influx`] turns InfluxDB line protocol into data
//! frames for `stream/*` channels; the producer module runs Grafana's testdata streams once per
//! cluster under a lease (`producer.rs`).
//!
//! This crate knows nothing about HTTP, WebSocket libraries, sessions or dashboards: it
//! receives [`LiveSettings`], a client's identity and a permission trait, and reads no
//! environment or files.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod authorizer;
pub mod channel;
pub mod engine;
mod error;
pub mod frame;
mod hub;
pub mod influx;
mod producer;
pub mod protocol;
mod settings;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use crate::authorizer::{Action, ChannelAuthorizer, ClientInfo, OrgMembers, Role};
pub use crate::channel::{Channel, ChannelError, ChannelKind, OrgId};
pub use crate::engine::Engine;
pub use crate::engine::local::LocalBroker;
pub use crate::error::{Error, Result};
pub use crate::hub::{
    Connection, DashboardAction, Hub, HubOptions, LiveHealth, LiveMetrics, ManagedChannel, Outbox,
    Outgoing, PushSummary,
};
pub use crate::protocol::{CloseFrame, ErrorCode, UnsubscribeCode};
pub use crate::settings::{HaEngine, LiveSettings, MAX_MESSAGE_SIZE};
