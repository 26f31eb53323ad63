//! What happens to a message at end-of-message, in order: decide its direction;
//! remove forged `Authentication-Results`; for inbound mail verify SPF, DKIM, ARC,
//! iprev and DMARC, add our header and apply DMARC's policy; add the trace header;
//! scan the message with clamd (both directions) and apply the antivirus actions;
//! last, sign outbound mail over the headers as they will leave. Policy rules plug
//! in before signing.

use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use crate::auth::{self, AuthReport, AuthResult, Envelope, Policy, Verifier};
use crate::config::{
    AntivirusConfig, Config, InboundConfig, OnDnsError, OnInfected, OnOversize, OnScanError,
    OnSignError, ScanMode,
};
use crate::decision::{Decision, Edit, Verdict, delete_headers, edited_headers};
use crate::direction::Direction;
use crate::milter::flags::Actions;
use crate::milter::{BodyNeed, Filter, Needs};
use crate::observe::metrics::{AuthLabels, ClassLabels, MessageLabels, RuleLabels, metrics};
use crate::policy::{self, Action, Evaluation, Facts, Limiter, RateLimit, Rule};
use crate::reply::SmtpReply;
use crate::scan::{Outcome, Scanner, Streams};
use crate::sign::{self, Signed, Signer};
use crate::transaction::{Transaction, header_block};

pub const TRACE_HEADER: &str = "X-Mailwarden";
/// Our antivirus headers; copies already in a message are removed first, so nobody
/// can present a message as scanned in our name.
pub const VIRUS_SCANNED: &str = "X-Virus-Scanned";
pub const VIRUS_STATUS: &str = "X-Virus-Status";

pub struct Pipeline {
    trace_header: bool,
    inbound: InboundConfig,
    verifier: Arc<Verifier>,
    signer: Arc<Signer>,
    on_sign_error: OnSignError,
    antivirus: Option<(AntivirusConfig, Arc<Scanner>)>,
    rules: Vec<Rule>,
    rate_limits: Vec<RateLimit>,
    limiter: Limiter,
    rules_need_content: bool,
    policy_monitor: bool,
    /// Keep every rule condition's reason (for `mailwarden scan`).
    explain: bool,
}

/// Everything the pipeline found out about one message, for the decision and for
/// `mailwarden scan` to explain.
pub struct Findings {
    pub direction: Direction,
    pub auth: Option<AuthReport>,
    /// What clamd found, when `[antivirus]` is configured and the message got that far.
    pub scan: Option<Outcome>,
    /// Every rule's verdict, when rules are configured.
    pub policy: Option<Evaluation>,
    pub decision: Decision,
}

