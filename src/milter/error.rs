//! Why a milter conversation had to end. Every variant names the command (stage) it
//! happened in, so the one log line a broken session gets tells an admin what broke.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("packet length is zero (a packet carries at least its command byte)")]
    EmptyPacket,
    #[error("packet length {length} exceeds the limit of {limit} bytes")]
    Oversize { length: u32, limit: usize },
    #[error("connection closed after {buffered} bytes of an unfinished packet")]
    TruncatedPacket { buffered: usize },
    #[error("unknown command byte {byte:#04x} ({printable:?})")]
    UnknownCommand { byte: u8, printable: char },
    #[error("{command}: truncated packet, {field} missing or not NUL-terminated")]
    Truncated {
        command: &'static str,
        field: &'static str,
    },
    #[error("{command}: {field} is not valid UTF-8")]
    NotUtf8 {
        command: &'static str,
        field: &'static str,
    },
    #[error("{command}: {reason}")]
    Malformed {
        command: &'static str,
        reason: String,
    },
    #[error("{command} is not allowed {state}")]
    OutOfOrder {
        command: &'static str,
        state: &'static str,
    },
    #[error("option negotiation failed: {0}")]
    Negotiation(String),
}
