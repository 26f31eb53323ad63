//! Stage: antivirus. Removes copies of our antivirus headers (nobody may present a
//! message as scanned in our name), sends the message to clamd (whole, or each
//! decoded part), and turns the outcome into the configured action: clean, infected,
//! oversize or error each map to an explicit verdict or tag. A message DMARC already
//! refuses is scanned only when rules could use the result.

use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::state::State;
use crate::config::{AntivirusConfig, Enforcer, OnInfected, OnScanError, ScanMode};
use crate::decision::{Edit, Verdict, delete_headers};
use crate::reply::SmtpReply;
use crate::scan::{Outcome, Scanner, Streams};
use crate::transaction::Transaction;

/// Our antivirus headers; copies already in a message are removed first, so nobody
/// can present a message as scanned in our name.
pub const VIRUS_SCANNED: &str = "X-Virus-Scanned";
pub const VIRUS_STATUS: &str = "X-Virus-Status";

pub(super) struct Antivirus {
    pub config: AntivirusConfig,
    pub scanner: Arc<Scanner>,
    /// Rules are configured: they may use the outcome, so a refused message is
    /// scanned too.
    pub rules_configured: bool,
    /// `server.max_mime_parts`: per-attachment scanning of a message with more is
    /// the oversize case.
    pub max_parts: usize,
}

impl Antivirus {
    pub fn new(config: &AntivirusConfig, rules_configured: bool, max_parts: usize) -> Self {
        Antivirus {
            config: config.clone(),
            scanner: Arc::new(Scanner::new(config)),
            rules_configured,
            max_parts,
        }
    }

    pub async fn run(&self, s: &mut State<'_>) {
        if !s.accepted() && !self.rules_configured {
            return;
        }
        for name in [VIRUS_SCANNED, VIRUS_STATUS] {
            let removal = delete_headers(&s.tx.headers, name, 1);
            s.edits.extend(removal);
        }
        let started = Instant::now();
        let too_many_parts =
            self.config.mode == ScanMode::Attachments && s.mime_parts() > self.max_parts;
        let outcome = scan_message(s.tx, s.message(), self, too_many_parts).await;
        s.timings.clamd = Some(started.elapsed());
        let step = outcome_step(s.tx, &self.config, &self.scanner, &outcome).await;
        s.note(&step.note);
        for e in step.edits {
            match e {
                Edit::Quarantine { .. } => s.enforce(Enforcer::Antivirus, Verdict::Accept, Some(e)),
                other => s.edits.push(other),
            }
        }
        // Kept even under a DMARC refusal: a rule that lifts DMARC's must still
        // meet this one.
        if let Some(v) = step.verdict {
            s.enforce(Enforcer::Antivirus, v, None);
        }
        if matches!(outcome, Outcome::Oversize { .. }) {
            s.oversize
                .push(("antivirus", super::oversize::name(self.config.on_oversize)));
        }
        s.scan = Some(outcome);
    }
}

/// Sends the message to clamd as configured: whole, or each decoded part on its own.
/// A body cut at `server.max_message_size` is oversize: what clamd would see is not
/// the message.
/// `too_many_parts`: per-attachment scanning would take apart more parts than
/// `server.max_mime_parts`, one clamd stream each; that is the oversize case too.
async fn scan_message(
    tx: &Transaction,
    message: &[u8],
    av: &Antivirus,
    too_many_parts: bool,
) -> Outcome {
    let scanner = &av.scanner;
    let size = (message.len() - tx.body.len()) as u64 + tx.body_size;
    if tx.body_truncated() || size > scanner.max_size() as u64 || too_many_parts {
        return Outcome::Oversize { size };
    }
    if av.config.mode == ScanMode::Attachments
        && let Some(parsed) = crate::content::parse(message)
    {
        let scan = crate::content::scan_parts(&parsed);
        let mut parts = scan.parts;
        if scan.whole_too {
            parts.push(("the whole message".to_owned(), message.into()));
        }
        if !parts.is_empty() {
            return scanner.scan(size, Streams::Parts(parts)).await;
        }
    }
    scanner.scan(size, Streams::Whole(message)).await
}