impl Pipeline {
    /// Builds the pipeline; fails when the DNS resolver cannot be set up.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(Pipeline {
            trace_header: config.server.trace_header,
            inbound: config.inbound.clone(),
            verifier: Arc::new(Verifier::new(&config.dns, &config.inbound)?),
            signer: Arc::new(Signer::from_config(&config.signing)?),
            on_sign_error: config.signing.on_error,
            antivirus: config
                .antivirus
                .as_ref()
                .map(|av| (av.clone(), Arc::new(Scanner::new(av)))),
            rules: config.rules.clone(),
            rate_limits: config.rate_limits.clone(),
            limiter: Limiter::default(),
            rules_need_content: config.rules.iter().any(|r| r.when.needs_content()),
            policy_monitor: config.policy_monitor,
            explain: false,
        })
    }

    /// What `/readyz` reports: each dependency by name, and whether it answers.
    pub async fn readiness(&self) -> Vec<(String, Result<(), String>)> {
        let mut out = vec![("dns".to_owned(), self.verifier.dns_reachable().await)];
        if let Some((_, scanner)) = &self.antivirus {
            out.push((
                format!("clamd {}", scanner.addr()),
                scanner.ping().await.map_err(|e| e.to_string()),
            ));
        }
        out
    }

    /// The same pipeline, keeping the reason for every rule condition.
    pub fn explaining(mut self) -> Self {
        self.explain = true;
        self
    }

    /// Runs every step and keeps what each found.
    pub async fn examine(&self, tx: &Transaction) -> Findings {
        let direction = Direction::of(tx, &self.inbound);
        let mut edits = auth::remove_forged(tx, self.verifier.authserv_id());
        let mut auth = None;
        // What DMARC and the antivirus step ask for on their own; rules may override.
        let mut verdict = Verdict::Accept;
        let mut held = Vec::new();
        let mut reason = direction.to_string();
        // The whole message, built once for every step that reads it whole.
        let whole = std::sync::OnceLock::new();
        let message = || whole.get_or_init(|| tx.message()).as_slice();
        if let Direction::Inbound(ip) = direction {
            let envelope = Envelope {
                ip,
                helo: tx.client.helo.as_deref().unwrap_or(&tx.client.hostname),
                mail_from: tx.sender.address(),
                message: message(),
                from_headers: tx.header_values("From").count(),
                body_len: tx.body_size,
                body_complete: !tx.body_truncated(),
            };
            let started = Instant::now();
            let report = self.verifier.verify(&envelope).await;
            metrics().observe("dns", started.elapsed());
            reason = format!("{reason}: {}", report.summary());
            match self.dmarc_action(&report, tx.body_truncated()) {
                Ok((v, quarantine)) => {
                    edits.push(Edit::InsertHeader {
                        index: 0,
                        name: auth::HEADER.to_owned(),
                        value: report.header_value(self.verifier.authserv_id()),
                    });
                    held.extend(quarantine);
                    if let Some(why) = dmarc_note(&report) {
                        reason = format!("{reason}; {why}");
                    }
                    if tx.body_truncated() && report.dmarc.result == AuthResult::Fail {
                        reason.push_str(
                            "; DMARC not enforced: body longer than server.max_message_size",
                        );
                    }
                    verdict = v;
                }
                Err(dns) => {
                    auth = Some(report);
                    return Findings {
                        direction,
                        auth,
                        scan: None,
                        policy: None,
                        decision: Decision::tempfail(format!("DNS failure: {dns}")),
                    };
                }
            }
            auth = Some(report);
        }
        let mut scan = None;
        // A message DMARC already refuses is scanned only when rules could use the
        // result (and could overturn the refusal).
        if let Some((av, scanner)) = &self.antivirus
            && (verdict == Verdict::Accept || !self.rules.is_empty())
        {
            for name in [VIRUS_SCANNED, VIRUS_STATUS] {
                edits.extend(delete_headers(&tx.headers, name, 1));
            }
            let started = Instant::now();
            let outcome = scan_message(tx, message(), av, scanner).await;
            metrics().observe("clamd", started.elapsed());
            let step = antivirus_step(tx, av, scanner, &outcome).await;
            reason = format!("{reason}; {}", step.note);
            for e in step.edits {
                match e {
                    Edit::Quarantine { .. } => held.push(e),
                    other => edits.push(other),
                }
            }
            if verdict == Verdict::Accept
                && let Some(v) = step.verdict
            {
                verdict = v;
            }
            scan = Some(outcome);
        }
        let mut policy = None;
        if !self.rules.is_empty() {
            let facts = Facts::gather(
                tx,
                &direction,
                auth.as_ref(),
                scan.as_ref(),
                self.rules_need_content.then(message),
            );
            let rates = policy::Rates {
                limits: &self.rate_limits,
                limiter: &self.limiter,
                now: std::time::Instant::now(),
            };
            let evaluation = policy::evaluate(
                &self.rules,
                &facts,
                self.policy_monitor,
                &rates,
                self.explain,
            );
            if let Some((action, rule)) = &evaluation.decision {
                reason = format!("{reason}; rule {rule} decided: {}", action.describe());
                held.clear();
                verdict = match action {
                    Action::Reject(r) => Verdict::Reject(r.clone()),
                    Action::Tempfail(r) => Verdict::Tempfail(r.clone()),
                    Action::Discard => Verdict::Discard,
                    Action::Quarantine(why) => {
                        held.push(Edit::Quarantine {
                            reason: format!("{why} (rule {rule})"),
                        });
                        Verdict::Accept
                    }
                    _ => Verdict::Accept,
                };
            }
            for (action, rule) in &evaluation.changes {
                reason = format!("{reason}; rule {rule}: {}", action.describe());
            }
            if evaluation.decision.is_none() {
                let matched = evaluation.matched();
                reason = if matched.is_empty() {
                    format!("{reason}; no rule matched")
                } else {
                    format!(
                        "{reason}; rules matched, none decided: {}",
                        matched.join(", ")
                    )
                };
            }
            for would in &evaluation.monitored {
                reason = format!("{reason}; monitor {would}");
            }
            if verdict == Verdict::Accept {
                edits.extend(policy::edits_for(&evaluation.changes, &tx.headers));
                if let Some((edit, note)) = strip_attachments(tx, &evaluation, message) {
                    edits.extend(edit);
                    reason = format!("{reason}; {note}");
                }
            }
            policy = Some(evaluation);
        }
        if verdict == Verdict::Accept {
            edits.append(&mut held);
        }
        if verdict == Verdict::Accept && self.trace_header {
            let queue_id = tx.queue_id().unwrap_or_else(|| "unknown".to_owned());
            edits.push(Edit::AddHeader {
                name: TRACE_HEADER.to_owned(),
                value: format!("{} {}", env!("CARGO_PKG_VERSION"), sanitize(&queue_id)),
            });
        }
        // Signing is last, so the signature covers every edit above.
        if matches!(direction, Direction::Outbound(_))
            && verdict == Verdict::Accept
            && !self.signer.is_empty()
        {
            let started = Instant::now();
            let signed = self.sign(tx, &edits);
            metrics().observe("signing", started.elapsed());
            match signed {
                Ok((signatures, note)) => {
                    edits.extend(signatures);
                    reason = format!("{reason}; {note}");
                }
                Err(why) if self.on_sign_error == OnSignError::Tempfail => {
                    return Findings {
                        direction,
                        auth,
                        scan,
                        policy,
                        decision: Decision::tempfail(format!("cannot sign: {why}")),
                    };
                }
                Err(why) => {
                    warn!(
                        queue_id = tx.queue_id().as_deref().unwrap_or("-"),
                        "not signed: {why}"
                    );
                    reason = format!("{reason}; not signed: {why}");
                }
            }
        }
        Findings {
            direction,
            auth,
            scan,
            policy,
            decision: Decision {
                edits,
                verdict,
                reason,
                audit: Default::default(),
            },
        }
    }

    /// The verdict DMARC asks for, plus a quarantine edit; `Err` with the failure
    /// when DNS trouble left the result open and `on_dns_error` says tempfail. A
    /// message whose body was cut at `server.max_message_size` could not have its
    /// DKIM body hashes checked, so DMARC is reported but not enforced for it.
    fn dmarc_action(
        &self,
        report: &AuthReport,
        body_truncated: bool,
    ) -> Result<(Verdict, Option<Edit>), String> {
        if let Some(failure) = report.dns_failure()
            && self.inbound.on_dns_error == OnDnsError::Tempfail
        {
            return Err(failure);
        }
        let Some(disposition) = report
            .disposition
            .as_ref()
            .filter(|_| self.inbound.dmarc_enforce && !body_truncated)
        else {
            return Ok((Verdict::Accept, None));
        };
        let domain = report.dmarc.get("header.from").unwrap_or("the From domain");
        match disposition.applied {
            Policy::Reject => {
                let reply = SmtpReply::new(
                    550,
                    "5.7.1",
                    &[format!(
                        "mailwarden: DMARC policy of {domain} rejects this message: {}",
                        report
                            .dmarc
                            .reason
                            .as_deref()
                            .unwrap_or("authentication failed")
                    )],
                )
                .map_err(|e| e.to_string())?;
                Ok((Verdict::Reject(reply), None))
            }
            Policy::Quarantine => Ok((
                Verdict::Accept,
                Some(Edit::Quarantine {
                    reason: format!(
                        "DMARC policy of {domain} is quarantine and the message failed"
                    ),
                }),
            )),
            Policy::None => Ok((Verdict::Accept, None)),
        }
    }
}

