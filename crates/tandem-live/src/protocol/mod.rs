//! Centrifuge's bidirectional JSON protocol: commands in, replies and pushes out.

mod codes;
pub(crate) mod command;
pub(crate) mod reply;

pub use crate::protocol::codes::{CloseFrame, ErrorCode, UnsubscribeCode};
