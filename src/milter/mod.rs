//! The milter protocol (version 6, as Postfix and Sendmail speak it), our own
//! implementation: wire codec, option negotiation, the per-connection state machine,
//! listeners and the accept loop. It hands finished transactions to a [`Filter`] and
//! turns its decisions into responses; it knows nothing of SPF, DKIM or policy.

pub mod client;
pub mod codec;
pub mod command;
pub mod connection;
pub mod error;
pub mod filter;
pub mod flags;
pub mod framed;
pub mod listener;
pub(crate) mod macros;
pub mod negotiate;
pub mod respond;
pub mod response;
pub mod server;
pub(crate) mod session;
pub mod stream;

#[cfg(test)]
mod fuzz_tests;

pub use filter::{BodyNeed, Filter, Needs, Service, SessionSettings};
pub use listener::ListenAddr;
pub use server::Server;
