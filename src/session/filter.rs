//! The seam between the milter conversation and everything else: a [`Filter`] says
//! what it needs from the MTA, turns a finished [`Transaction`] into a [`Decision`],
//! and hears once per message what was answered. The session never decides anything
//! itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::Decision;
use crate::milter::{Needs, SessionSettings};
use crate::transaction::Transaction;

pub trait Filter: Send + Sync + 'static {
    /// What the filter keeps about one decided message, for [`Filter::finish`].
    type Record: Send + 'static;

    fn needs(&self) -> Needs;

    /// Decides one message. Runs in its own task: a panic here becomes a tempfail
    /// for this message, not a lost session.
    fn decide(
        &self,
        transaction: Arc<Transaction>,
    ) -> impl Future<Output = (Decision, Self::Record)> + Send;

    /// Called once per message after the answer went out: the decision the MTA was
    /// actually given (a tempfail when `decide` panicked, timed out or asked for
    /// something not negotiated), the filter's record when `decide` finished, and
    /// the time from end-of-message to the answer.
    fn finish(
        &self,
        transaction: &Transaction,
        decision: &Decision,
        record: Option<Self::Record>,
        took: Duration,
    );
}

/// What a session runs with: its settings and the filter. Swapped as a whole on
/// reload; a session picks up the current one at the start of each message.
pub struct Service<F> {
    pub settings: SessionSettings,
    pub filter: F,
}
