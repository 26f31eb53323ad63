//! What the stages share while one message goes through them: the transaction, the
//! whole message built once on first use, the direction, the edits and verdict so
//! far, the reason text for the decision line, and what each check found. At the
//! end it becomes the [`Findings`].

use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::Duration;

use crate::auth::AuthReport;
use crate::config::Enforcer;
use crate::decision::{Decision, Edit, Verdict};
use crate::direction::Direction;
use crate::policy::Evaluation;
use crate::scan::Outcome;
use crate::transaction::Transaction;

/// How long the steps that wait on something outside took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// SPF, DKIM, ARC, iprev and DMARC together (DNS bound).
    pub dns: Option<Duration>,
    pub clamd: Option<Duration>,
    pub signing: Option<Duration>,
}

/// Everything the pipeline found out about one message: what the decision line, the
/// metrics and the anomaly detector read, and what `mailwarden scan` explains.
#[derive(Debug)]
pub struct Observation {
    pub direction: Direction,
    pub auth: Option<AuthReport>,
    /// What clamd found, when `[antivirus]` is configured and the message got that far.
    pub scan: Option<Outcome>,
    /// Every rule's verdict, when rules are configured.
    pub policy: Option<Evaluation>,
    /// Verdicts of a check that a rule lifted with `skip`: (rule, check).
    pub skipped: Vec<(String, Enforcer)>,
    /// Checks that could not see the whole message, and the configured action
    /// taken: (`dmarc` or `antivirus`, `tempfail`/`reject`/`accept`).
    pub oversize: Vec<(&'static str, &'static str)>,
    pub timings: Timings,
}

/// The pipeline's answer for one message and what it found on the way.
#[derive(Debug)]
pub struct Findings {
    pub observation: Observation,
    pub decision: Decision,
}

/// What a stage returns: go on to the next, or end the message with this decision
/// (a tempfail the configuration asked for; the edits so far are dropped).
pub(super) type Flow = ControlFlow<Decision>;

pub(super) struct State<'t> {
    pub tx: &'t Transaction,
    whole: OnceLock<Vec<u8>>,
    parts: OnceLock<usize>,
    pub direction: Direction,
    pub edits: Vec<Edit>,
    /// Quarantine edits, applied only if the message is finally accepted, each with
    /// the check that asked for it (`None`: a rule).
    pub held: Vec<(Option<Enforcer>, Edit)>,
    /// What DMARC and the antivirus step ask for on their own; a rule may decide.
    pub verdict: Verdict,
    /// The refusals the checks asked for, in order; `verdict` is the first. A rule
    /// lifts one only by naming its check in `skip`.
    pub refused: Vec<(Enforcer, Verdict)>,
    pub skipped: Vec<(String, Enforcer)>,
    pub oversize: Vec<(&'static str, &'static str)>,
    pub reason: String,
    pub auth: Option<AuthReport>,
    pub scan: Option<Outcome>,
    pub policy: Option<Evaluation>,
    pub timings: Timings,
}

impl<'t> State<'t> {
    pub fn new(tx: &'t Transaction, direction: Direction) -> Self {
        State {
            tx,
            whole: OnceLock::new(),
            parts: OnceLock::new(),
            reason: direction.to_string(),
            direction,
            edits: Vec::new(),
            held: Vec::new(),
            verdict: Verdict::Accept,
            refused: Vec::new(),
            skipped: Vec::new(),
            oversize: Vec::new(),
            auth: None,
            scan: None,
            policy: None,
            timings: Timings::default(),
        }
    }

    /// The whole message, built once for every stage that reads it whole.
    pub fn message(&self) -> &[u8] {
        self.whole.get_or_init(|| self.tx.message()).as_slice()
    }

    /// At most how many MIME parts the message has (see
    /// `content::parts_upper_bound`), counted once for every stage that asks.
    pub fn mime_parts(&self) -> usize {
        *self
            .parts
            .get_or_init(|| crate::content::parts_upper_bound(self.message()))
    }

    /// Adds a part to the reason of the decision line.
    pub fn note(&mut self, text: impl std::fmt::Display) {
        use std::fmt::Write;
        let _ = write!(self.reason, "; {text}");
    }

    pub fn accepted(&self) -> bool {
        self.verdict == Verdict::Accept
    }

    /// A refusal or hold a check asks for on its own.
    pub fn enforce(&mut self, by: Enforcer, verdict: Verdict, hold: Option<Edit>) {
        if verdict != Verdict::Accept {
            if self.refused.is_empty() {
                self.verdict = verdict.clone();
            }
            self.refused.push((by, verdict));
        }
        self.held.extend(hold.map(|h| (Some(by), h)));
    }

    /// The findings, with `decision` as the answer.
    pub fn findings(self, decision: Decision) -> Findings {
        Findings {
            observation: Observation {
                direction: self.direction,
                auth: self.auth,
                scan: self.scan,
                policy: self.policy,
                skipped: self.skipped,
                oversize: self.oversize,
                timings: self.timings,
            },
            decision,
        }
    }

    /// The findings, with the edits and verdict the stages arrived at.
    pub fn finish(mut self) -> Findings {
        let decision = Decision {
            edits: std::mem::take(&mut self.edits),
            verdict: std::mem::replace(&mut self.verdict, Verdict::Accept),
            reason: std::mem::take(&mut self.reason),
        };
        self.findings(decision)
    }
}
