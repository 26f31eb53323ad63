//! Stage: the policy rules. Gathers the facts the rules look at (envelope, headers,
//! authentication, antivirus outcome and, when a rule needs it, the parsed content),
//! evaluates the rules and rate limits in order, and applies a deciding rule's
//! verdict. The rules' header and body changes are the rewrite stage's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::state::State;
use crate::config::{Action, Config, Enforcer, OnOversize, OnRedisError, RateLimit, Rule};
use crate::decision::{Edit, Verdict};
use crate::fleet::{Fleet, LimitCheck, Window};
use crate::observe::metrics::{ClassLabels, metrics};
use crate::policy::{self, Content, Facts, Limiter};

pub(super) struct Rules {
    pub rules: Vec<Rule>,
    pub rate_limits: Vec<RateLimit>,
    /// The in-memory buckets; shared with the pipeline a reload replaces when
    /// the limits did not change, so a reload does not refill them.
    pub limiter: Arc<Limiter>,
    /// Fleet mode: the limits are counted in Redis.
    pub fleet: Option<Arc<Fleet>>,
    pub need_content: bool,
    pub monitor: bool,
    pub archive_depth: u32,
    pub max_parts: usize,
    pub on_oversize: OnOversize,
}

impl Rules {
    /// `None` when no rule is configured: the stage then does nothing at all.
    pub fn from_config(config: &Config, fleet: Option<Arc<Fleet>>) -> Option<Self> {
        (!config.rules.is_empty()).then(|| Rules {
            rules: config.rules.clone(),
            rate_limits: config.rate_limits.clone(),
            limiter: Arc::new(Limiter::new(config.rate_limit_keys)),
            fleet: fleet.filter(|_| !config.rate_limits.is_empty()),
            need_content: config.rules.iter().any(|r| r.when.needs_content()),
            monitor: config.policy_monitor,
            archive_depth: config.archive_depth,
            max_parts: config.server.max_mime_parts,
            on_oversize: config.server.on_oversize,
        })
    }

    /// Does any rule have an action like this?
    pub fn use_action(&self, kind: impl Fn(&Action) -> bool) -> bool {
        self.rules.iter().any(|r| r.then.iter().any(&kind))
    }

    /// Fleet mode: counts this message against every limit in Redis (one
    /// script call for all its windows on one server, one per window on a
    /// cluster). `Ok(None)`: count in memory (`on_redis_error = "local"`);
    /// `Err`: Redis failed and `on_redis_error = "tempfail"`.
    async fn count_in_redis(
        &self,
        fleet: &Fleet,
        facts: &Facts,
        s: &mut State<'_>,
    ) -> Result<Option<HashMap<(usize, String), bool>>, ()> {
        let mut keys = Vec::new();
        let mut checks = Vec::new();
        for (index, limit) in self.rate_limits.iter().enumerate() {
            for key in policy::limit_keys(limit, facts) {
                let key = key.to_ascii_lowercase();
                checks.push(LimitCheck {
                    limit: limit.name.clone(),
                    key: key.clone(),
                    window: Window {
                        count: limit.count,
                        millis: limit.per.as_millis().min(u128::from(u64::MAX)) as u64,
                    },
                });
                keys.push((index, key));
            }
        }
        if checks.is_empty() {
            return Ok(Some(HashMap::new()));
        }
        match fleet.exceeded(checks).await {
            Ok(over) => Ok(Some(keys.into_iter().zip(over).collect())),
            Err(e) => {
                let action = fleet.config().rate_limits_on_error;
                let class = action.as_str();
                metrics()
                    .redis_fallbacks
                    .get_or_create(&ClassLabels { class })
                    .inc();
                s.note(format_args!(
                    "rate limits not counted in Redis ({e}); cluster.on_redis_error.rate_limits = {class}"
                ));
                match action {
                    OnRedisError::Tempfail => Err(()),
                    OnRedisError::Accept => {
                        Ok(Some(keys.into_iter().map(|k| (k, false)).collect()))
                    }
                    OnRedisError::Local => Ok(None),
                }
            }
        }
    }

