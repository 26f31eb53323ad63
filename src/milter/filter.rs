//! The seam between the protocol and everything else: a [`Filter`] says what it needs
//! from the MTA and turns a finished [`Transaction`] into a [`Decision`]. The milter
//! layer never decides anything itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::flags::Actions;
use crate::decision::Decision;
use crate::transaction::Transaction;

/// How much of the body a filter wants to see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    /// None: the MTA is asked not to send it at all.
    Nothing,
    /// The first N bytes: the MTA is told to skip the rest once we have them.
    Prefix(usize),
    /// All of it (up to the session's `max_body`); chunks are taken without replies.
    Whole,
}

/// What a filter needs from the MTA, declared before any mail arrives so that option
/// negotiation asks for exactly that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// Modification actions the filter's decisions may use.
    pub actions: Actions,
    pub headers: bool,
    pub body: BodyNeed,
}

pub trait Filter: Send + Sync + 'static {
    fn needs(&self) -> Needs;

    /// Decides one message. Runs in its own task: a panic here becomes a tempfail
    /// for this message, not a lost session.
    fn decide(&self, transaction: Arc<Transaction>) -> impl Future<Output = Decision> + Send;
}

/// Limits and time-outs of one milter session. Every wait in a session is bounded by
/// one of these.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// From accepting the connection to the MTA's option negotiation.
    pub negotiate_timeout: Duration,
    /// How long the MTA may stay silent between two commands.
    pub idle_timeout: Duration,
    /// How long one write of our responses may take.
    pub write_timeout: Duration,
    /// The whole end-of-message decision; below Postfix's 300 s content timeout.
    pub eom_timeout: Duration,
    /// How often to tell the MTA we are still working during a long decision.
    pub progress_interval: Duration,
    /// Largest packet accepted from the MTA.
    pub max_packet: usize,
    /// Largest body kept in memory for the filter; the rest is counted, not kept.
    pub max_body: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            negotiate_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(1800),
            write_timeout: Duration::from_secs(10),
            eom_timeout: Duration::from_secs(250),
            progress_interval: Duration::from_secs(10),
            max_packet: super::codec::DEFAULT_MAX_PACKET,
            max_body: 64 * 1024 * 1024,
        }
    }
}

/// What a session runs with: its settings and the filter. Swapped as a whole on
/// reload; a session picks up the current one at the start of each message.
pub struct Service<F> {
    pub settings: SessionSettings,
    pub filter: F,
}
