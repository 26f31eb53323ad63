//! Stage: the DMARC decision. Adds our `Authentication-Results` header and applies
//! the sender domain's policy (reject, or quarantine held until the final verdict),
//! or ends the message with a tempfail when DNS trouble left a result open and
//! `inbound.on_dns_error` says so. A message whose body was cut at
//! `server.max_message_size` could not have its DKIM body hashes checked, so DMARC
//! is reported but not enforced for it.

use super::state::{Flow, State};
use crate::auth::{self, AuthReport, AuthResult, Policy};
use crate::config::{Enforcer, InboundConfig, OnDnsError};
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
        let truncated = s.tx.body_truncated();
        let (verdict, quarantine) = match self.action(report, truncated) {
            Ok(action) => action,
            Err(dns) => return Flow::Break(Decision::tempfail(format!("DNS failure: {dns}"))),
        };
        let header = report.header_value(&self.authserv_id);
        let note = dmarc_note(report);
        let unenforced = truncated && report.dmarc.result == AuthResult::Fail;
        s.edits.push(Edit::InsertHeader {
            index: 0,
            name: auth::HEADER.to_owned(),
            value: header,
        });
        if let Some(why) = note {
            s.note(why);
        }
        if unenforced {
            s.note("DMARC not enforced: body longer than server.max_message_size");
        }
        s.enforce(Enforcer::Dmarc, verdict, quarantine);
        Flow::Continue(())
    }

    /// The verdict DMARC asks for, plus a quarantine edit; `Err` with the failure
    /// when DNS trouble left the result open and `on_dns_error` says tempfail.
    fn action(
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
