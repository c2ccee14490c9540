//! Notifications: contact points, the policy tree, mute timings and templates, and the
//! dispatcher that sends each alert group's notifications once per cluster.
//!
//! Every flush of a group is planned by a compare-and-swap on the group's row in the shared
//! database, which in the same transaction inserts one claimed row per integration into the
//! notification log (the outbox). The claimer sends while its lease holds (checked, fenced,
//! just before each attempt) and records the outcome after the send; a claim whose lease
//! expired unsent is taken over by another instance.

pub mod contact;
mod dispatch;
pub mod email;
mod payload;
mod plan;
pub mod policy;
pub mod posted;
pub mod provision;
pub mod silence;
pub mod store;
mod text;
pub mod timing;

pub use crate::notify::dispatch::{Dispatcher, DispatcherDeps, NotifySettings, send_test};
pub use crate::notify::email::{SmtpSettings, StartTlsPolicy};
pub use crate::notify::payload::{Notification, NotifiedAlert, webhook_body};