    /// `explain` keeps every condition's reason (for `mailwarden scan`).
    pub async fn run(&self, s: &mut State<'_>, explain: bool) {
        // Rules that read the content cannot judge a message whose MIME is past
        // server.max_mime_parts: it gets server.on_oversize, never a silent pass.
        let too_complex = self.need_content && s.mime_parts() > self.max_parts;
        if too_complex {
            let action = super::oversize::name(self.on_oversize);
            s.note(format_args!(
                "content not read: over server.max_mime_parts ({}); server.on_oversize = {action}",
                self.max_parts
            ));
            s.oversize.push(("mime", action));
            let text = "mailwarden: message has too many MIME parts to check";
            let verdict = super::oversize::verdict(self.on_oversize, text);
            s.enforce(Enforcer::Content, verdict, None);
        }
        let facts = Facts::gather(
            s.tx,
            &s.direction,
            s.auth.as_ref(),
            s.scan.as_ref(),
            (self.need_content && !too_complex).then(|| Content {
                message: s.message(),
                archive_depth: self.archive_depth,
            }),
        );
        let counted = match &self.fleet {
            None => None,
            Some(fleet) => match self.count_in_redis(fleet, &facts, s).await {
                Ok(counted) => counted,
                Err(()) => {
                    s.enforce(
                        Enforcer::Content,
                        Verdict::Tempfail(crate::reply::SmtpReply::fixed(
                            451,
                            "4.3.0",
                            "mailwarden: rate limits cannot be checked now, try again later",
                        )),
                        None,
                    );
                    return;
                }
            },
        };
        let rates = policy::Rates {
            limits: &self.rate_limits,
            limiter: &self.limiter,
            now: Instant::now(),
            counted: counted.as_ref(),
        };
        let evaluation = policy::evaluate(&self.rules, &facts, self.monitor, &rates, explain);
        if let Some((action, rule)) = &evaluation.decision {
            s.note(format_args!("rule {rule} decided: {}", action.describe()));
            let skip = self
                .rules
                .iter()
                .find(|r| &r.name == rule)
                .map_or(&[][..], |r| r.skip.as_slice());
            decide(s, action, rule, skip);
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

/// Applies a deciding rule's final action. A refusal always applies. An action that
/// lets the message through (accept, quarantine) does not lift a refusal or hold that
/// DMARC or the antivirus step asked for, unless the rule names that check in
/// `skip`; each lift is noted in the decision line and counted.
fn decide(s: &mut State<'_>, action: &Action, rule: &str, skip: &[Enforcer]) {
    let refusal = match action {
        Action::Reject(r) => Some(Verdict::Reject(r.clone())),
        Action::Tempfail(r) => Some(Verdict::Tempfail(r.clone())),
        Action::Discard => Some(Verdict::Discard),
        _ => None,
    };
    if let Some(verdict) = refusal {
        s.verdict = verdict;
        return;
    }
    let (lifted, stands): (Vec<_>, Vec<_>) = std::mem::take(&mut s.refused)
        .into_iter()
        .partition(|(by, _)| skip.contains(by));
    for (by, _) in lifted {
        s.note(format_args!(
            "rule {rule} lifts the {} verdict (skip)",
            by.name()
        ));
        s.skipped.push((rule.to_owned(), by));
    }
    if let Some((by, verdict)) = stands.first() {
        s.note(format_args!(
            "the {} verdict stands: rule {rule} does not skip {}",
            by.name(),
            by.name()
        ));
        s.verdict = verdict.clone();
        s.refused = stands;
        return;
    }
    s.verdict = Verdict::Accept;
    let mut lifted = Vec::new();
    s.held.retain(|(by, _)| match by {
        Some(by) if skip.contains(by) => {
            lifted.push(*by);
            false
        }
        _ => true,
    });
    for by in lifted {
        s.note(format_args!(
            "rule {rule} lifts the {} hold (skip)",
            by.name()
        ));
        s.skipped.push((rule.to_owned(), by));
    }
    if let Action::Quarantine(why) = action {
        s.held.push((
            None,
            Edit::Quarantine {
                reason: format!("{why} (rule {rule})"),
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direction::Direction;
    use crate::reply::SmtpReply;
    use crate::transaction::Transaction;

    fn reply(code: u16, status: &str) -> SmtpReply {
        SmtpReply::new(code, status, &["x"]).unwrap()
    }

    fn state(tx: &Transaction) -> State<'_> {
        State::new(tx, Direction::Inbound("192.0.2.1".parse().unwrap()))
    }

    fn hold(why: &str) -> Option<Edit> {
        Some(Edit::Quarantine { reason: why.into() })
    }

    #[test]
    fn an_accept_rule_does_not_lift_a_failed_scan_or_a_virus() {
        let tx = Transaction::default();
        for refusal in [
            Verdict::Tempfail(reply(451, "4.7.1")),
            Verdict::Reject(reply(554, "5.7.1")),
        ] {
            let mut s = state(&tx);
            s.enforce(Enforcer::Antivirus, refusal.clone(), None);
            decide(&mut s, &Action::Accept, "vip", &[]);
            assert_eq!(s.verdict, refusal);
            assert!(
                s.reason.contains("the antivirus verdict stands"),
                "{}",
                s.reason
            );
            assert!(s.skipped.is_empty());
            decide(
                &mut s,
                &Action::Quarantine("q".into()),
                "vip",
                &[Enforcer::Dmarc],
            );
            assert_eq!(s.verdict, refusal, "skipping another check lifts nothing");
        }
    }

    #[test]
    fn skip_lifts_only_the_named_check() {
        let tx = Transaction::default();
        let mut s = state(&tx);
        s.enforce(Enforcer::Dmarc, Verdict::Reject(reply(550, "5.7.1")), None);
        s.enforce(
            Enforcer::Antivirus,
            Verdict::Reject(reply(554, "5.7.1")),
            None,
        );
        assert_eq!(s.verdict, Verdict::Reject(reply(550, "5.7.1")));
        decide(&mut s, &Action::Accept, "partner", &[Enforcer::Dmarc]);
        assert_eq!(s.verdict, Verdict::Reject(reply(554, "5.7.1")));
        assert_eq!(s.skipped, [("partner".to_owned(), Enforcer::Dmarc)]);

        let mut s = state(&tx);
        s.enforce(Enforcer::Dmarc, Verdict::Reject(reply(550, "5.7.1")), None);
        decide(&mut s, &Action::Accept, "partner", &[Enforcer::Dmarc]);
        assert_eq!(s.verdict, Verdict::Accept);
        assert!(
            s.reason
                .contains("rule partner lifts the dmarc verdict (skip)")
        );
    }

    #[test]
    fn holds_by_checks_stay_unless_skipped_and_refusals_always_apply() {
        let tx = Transaction::default();
        let mut s = state(&tx);
        s.enforce(Enforcer::Dmarc, Verdict::Accept, hold("dmarc"));
        s.enforce(Enforcer::Antivirus, Verdict::Accept, hold("virus"));
        decide(&mut s, &Action::Accept, "r", &[Enforcer::Antivirus]);
        assert_eq!(s.verdict, Verdict::Accept);
        let reasons: Vec<_> = s.held.iter().map(|(by, _)| *by).collect();
        assert_eq!(reasons, [Some(Enforcer::Dmarc)]);
        assert_eq!(s.skipped, [("r".to_owned(), Enforcer::Antivirus)]);

        let mut s = state(&tx);
        s.enforce(
            Enforcer::Antivirus,
            Verdict::Tempfail(reply(451, "4.7.1")),
            None,
        );
        decide(&mut s, &Action::Reject(reply(550, "5.7.1")), "r", &[]);
        assert_eq!(s.verdict, Verdict::Reject(reply(550, "5.7.1")));
        decide(&mut s, &Action::Discard, "r", &[]);
        assert_eq!(s.verdict, Verdict::Discard);
    }
}
