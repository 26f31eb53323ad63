//! What a filter wants from the MTA, declared before any mail arrives so that option
//! negotiation asks for exactly that: the modification actions its decisions may
//! use, whether it reads headers, and how much of the body.

use super::flags::Actions;

/// How much of the body a filter wants to see. Negotiation and the session handle
/// all three (and their tests drive each); the pipeline asks for the whole body
/// today, since DKIM body hashes and clamd need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub enum BodyNeed {
    /// None: the MTA is asked not to send it at all.
    Nothing,
    /// The first N bytes: the MTA is told to skip the rest once we have them.
    Prefix(usize),
    /// All of it (up to the session's `max_body`); chunks are taken without replies.
    Whole,
}

/// What a filter needs from the MTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Modification actions the filter's decisions may use.
    pub actions: Actions,
    pub headers: bool,
    pub body: BodyNeed,
}
