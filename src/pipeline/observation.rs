//! Where one decided message is reported, all from the same [`Observation`]: the
//! decision log line, the metrics and the anomaly detector. The session calls this
//! after the answer went out, with the decision the MTA was actually given.

use std::time::{Duration, Instant};

use tracing::info;

use super::state::Observation;
use crate::auth::{AuthReport, AuthResult};
use crate::decision::{Decision, Verdict};
use crate::direction::{Direction, Origin};
use crate::observe::alerts::{Detector, Sample};
use crate::observe::metrics::{
    AuthLabels, ClassLabels, MessageLabels, OversizeLabels, RuleLabels, SkipLabels, metrics,
};
use crate::policy;
use crate::scan::Outcome;
use crate::transaction::Transaction;

/// Reports one message. `observation` is `None` when the pipeline did not finish
/// (a panic or the deadline): the decision line still goes out, with what is known.
pub(super) fn report(
    tx: &Transaction,
    decision: &Decision,
    observation: Option<&Observation>,
    took: Duration,
    detector: Option<&Detector>,
) {
    log_line(tx, decision, observation, took);
    let Some(o) = observation else {
        return;
    };
    count(o, decision, took);
    if let Some(detector) = detector {
        detector.observe(&sample(tx, decision, o), Instant::now());
    }
}

fn log_line(tx: &Transaction, decision: &Decision, o: Option<&Observation>, took: Duration) {
    let recipients: Vec<&str> = tx.recipients.iter().map(|r| r.address()).collect();
    let auth = o.and_then(|o| o.auth.as_ref()).map(AuthReport::summary);
    let scan = o.and_then(|o| o.scan.as_ref()).map(scan_text);
    // `rule`: the rule that decided; `matched`: the others that matched.
    let policy = o.and_then(|o| o.policy.as_ref());
    let rule = policy.and_then(|e| e.decision.as_ref().map(|(_, rule)| rule.as_str()));
    let matched: Vec<&str> = policy
        .map(|e| e.matched())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| Some(*m) != rule)
        .collect();
    info!(
        queue_id = tx.queue_id().as_deref().unwrap_or("-"),
        session = tx.session_id,
        client_ip = tx.client.ip_text().as_deref().unwrap_or("-"),
        client_name = tx.client.hostname.as_str(),
        helo = tx.client.helo.as_deref().unwrap_or("-"),
        from = tx.sender.address(),
        rcpt = recipients.join(",").as_str(),
        size = tx.message_size(),
        verdict = decision.verdict.label(),
        action = decision.action(),
        auth = auth.as_deref().unwrap_or("-"),
        scan = scan.as_deref().unwrap_or("-"),
        rule = rule.unwrap_or("-"),
        matched = if matched.is_empty() {
            "-".to_owned()
        } else {
            matched.join(",")
        }
        .as_str(),
        reason = decision.reason.as_str(),
        duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        duration_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        "message decided"
    );
}

/// The antivirus outcome in a few words: `clean`, `infected NAME`, `skipped size N`,
/// `error CLASS`.
fn scan_text(o: &Outcome) -> String {
    match o {
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
    }
}

/// Counts one decided message in the metrics (when they are on).
fn count(o: &Observation, decision: &Decision, took: Duration) {
    let m = metrics();
    if !m.enabled() {
        return;
    }
    for (step, timing) in [
        ("dns", o.timings.dns),
        ("clamd", o.timings.clamd),
        ("signing", o.timings.signing),
    ] {
        if let Some(t) = timing {
            m.observe(step, t);
        }
    }
    let direction = match o.direction {
        Direction::Inbound(_) => "inbound",
        Direction::Outbound(_) => "outbound",
    };
    let action = decision.action();
    m.messages
        .get_or_create(&MessageLabels { direction, action })
        .inc();
    if let Some(report) = &o.auth {
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
    match &o.scan {
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
    for (check, action) in &o.oversize {
        m.oversize
            .get_or_create(&OversizeLabels { check, action })
            .inc();
    }
    for (rule, check) in &o.skipped {
        m.rule_skips
            .get_or_create(&SkipLabels {
                rule: rule.clone(),
                check: check.name(),
            })
            .inc();
    }
    if let Some(eval) = &o.policy {
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

/// What the anomaly detector counts of one message.
fn sample<'a>(tx: &'a Transaction, decision: &Decision, o: &'a Observation) -> Sample<'a> {
    Sample {
        inbound: matches!(o.direction, Direction::Inbound(_)),
        auth_user: match &o.direction {
            Direction::Outbound(Origin::Authenticated(user)) => Some(user.as_str()),
            _ => None,
        },
        sender_domain: policy::facts::domain_of(tx.sender.address()),
        client_ip: tx.client.ip_text(),
        auth_fail: o.auth.as_ref().is_some_and(|a| {
            a.dmarc.result == AuthResult::Fail
                || matches!(
                    a.spf_mailfrom.result,
                    AuthResult::Fail | AuthResult::SoftFail
                )
                || a.dkim.iter().any(|d| d.result == AuthResult::Fail)
        }),
        virus: matches!(o.scan, Some(Outcome::Infected(_))),
        rejected: matches!(decision.verdict, Verdict::Reject(_)),
        error: matches!(o.scan, Some(Outcome::Error(_)))
            || o.auth.as_ref().is_some_and(|a| a.dns_failure().is_some()),
    }
}