impl Pipeline {
    /// Does any rule have an action like this?
    fn rules_use(&self, kind: impl Fn(&Action) -> bool) -> bool {
        self.rules.iter().any(|r| r.then.iter().any(&kind))
    }

    /// The `DKIM-Signature` insertions for an outbound message, and a note for the
    /// log; `Err` when it cannot be signed.
    fn sign(&self, tx: &Transaction, edits: &[Edit]) -> Result<(Vec<Edit>, String), String> {
        if tx.body_truncated() {
            return Err("body longer than server.max_message_size".into());
        }
        let headers = edited_headers(&tx.headers, edits, tx.headers_exact);
        let mut message = header_block(&headers, tx.headers_exact);
        // From is read from the header block alone: parsing the whole message would
        // also hash the body for every DKIM-Signature already present.
        let from = mail_auth::AuthenticatedMessage::parse(&message)
            .map(|m| m.from)
            .unwrap_or_default();
        // A body the rules rebuilt is what leaves, so it is what is signed.
        let body = edits
            .iter()
            .rev()
            .find_map(|e| match e {
                Edit::ReplaceBody(b) => Some(b),
                _ => None,
            })
            .unwrap_or(&tx.body);
        message.reserve_exact(body.len());
        message.extend_from_slice(body);
        warn_fragile_body(tx);
        match self.signer.sign(&message, &from) {
            Signed::Headers(values, labels) => Ok((
                values
                    .into_iter()
                    .map(|value| Edit::InsertHeader {
                        index: 0,
                        name: sign::HEADER.to_owned(),
                        value,
                    })
                    .collect(),
                format!("signed by {}", labels.join(", ")),
            )),
            Signed::NoKey(domain) => Ok((Vec::new(), format!("no signing key for {domain}"))),
            Signed::Unsignable(why) => Err(why),
        }
    }
}

