//! What happens to a message at end-of-message, stage by stage, one file each:
//! direction; inbound authentication (with forged `Authentication-Results`
//! removed); the DMARC decision; antivirus; the policy rules; the rewrites of an
//! accepted message; DKIM signing of outbound mail, last. [`Pipeline::run`] reads as
//! that list. The stages share one [`State`](state::State); the result is the
//! [`Findings`], whose [`Observation`] the log line, the metrics and the anomaly
//! detector read.

mod antivirus;
mod dmarc;
mod inbound;
mod observation;
mod oversize;
mod rewrites;
mod rules;
mod signing;
mod state;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Action;
use crate::config::{Config, OnOversize};
use crate::decision::Decision;
use crate::direction::Direction;
use crate::fleet::Fleet;
use crate::milter::flags::Actions;
use crate::milter::{BodyNeed, Needs};
use crate::observe::alerts::Detector;
use crate::reports::Recorder;
use crate::session::Filter;
use crate::transaction::Transaction;

pub use state::{Findings, Observation};

use antivirus::Antivirus;
use dmarc::DmarcDecision;
use inbound::InboundAuth;
use rewrites::Rewrites;
use rules::Rules;
use signing::Signing;
use state::State;

/// Why a pipeline could not be built from a configuration that parsed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Signing(String),
    #[error("{0}")]
    Cluster(String),
}

pub struct Pipeline {
    inbound: InboundAuth,
    dmarc: DmarcDecision,
    antivirus: Option<Antivirus>,
    rules: Option<Rules>,
    rewrites: Rewrites,
    signing: Signing,
    /// The anomaly detector, when `[alerts]` is configured and the daemon runs.
    detector: Option<Arc<Detector>>,
    /// Where DMARC report rows go, when `[reports]` is configured and the daemon runs.
    recorder: Option<Arc<Recorder>>,
    /// Keep every rule condition's reason (for `mailwarden scan`).
    explain: bool,
    /// Fleet mode's Redis, for `/readyz`.
    fleet: Option<Arc<Fleet>>,
}

