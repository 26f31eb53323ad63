//! DMARC reports: the rows the daemon records for every evaluated message
//! ([`Recorder`]), the SQLite store they are kept in, RFC 9990 aggregate and
//! RFC 9991 failure reports built from them, and their delivery
//! (`mailwarden reports send` / `list`).

mod aggregate;
mod failure;
mod mail;
mod recorder;
mod row;
mod send;
mod store;

#[cfg(test)]
mod tests;

pub use recorder::Recorder;
pub use send::{Options as SendOptions, Summary as SendSummary, list, run as send};