/// The rebuilt body for the rules' `strip_attachments` actions, and a note; `None`
/// when no such action applies.
fn strip_attachments<'m>(
    tx: &Transaction,
    evaluation: &Evaluation,
    message: impl FnOnce() -> &'m [u8],
) -> Option<(Option<Edit>, String)> {
    let specs: Vec<(&policy::StripSpec, &str)> = evaluation
        .changes
        .iter()
        .filter_map(|(a, rule)| match a {
            Action::StripAttachments(spec) => Some((spec, rule.as_str())),
            _ => None,
        })
        .collect();
    if specs.is_empty() {
        return None;
    }
    if tx.body_truncated() {
        warn!(
            queue_id = tx.queue_id().as_deref().unwrap_or("-"),
            "attachments not stripped: the body is longer than server.max_message_size"
        );
        return Some((
            None,
            "attachments not stripped: body longer than server.max_message_size".into(),
        ));
    }
    let raw = message();
    let header_len = raw.len() - tx.body.len();
    let message = crate::content::parse(raw)?;
    let rules: Vec<&str> = specs.iter().map(|(_, r)| *r).collect();
    let stripped = crate::content::strip::strip(
        &message,
        raw,
        header_len,
        |c| {
            let types: Vec<&str> = [Some(c.declared.as_str()), c.detected]
                .into_iter()
                .flatten()
                .collect();
            specs
                .iter()
                .any(|(spec, _)| spec.selects(c.name, &c.ext, &types))
        },
        |name| {
            format!(
                "mailwarden removed the attachment \"{name}\" from this message (policy rule {}).",
                rules.join(", ")
            )
        },
    );
    let stripped = match stripped {
        Ok(s) => s?,
        Err(name) => {
            warn!(
                queue_id = tx.queue_id().as_deref().unwrap_or("-"),
                "attachment {name:?} not stripped: the message is that attachment, not multipart"
            );
            return Some((
                None,
                format!("attachment {name} not stripped: the message is not multipart"),
            ));
        }
    };
    Some((
        Some(Edit::ReplaceBody(bytes::Bytes::from(stripped.body))),
        format!("stripped attachments: {}", stripped.removed.join(", ")),
    ))
}