impl Pipeline {
    /// Builds the pipeline; fails when the DNS resolver or a signing key cannot be
    /// set up.
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        let inbound = InboundAuth::from_config(config)?;
        let fleet = match &config.cluster {
            Some(c) => Some(Fleet::new(c).map_err(BuildError::Cluster)?),
            None => None,
        };
        let authserv_id = inbound.verifier.authserv_id().to_owned();
        Ok(Pipeline {
            inbound,
            dmarc: DmarcDecision {
                inbound: config.inbound.clone(),
                authserv_id,
            },
            antivirus: config.antivirus.as_ref().map(|av| {
                Antivirus::new(av, !config.rules.is_empty(), config.server.max_mime_parts)
            }),
            rules: Rules::from_config(config, fleet.clone()),
            rewrites: Rewrites {
                trace_header: config.server.trace_header,
            },
            signing: Signing::from_config(config)?,
            detector: None,
            recorder: None,
            explain: false,
            fleet,
        })
    }

    /// The same pipeline, feeding every decided message to `detector`.
    pub fn with_detector(mut self, detector: Option<Arc<Detector>>) -> Self {
        self.detector = detector;
        self
    }

    /// The detector this pipeline feeds, for a reload that keeps `[alerts]`.
    pub fn detector(&self) -> Option<&Arc<Detector>> {
        self.detector.as_ref()
    }

    /// The same pipeline, recording DMARC report rows with `recorder`.
    pub fn with_recorder(mut self, recorder: Option<Arc<Recorder>>) -> Self {
        self.recorder = recorder;
        self
    }

    /// The recorder this pipeline feeds, for a reload that keeps `[reports]`.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.as_ref()
    }

    /// The same pipeline counting rate limits in `running`'s buckets and through
    /// its Redis connection, for a reload that changed neither the limits nor
    /// `[cluster]` (counts carry over; no new connection).
    pub fn with_counters_of(mut self, running: &Pipeline) -> Self {
        if let (Some(new), Some(old)) = (&mut self.rules, &running.rules) {
            new.limiter = old.limiter.clone();
            if new.fleet.is_some() {
                new.fleet = old.fleet.clone();
            }
        }
        if self.fleet.is_some() && running.fleet.is_some() {
            self.fleet = running.fleet.clone();
        }
        self
    }

    /// The same pipeline, keeping the reason for every rule condition.
    pub fn explaining(mut self) -> Self {
        self.explain = true;
        self
    }

    /// What `/readyz` reports: each dependency by name, and whether it answers.
    pub async fn readiness(&self) -> Vec<(String, Result<(), String>)> {
        let mut out = vec![(
            "dns".to_owned(),
            self.inbound.verifier.dns_reachable().await,
        )];
        if let Some(fleet) = &self.fleet {
            out.push(("redis".to_owned(), fleet.ping().await));
        }
        if let Some(av) = &self.antivirus {
            out.push((
                format!("clamd {}", av.scanner.addr()),
                av.scanner.ping().await.map_err(|e| e.to_string()),
            ));
        }
        out
    }

    /// Runs every stage in order and keeps what each found.
    pub async fn run(&self, tx: &Transaction) -> Findings {
        let mut s = State::new(tx, Direction::of(tx, &self.dmarc.inbound));
        // Header fields past the limits were never kept: nothing can judge the
        // message, so it is refused with a reply that says why.
        if tx.headers_dropped > 0 {
            let text = format!(
                "mailwarden: too many or too large header fields ({} over server.max_header_fields or max_header_size)",
                tx.headers_dropped
            );
            s.note(format_args!(
                "{} header fields over the limits",
                tx.headers_dropped
            ));
            s.oversize.push(("headers", "reject"));
            s.verdict = oversize::verdict(OnOversize::Reject, &text);
            return s.finish();
        }
        self.inbound.run(&mut s).await;
        if let Some(tempfail) = self.dmarc.run(&mut s).break_value() {
            return s.findings(tempfail);
        }
        if let Some(av) = &self.antivirus {
            av.run(&mut s).await;
        }
        if let Some(rules) = &self.rules {
            rules.run(&mut s, self.explain).await;
        }
        self.rewrites.run(&mut s);
        if let Some(tempfail) = self.signing.run(&mut s).break_value() {
            return s.findings(tempfail);
        }
        s.finish()
    }

    /// Does any rule have an action like this?
    fn rules_use(&self, kind: impl Fn(&Action) -> bool) -> bool {
        self.rules.as_ref().is_some_and(|r| r.use_action(kind))
    }
}

impl Filter for Pipeline {
    type Record = Observation;

    fn needs(&self) -> Needs {
        let granted = |needed: bool, action: Actions| {
            if needed { action } else { Actions::empty() }
        };
        Needs {
            // Our header and the trace header; deleting forged headers; DMARC's
            // quarantine.
            actions: Actions::ADD_HEADERS
                .union(Actions::CHANGE_HEADERS)
                .union(Actions::QUARANTINE)
                .union(granted(
                    self.rules_use(|a| matches!(a, Action::AddRecipient(_))),
                    Actions::ADD_RCPT,
                ))
                .union(granted(
                    self.rules_use(|a| matches!(a, Action::StripAttachments(_))),
                    Actions::CHANGE_BODY,
                )),
            headers: true,
            body: BodyNeed::Whole,
        }
    }

    async fn decide(&self, tx: Arc<Transaction>) -> (Decision, Observation) {
        let findings = self.run(&tx).await;
        (findings.decision, findings.observation)
    }

    fn finish(
        &self,
        tx: &Transaction,
        decision: &Decision,
        record: Option<Observation>,
        took: Duration,
    ) {
        observation::report(
            tx,
            decision,
            record.as_ref(),
            took,
            self.detector.as_deref(),
        );
        if let (Some(recorder), Some(auth)) = (
            &self.recorder,
            record.as_ref().and_then(|o| o.auth.as_ref()),
        ) {
            recorder.record(tx, decision, auth);
        }
    }
}
