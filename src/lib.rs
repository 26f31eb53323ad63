//! mailwarden: a mail-security milter for Postfix. See `ARCHITECTURE.md` in the
//! design notes for the layers; each module's own doc says what it is for.

pub mod admin;
pub mod auth;
pub mod config;
pub mod content;
pub mod daemon;
pub mod decision;
pub mod direction;
pub mod explain;
pub mod milter;
pub mod net;
pub mod observe;
pub mod panic_guard;
pub mod pipeline;
pub mod policy;
pub mod reply;
pub mod scan;
pub mod session;
pub mod shutdown;
pub mod sign;
pub mod systemd;
pub mod tls;
pub mod transaction;
