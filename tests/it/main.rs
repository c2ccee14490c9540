//! Cross-crate tests with real `tandem-server` processes: cold starts of several instances
//! on one database, SIGKILL and SIGTERM, the command line, alerting and Live across processes,
//! a provisioner stopped with SIGSTOP.

mod alerting;
mod live_ha;
mod notifications;
mod posted_alerts;
mod processes;
mod provisioning;
#[path = "../common/receiver.rs"]
mod receiver;
mod security;
