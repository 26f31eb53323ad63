//! The milter protocol (version 6, as Postfix and Sendmail speak it), our own
//! implementation: wire codec, commands and responses, framing over a stream, option
//! negotiation, and the MTA-side client the tests and the load tool drive us with.
//! It knows nothing of messages, SPF, DKIM or policy; the conversation that builds a
//! transaction from these commands is `session`'s.

pub mod client;
pub mod codec;
pub mod command;
pub mod error;
pub mod flags;
pub mod framed;
pub mod needs;
pub mod negotiate;
pub mod response;
pub mod settings;

pub use needs::{BodyNeed, Needs};
pub use settings::SessionSettings;
