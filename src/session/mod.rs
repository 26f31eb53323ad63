//! The milter conversation with the MTA, one per connection: the state machine that
//! collects a [`Transaction`](crate::transaction::Transaction) from decoded commands,
//! the driver that reads and writes under time-outs and calls the [`Filter`] at
//! end-of-message, the translation of its decision into responses, and the accept
//! loops. It knows what a message is, never what is checked in it.

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod drive;
pub mod driver;
pub mod filter;
pub(crate) mod machine;
pub(crate) mod macros;
pub mod respond;
pub mod server;

#[cfg(test)]
mod fuzz_tests;

pub use filter::{Filter, Service};
pub use server::Server;