/// Sends the message to clamd as configured: whole, or each decoded part on its own.
/// A body cut at `server.max_message_size` is oversize: what clamd would see is not
/// the message.
async fn scan_message(
    tx: &Transaction,
    message: &[u8],
    av: &AntivirusConfig,
    scanner: &Scanner,
) -> Outcome {
    let size = (message.len() - tx.body.len()) as u64 + tx.body_size;
    if tx.body_truncated() || size > scanner.max_size() as u64 {
        return Outcome::Oversize { size };
    }
    if av.mode == ScanMode::Attachments
        && let Some(parsed) = crate::content::parse(message)
    {
        let parts = crate::content::leaf_parts(&parsed);
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

async fn antivirus_step(
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
    let reply = |code, status, text| Verdict::Reject(fixed_reply(code, status, text));
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
            match av.on_oversize {
                OnOversize::Accept => AvStep {
                    verdict: None,
                    edits: vec![header(VIRUS_SCANNED, "skipped (size)".into())],
                    note,
                },
                OnOversize::Tempfail => AvStep {
                    verdict: Some(tempfail_reply(452, "4.3.4", text)),
                    edits: Vec::new(),
                    note: format!("{note}; tempfailed"),
                },
                OnOversize::Reject => AvStep {
                    verdict: Some(reply(552, "5.3.4", text)),
                    edits: Vec::new(),
                    note: format!("{note}; rejected"),
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
    Verdict::Tempfail(fixed_reply(code, status, text))
}

/// A reply whose code and enhanced status are fixed in this file (so always valid).
fn fixed_reply(code: u16, status: &str, text: String) -> SmtpReply {
    SmtpReply::new(code, status, &[text])
        .unwrap_or_else(|e| unreachable!("a fixed code is valid: {e}"))
}

/// Lesson 1 from our peers: a body that Postfix may still rewrite after we signed
/// (8-bit data converted to quoted-printable for a 7-bit destination, lines folded
/// at 998 bytes) arrives with a broken signature. Say so while there is time.
fn warn_fragile_body(tx: &Transaction) {
    let eight_bit = !tx.body.is_ascii();
    let longest = longest_line(&tx.body);
    if eight_bit || longest > 990 {
        warn!(
            queue_id = tx.queue_id().as_deref().unwrap_or("-"),
            eight_bit,
            longest_line = longest,
            "signed body may be rewritten after signing (8-bit data or a line near 998 bytes); set disable_mime_output_conversion = yes in Postfix"
        );
    }
}

/// The length of the longest line, CR included, LF not.
fn longest_line(body: &[u8]) -> usize {
    let mut longest = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain([body.len()]) {
        longest = longest.max(end - start);
        start = end + 1;
    }
    longest
}

/// What DMARC did, for the decision log line, when it did anything.
fn dmarc_note(report: &AuthReport) -> Option<String> {
    let d = report.disposition.as_ref()?;
    if let Some(sealer) = &d.override_by {
        return Some(format!(
            "DMARC failure overridden by trusted ARC sealer {sealer}"
        ));
    }
    (report.dmarc.result == AuthResult::Fail).then(|| {
        format!(
            "DMARC p={} applied={}",
            d.requested.as_str(),
            d.applied.as_str()
        )
    })
}

impl Filter for Pipeline {
    fn needs(&self) -> Needs {
        Needs {
            // Our header and the trace header; deleting forged headers; DMARC's
            // quarantine.
            actions: Actions::ADD_HEADERS
                .union(Actions::CHANGE_HEADERS)
                .union(Actions::QUARANTINE)
                .union(
                    if self.rules_use(|a| matches!(a, Action::AddRecipient(_))) {
                        Actions::ADD_RCPT
                    } else {
                        Actions::empty()
                    },
                )
                .union(
                    if self.rules_use(|a| matches!(a, Action::StripAttachments(_))) {
                        Actions::CHANGE_BODY
                    } else {
                        Actions::empty()
                    },
                ),
            headers: true,
            body: BodyNeed::Whole,
        }
    }

    async fn decide(&self, tx: Arc<Transaction>) -> Decision {
        let started = Instant::now();
        let mut findings = self.examine(&tx).await;
        findings.decision.audit = audit(&findings);
        record(&findings, started.elapsed());
        if let Some(detector) = crate::observe::alerts::detector() {
            let auth_user = match &findings.direction {
                Direction::Outbound(crate::direction::Origin::Authenticated(user)) => {
                    Some(user.as_str())
                }
                _ => None,
            };
            let observation = crate::observe::alerts::Observation {
                inbound: matches!(findings.direction, Direction::Inbound(_)),
                auth_user,
                sender_domain: policy::facts::domain_of(tx.sender.address()),
                client_ip: tx.client.ip_text(),
                auth_fail: findings.auth.as_ref().is_some_and(|a| {
                    a.dmarc.result == AuthResult::Fail
                        || matches!(
                            a.spf_mailfrom.result,
                            AuthResult::Fail | AuthResult::SoftFail
                        )
                        || a.dkim.iter().any(|d| d.result == AuthResult::Fail)
                }),
                virus: matches!(findings.scan, Some(Outcome::Infected(_))),
                rejected: matches!(findings.decision.verdict, Verdict::Reject(_)),
                error: matches!(findings.scan, Some(Outcome::Error(_)))
                    || findings
                        .auth
                        .as_ref()
                        .is_some_and(|a| a.dns_failure().is_some()),
            };
            detector.observe(&observation, Instant::now());
        }
        findings.decision
    }
}

/// The audit fields of the decision line: authentication, scan, rule.
fn audit(f: &Findings) -> crate::decision::Audit {
    crate::decision::Audit {
        auth: f.auth.as_ref().map(AuthReport::summary),
        scan: f.scan.as_ref().map(|o| match o {
            Outcome::Clean => "clean".to_owned(),
            Outcome::Infected(found) => format!(
                "infected {}",
                found
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Outcome::Oversize { size } => format!("skipped size {size}"),
            Outcome::Error(e) => format!("error {}", e.class.as_str()),
        }),
        rule: f.policy.as_ref().and_then(|e| match &e.decision {
            Some((_, rule)) => Some(rule.clone()),
            None => {
                let matched = e.matched();
                (!matched.is_empty()).then(|| matched.join(","))
            }
        }),
    }
}

/// Counts one decided message in the metrics (when they are on).
fn record(f: &Findings, took: std::time::Duration) {
    let m = metrics();
    if !m.enabled() {
        return;
    }
    let direction = match f.direction {
        Direction::Inbound(_) => "inbound",
        Direction::Outbound(_) => "outbound",
    };
    let action = f.decision.action();
    m.messages
        .get_or_create(&MessageLabels { direction, action })
        .inc();
    if let Some(report) = &f.auth {
        for r in report.methods() {
            let labels = AuthLabels {
                method: r.method,
                result: r.result.as_str(),
            };
            m.auth_results.get_or_create(&labels).inc();
            if r.result == AuthResult::TempError {
                m.dns_errors.get_or_create(&labels).inc();
            }
        }
    }
    match &f.scan {
        Some(Outcome::Infected(_)) => {
            m.viruses.inc();
        }
        Some(Outcome::Error(e)) => {
            m.clamd_errors
                .get_or_create(&ClassLabels {
                    class: e.class.as_str(),
                })
                .inc();
        }
        _ => {}
    }
    if let Some(eval) = &f.policy {
        for t in &eval.trace {
            if t.check.as_ref().is_some_and(|c| c.matched) {
                let mode = if t.monitor { "monitor" } else { "enforce" };
                m.rule_matches
                    .get_or_create(&RuleLabels {
                        rule: t.name.clone(),
                        mode,
                    })
                    .inc();
            }
        }
    }
    m.observe("message", took);
}

/// The queue id comes from the MTA; keep only what a queue id can contain.
fn sanitize(queue_id: &str) -> String {
    queue_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::longest_line;

    #[test]
    fn longest_line_counts_the_last_line_and_cr() {
        assert_eq!(longest_line(b""), 0);
        assert_eq!(longest_line(b"ab\r\nabcd\r\n"), 5);
        assert_eq!(longest_line(b"ab\r\nabcdefg"), 7);
        assert_eq!(longest_line(b"\n\n"), 0);
    }
}
