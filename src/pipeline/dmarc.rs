//! Stage: the DMARC decision. Adds our `Authentication-Results` header and applies
//! the sender domain's policy (reject, or quarantine held until the final verdict),
//! or ends the message with a tempfail when DNS trouble left a result open and
//! `inbound.on_dns_error` says so. For a body cut at `server.max_message_size`
//! DMARC is decided from what is known; only a failure that a DKIM signature over
//! the missing part might have turned into a pass gets `inbound.on_oversize`.

use super::state::{Flow, State};
use crate::auth::{self, AuthReport, AuthResult, FromField, Policy};
use crate::config::{Enforcer, InboundConfig, OnBadFrom, OnDnsError, OnMultipleFrom};
use crate::decision::{Decision, Edit, Verdict};
use crate::reply::SmtpReply;

pub(super) struct DmarcDecision {
    pub inbound: InboundConfig,
    pub authserv_id: String,
}

impl DmarcDecision {
    pub fn run(&self, s: &mut State<'_>) -> Flow {
        let Some(report) = &s.auth else {
            return Flow::Continue(());
        };
        let (verdict, quarantine, undecided) = match self.action(report) {
            Ok(action) => action,
            Err(dns) => return Flow::Break(Decision::tempfail(format!("DNS failure: {dns}"))),
        };
        let header = report.header_value(&self.authserv_id);
        let note = dmarc_note(report);
        s.edits.push(Edit::InsertHeader {
            index: 0,
            name: auth::HEADER.to_owned(),
            value: header,
        });
        if let Some(why) = note {
            s.note(why);
        }
        if undecided {
            let action = super::oversize::name(self.inbound.on_oversize);
            s.note(format_args!(
                "DMARC undecided: a DKIM signature covers body beyond server.max_message_size; inbound.on_oversize = {action}"
            ));
            s.oversize.push(("dmarc", action));
        }
        s.enforce(Enforcer::Dmarc, verdict, quarantine);
        Flow::Continue(())
    }

    /// The verdict DMARC asks for, a quarantine edit, and whether the result was
    /// left open by a body cut at `server.max_message_size` (then
    /// `inbound.on_oversize` decides); `Err` with the failure when DNS trouble left
    /// the result open and `on_dns_error` says tempfail.
    fn action(&self, report: &AuthReport) -> Result<(Verdict, Option<Edit>, bool), String> {
        if let Some(failure) = report.dns_failure()
            && self.inbound.on_dns_error == OnDnsError::Tempfail
        {
            return Err(failure);
        }
        if let Some(refusal) = self.bad_from_refusal(report) {
            let reply = SmtpReply::new(550, "5.7.1", &[refusal]).map_err(|e| e.to_string())?;
            return Ok((Verdict::Reject(reply), None, false));
        }
        let Some(disposition) = report
            .disposition
            .as_ref()
            .filter(|_| self.inbound.dmarc_enforce)
        else {
            return Ok((Verdict::Accept, None, false));
        };
        let domain = report.dmarc.get("header.from").unwrap_or("the From domain");
        // A failure that a signature over the part we did not keep might have made a
        // pass: not ours to enforce, not ours to wave through either.
        if disposition.applied != Policy::None
            && report.dmarc.result == AuthResult::Fail
            && report.body_unverified
        {
            let text = format!(
                "mailwarden: message too large to check the DKIM signature DMARC of {domain} depends on"
            );
            let verdict = super::oversize::verdict(self.inbound.on_oversize, &text);
            return Ok((verdict, None, true));
        }
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
                Ok((Verdict::Reject(reply), None, false))
            }
            Policy::Quarantine => Ok((
                Verdict::Accept,
                Some(Edit::Quarantine {
                    reason: format!(
                        "DMARC policy of {domain} is quarantine and the message failed"
                    ),
                }),
                false,
            )),
            Policy::None => Ok((Verdict::Accept, None, false)),
        }
    }

    /// The refusal text when the From fields leave DMARC without one author domain
    /// and `inbound.on_bad_from` / `on_multiple_from` say reject.
    fn bad_from_refusal(&self, report: &AuthReport) -> Option<String> {
        match &report.from {
            FromField::Bad(why) if self.inbound.on_bad_from == OnBadFrom::Reject => Some(format!(
                "mailwarden: {why}; DMARC needs one author address (RFC 5322 3.6.2)"
            )),
            FromField::Domains(n)
                if *n > 1 && self.inbound.on_multiple_from == OnMultipleFrom::Reject =>
            {
                Some(format!(
                    "mailwarden: {n} author domains in From; one is required here"
                ))
            }
            _ => None,
        }
    }
}

/// What DMARC did, for the decision log line, when it did anything.
fn dmarc_note(report: &AuthReport) -> Option<String> {
    let applied = report
        .disposition
        .as_ref()
        .and_then(|d| match &d.override_by {
            Some(sealer) => Some(format!(
                "DMARC failure overridden by trusted ARC sealer {sealer}"
            )),
            None => (report.dmarc.result == AuthResult::Fail).then(|| {
                format!(
                    "DMARC p={} applied={}",
                    d.requested.as_str(),
                    d.applied.as_str()
                )
            }),
        });
    match &report.from {
        FromField::Bad(why) => Some(format!("DMARC not evaluated: {why}")),
        FromField::Domains(n) if *n > 1 => Some(format!(
            "{}DMARC evaluated for {n} author domains, the worst applies",
            applied.map(|a| format!("{a}; ")).unwrap_or_default()
        )),
        FromField::Domains(_) => applied,
    }
}
