//! tandem-live's integration tests: several hubs sharing one engine, per engine.

mod common;
mod fanout;
mod history;
mod presence;
mod protocol;
mod restart;
mod streams;
