//! RFC 9991 failure reports: made at the end of a message whose DMARC result
//! meets the domain's `fo=` options, for domains that publish `ruf=`, never for a
//! record published with `psd=y` (a public suffix operator gets no per-message
//! data). Redacted as configured; queued in the store like aggregate reports,
//! where delivery checks external destinations the same way.

use crate::auth::dmarc::{Evaluation, Psd};
use crate::auth::{AuthReport, AuthResult};
use crate::config::ReportsConfig;
use crate::decision::Decision;
use crate::transaction::Transaction;

use super::mail::{self, Envelope, Failure};
use super::recorder::unix_now;
use super::store::{NewMail, Subject};

/// The failure report mails one message calls for, one per destination.
pub(crate) fn reports(
    config: &ReportsConfig,
    authserv_id: &str,
    tx: &Transaction,
    decision: &Decision,
    auth: &AuthReport,
) -> Vec<NewMail> {
    let mut out = Vec::new();
    for e in &auth.evaluations {
        let Some(found) = &e.published else { continue };
        let r = &found.record;
        if r.ruf.is_empty() || r.psd == Psd::Yes || !wanted(e, auth, &r.fo) {
            continue;
        }
        let now = unix_now();
        let report_id = format!("{}.{}.{}", e.from_domain, now, tx.session_id);
        let redact = |text: &str| {
            if config.redact_local_part {
                mail::redact_local_parts(text)
            } else {
                text.to_owned()
            }
        };
        let headers = redact(&String::from_utf8_lossy(&tx.header_block()));
        // Our header names the envelope sender too: redacted like the rest.
        let auth_results = redact(
            &auth
                .header_value(authserv_id)
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        );
        let alignment = match (e.dkim_aligned, e.spf_aligned) {
            (true, true) => "dkim,spf",
            (true, false) => "dkim",
            (false, true) => "spf",
            (false, false) => "none",
        };
        let delivery = match decision.action() {
            "accept" => "delivered",
            "quarantine" => "spam",
            "reject" | "discard" => "reject",
            _ => "other",
        };
        let source_ip = tx.client.ip_text().unwrap_or_else(|| "127.0.0.1".into());
        let mail_from = redact(tx.sender.address());
        let failure = Failure {
            domain: &e.from_domain,
            report_id: &report_id,
            source_ip: &source_ip,
            mail_from: if mail_from.is_empty() {
                "<>"
            } else {
                &mail_from
            },
            arrival: now,
            auth_results: &auth_results,
            alignment,
            delivery,
            headers: &headers,
            body: (!config.redact_body).then_some(&tx.body[..]),
        };
        let submitter = super::send::submitter(config);
        let about = Subject {
            kind: "failure",
            domain: &found.domain,
            report_id: &report_id,
            begin: now,
            end: now,
        };
        for dest in r.ruf.iter().take(config.max_destinations) {
            let message = mail::failure(
                &failure,
                &Envelope {
                    from: &config.from,
                    to: &dest.address,
                    submitter,
                    now,
                },
            );
            out.push(NewMail::for_destination(
                &about,
                dest,
                message,
                config.max_report_size,
            ));
        }
    }
    out
}

/// Whether `fo=` asks for a report about this evaluation (RFC 9989 §4.7): `0`
/// when nothing aligned passed, `1` when any mechanism did not give an aligned
/// pass, `d` for a DKIM signature that failed, `s` for an SPF failure.
fn wanted(e: &Evaluation, auth: &AuthReport, fo: &str) -> bool {
    if !matches!(e.result, AuthResult::Fail | AuthResult::Pass) {
        return false;
    }
    fo.split(':').any(|option| match option.trim() {
        "0" => e.result == AuthResult::Fail,
        "1" => !(e.spf_aligned && e.dkim_aligned),
        "d" => auth.dkim.iter().any(|m| m.result == AuthResult::Fail),
        "s" => auth.spf_mailfrom.result == AuthResult::Fail,
        _ => false,
    })
}