/// What the antivirus outcome does to the message.
struct AvStep {
    /// `Some` ends the pipeline with this verdict.
    verdict: Option<Verdict>,
    edits: Vec<Edit>,
    note: String,
}

async fn outcome_step(
    tx: &Transaction,
    av: &AntivirusConfig,
    scanner: &Scanner,
    outcome: &Outcome,
) -> AvStep {
    let header = |name: &str, value: String| Edit::AddHeader {
        name: name.to_owned(),
        value,
    };
    let scanned_by = || async {
        match scanner.version().await {
            Some(v) => format!("mailwarden ({v})"),
            None => "mailwarden (ClamAV)".to_owned(),
        }
    };
    let reply = |code, status, text| Verdict::Reject(SmtpReply::fixed(code, status, text));
    match outcome {
        Outcome::Clean => AvStep {
            verdict: None,
            edits: if av.header {
                vec![header(VIRUS_SCANNED, scanned_by().await)]
            } else {
                Vec::new()
            },
            note: "clamav=clean".into(),
        },
        Outcome::Infected(found) => {
            let names = found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let note = format!("clamav=infected ({names})");
            let tagged = || vec![header(VIRUS_STATUS, format!("Infected ({names})"))];
            match av.on_infected {
                OnInfected::Reject => AvStep {
                    verdict: Some(reply(
                        554,
                        "5.7.1",
                        format!("mailwarden: message contains a virus: {names}"),
                    )),
                    edits: Vec::new(),
                    note: format!("{note}; rejected"),
                },
                OnInfected::Discard => AvStep {
                    verdict: Some(Verdict::Discard),
                    edits: Vec::new(),
                    note: format!("{note}; discarded"),
                },
                OnInfected::Quarantine => {
                    let mut edits = tagged();
                    edits.push(Edit::Quarantine {
                        reason: format!("virus {names}"),
                    });
                    AvStep {
                        verdict: None,
                        edits,
                        note: format!("{note}; quarantined"),
                    }
                }
                OnInfected::Tag => {
                    let mut edits = tagged();
                    if av.header {
                        edits.push(header(VIRUS_SCANNED, scanned_by().await));
                    }
                    AvStep {
                        verdict: None,
                        edits,
                        note: format!("{note}; tagged"),
                    }
                }
            }
        }
        Outcome::Oversize { size } => {
            let note = format!(
                "clamav=skipped ({size} bytes, over antivirus.max_size {})",
                scanner.max_size()
            );
            let text = format!(
                "mailwarden: message too large to scan for viruses ({size} bytes, limit {})",
                scanner.max_size()
            );
            match super::oversize::verdict(av.on_oversize, &text) {
                Verdict::Accept => AvStep {
                    verdict: None,
                    edits: vec![header(VIRUS_SCANNED, "skipped (size)".into())],
                    note,
                },
                refused => AvStep {
                    note: format!("{note}; {}", super::oversize::name(av.on_oversize)),
                    verdict: Some(refused),
                    edits: Vec::new(),
                },
            }
        }
        Outcome::Error(e) => {
            warn!(
                queue_id = tx.queue_id().as_deref().unwrap_or("-"),
                clamd = %scanner.addr(),
                class = e.class.as_str(),
                action = ?av.on_error,
                "virus scan failed: {}",
                e.detail
            );
            let note = format!("clamav=error ({e})");
            match av.on_error {
                OnScanError::Tempfail => AvStep {
                    verdict: Some(tempfail_reply(
                        451,
                        "4.7.1",
                        "mailwarden: virus scan failed, try again later".into(),
                    )),
                    edits: Vec::new(),
                    note: format!("{note}; tempfailed"),
                },
                OnScanError::Accept => AvStep {
                    verdict: None,
                    edits: vec![header(VIRUS_SCANNED, "error".into())],
                    note: format!("{note}; accepted unscanned"),
                },
                OnScanError::Reject => AvStep {
                    verdict: Some(reply(
                        554,
                        "5.7.1",
                        "mailwarden: the message could not be scanned for viruses".into(),
                    )),
                    edits: Vec::new(),
                    note: format!("{note}; rejected"),
                },
            }
        }
    }
}

fn tempfail_reply(code: u16, status: &str, text: String) -> Verdict {
    Verdict::Tempfail(SmtpReply::fixed(code, status, text))
}
