//! The rules engine: an ordered list of rules, each a condition over the message's
//! [`Facts`] and actions, evaluated as a pure function into one outcome plus a trace
//! that says, rule by rule and condition by condition, what matched and why.

mod check;
mod conditions;
mod edits;
pub mod facts;
pub mod rate;

#[cfg(test)]
pub use check::check;
pub use edits::edits_for;
pub use facts::{Content, Facts};
pub use rate::Limiter;

use crate::config::{Action, RateLimit, Rule};
use check::{Cx, check_with};

/// One condition's verdict, with the reason, nested like the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub matched: bool,
    pub why: String,
    pub children: Vec<Check>,
}

/// What happened with one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    pub name: String,
    /// `None` when evaluation had stopped before this rule.
    pub check: Option<Check>,
    /// The actions taken (or, in monitor mode, that would have been).
    pub actions: Vec<String>,
    pub monitor: bool,
}

/// The result of evaluating every rule for one message.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub trace: Vec<RuleTrace>,
    /// The first final action of an enforcing rule, and that rule's name.
    pub decision: Option<(Action, String)>,
    /// Non-final actions of enforcing rules, in order, with their rule's name.
    pub changes: Vec<(Action, String)>,
    /// `rule: action` for each monitor-mode match, for the log.
    pub monitored: Vec<String>,
}

impl Evaluation {
    /// Names of the rules that matched, enforced or not, for the log line.
    pub fn matched(&self) -> Vec<&str> {
        self.trace
            .iter()
            .filter(|t| t.check.as_ref().is_some_and(|c| c.matched))
            .map(|t| t.name.as_str())
            .collect()
    }
}

/// The rate limits and their buckets, with the time to count at.
pub struct Rates<'a> {
    pub limits: &'a [RateLimit],
    pub limiter: &'a Limiter,
    pub now: std::time::Instant,
    /// Fleet mode: whether each (limit index, key value in lower case) was over
    /// its limit, counted in Redis before the rules ran. `None`: count in memory.
    pub counted: Option<&'a std::collections::HashMap<(usize, String), bool>>,
}

/// The values a limit counts this message by (one per recipient for
/// `recipient`), as the message gives them.
pub fn limit_keys(limit: &RateLimit, f: &Facts) -> Vec<String> {
    use crate::config::LimitKey;
    match limit.key {
        LimitKey::ClientIp => f
            .client_ip
            .map(crate::transaction::ip_text)
            .into_iter()
            .collect(),
        LimitKey::Sender => vec![f.sender.clone()],
        LimitKey::SenderDomain => vec![f.sender_domain().to_owned()],
        LimitKey::AuthUser => f.auth_user.iter().cloned().collect(),
        LimitKey::Recipient => f.recipients.clone(),
    }
}

/// Evaluates `rules` in order. `monitor_all` puts every rule in monitor mode;
/// `explain` keeps every condition's reason (what `mailwarden scan` prints), which
/// costs more than the verdict alone.
pub fn evaluate(
    rules: &[Rule],
    facts: &Facts,
    monitor_all: bool,
    rates: &Rates<'_>,
    explain: bool,
) -> Evaluation {
    let cx = Cx {
        f: facts,
        rates: Some(rates),
        explain,
    };
    let mut out = Evaluation::default();
    let mut stopped = false;
    for rule in rules {
        if stopped {
            out.trace.push(RuleTrace {
                name: rule.name.clone(),
                check: None,
                actions: Vec::new(),
                monitor: rule.monitor || monitor_all,
            });
            continue;
        }
        let check = check_with(&rule.when, &cx);
        let monitor = rule.monitor || monitor_all;
        let mut actions = Vec::new();
        if check.matched {
            for action in &rule.then {
                actions.push(action.describe());
                if monitor {
                    out.monitored
                        .push(format!("{}: {}", rule.name, action.describe()));
                } else if action.is_final() {
                    if out.decision.is_none() {
                        out.decision = Some((action.clone(), rule.name.clone()));
                    }
                } else {
                    out.changes.push((action.clone(), rule.name.clone()));
                }
            }
            stopped = rule.stop && !monitor;
        }
        out.trace.push(RuleTrace {
            name: rule.name.clone(),
            check: Some(check),
            actions,
            monitor,
        });
    }
    out
}

#[cfg(test)]
mod tests;
