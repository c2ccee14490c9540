//! Cross-crate tests with real `tandem-server` processes: cold starts of several instances
//! on one database, SIGKILL and SIGTERM, and the command line.

mod alerting;
mod notifications;
mod processes;
mod security;
