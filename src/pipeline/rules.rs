//! Stage: the policy rules. Gathers the facts the rules look at (envelope, headers,
//! authentication, antivirus outcome and, when a rule needs it, the parsed content),
//! evaluates the rules and rate limits in order, and applies a deciding rule's
//! verdict. The rules' header and body changes are the rewrite stage's.

use std::time::Instant;

use super::state::State;
use crate::config::{Action, Config, RateLimit, Rule};
use crate::decision::{Edit, Verdict};
use crate::policy::{self, Facts, Limiter};

pub(super) struct Rules {
    pub rules: Vec<Rule>,
    pub rate_limits: Vec<RateLimit>,
    pub limiter: Limiter,
    pub need_content: bool,
    pub monitor: bool,
}

impl Rules {
    /// `None` when no rule is configured: the stage then does nothing at all.
    pub fn from_config(config: &Config) -> Option<Self> {
        (!config.rules.is_empty()).then(|| Rules {
            rules: config.rules.clone(),
            rate_limits: config.rate_limits.clone(),
            limiter: Limiter::default(),
            need_content: config.rules.iter().any(|r| r.when.needs_content()),
            monitor: config.policy_monitor,
        })
    }

    /// Does any rule have an action like this?
    pub fn use_action(&self, kind: impl Fn(&Action) -> bool) -> bool {
        self.rules.iter().any(|r| r.then.iter().any(&kind))
    }

    /// `explain` keeps every condition's reason (for `mailwarden scan`).
    pub fn run(&self, s: &mut State<'_>, explain: bool) {
        let facts = Facts::gather(
            s.tx,
            &s.direction,
            s.auth.as_ref(),
            s.scan.as_ref(),
            self.need_content.then(|| s.message()),
        );
        let rates = policy::Rates {
            limits: &self.rate_limits,
            limiter: &self.limiter,
            now: Instant::now(),
        };
        let evaluation = policy::evaluate(&self.rules, &facts, self.monitor, &rates, explain);
        if let Some((action, rule)) = &evaluation.decision {
            s.note(format_args!("rule {rule} decided: {}", action.describe()));
            s.held.clear();
            s.verdict = match action {
                Action::Reject(r) => Verdict::Reject(r.clone()),
                Action::Tempfail(r) => Verdict::Tempfail(r.clone()),
                Action::Discard => Verdict::Discard,
                Action::Quarantine(why) => {
                    s.held.push(Edit::Quarantine {
                        reason: format!("{why} (rule {rule})"),
                    });
                    Verdict::Accept
                }
                _ => Verdict::Accept,
            };
        }
        for (action, rule) in &evaluation.changes {
            s.note(format_args!("rule {rule}: {}", action.describe()));
        }
        if evaluation.decision.is_none() {
            let matched = evaluation.matched();
            if matched.is_empty() {
                s.note("no rule matched");
            } else {
                s.note(format_args!(
                    "rules matched, none decided: {}",
                    matched.join(", ")
                ));
            }
        }
        for would in &evaluation.monitored {
            s.note(format_args!("monitor {would}"));
        }
        s.policy = Some(evaluation);
    }
}
