//! The rules engine: an ordered list of rules, each a condition over the message's
//! [`Facts`] and actions, evaluated as a pure function into one outcome plus a trace
//! that says, rule by rule and condition by condition, what matched and why.

pub mod facts;
pub mod rate;
pub mod rule;

pub use facts::{Attachment, Facts};
pub use rate::{LimitKey, Limiter, RateLimit};
pub use rule::{Action, Condition, Matcher, Pattern, Rule, StripSpec, TextField};

use crate::decision::{Edit, delete_headers};
use crate::transaction::HeaderField;
use facts::domain_of;

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

/// What a condition is evaluated against, and whether reasons are wanted.
struct Cx<'a, 'r> {
    f: &'a Facts,
    rates: Option<&'a Rates<'r>>,
    /// Build every reason and evaluate every condition (for `scan`); otherwise
    /// `all` and `any` stop at the first condition that decides them.
    explain: bool,
}

impl Cx<'_, '_> {
    fn leaf(&self, matched: bool, why: impl FnOnce() -> String) -> Check {
        Check {
            matched,
            why: if self.explain { why() } else { String::new() },
            children: Vec::new(),
        }
    }
}

/// Evaluates one condition, with its reason (rate limits count as not exceeded).
pub fn check(c: &Condition, f: &Facts) -> Check {
    check_with(
        c,
        &Cx {
            f,
            rates: None,
            explain: true,
        },
    )
}

fn check_with(c: &Condition, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    let check = |c: &Condition| check_with(c, cx);
    match c {
        Condition::All(all) if !cx.explain => Check {
            matched: all.iter().all(|c| check(c).matched),
            why: String::new(),
            children: Vec::new(),
        },
        Condition::Any(any) if !cx.explain => Check {
            matched: any.iter().any(|c| check(c).matched),
            why: String::new(),
            children: Vec::new(),
        },
        Condition::All(all) => {
            let children: Vec<Check> = all.iter().map(&check).collect();
            let matched = children.iter().all(|c| c.matched);
            Check {
                matched,
                why: if matched {
                    "all of these hold".into()
                } else {
                    "not all of these hold".into()
                },
                children,
            }
        }
        Condition::Any(any) => {
            let children: Vec<Check> = any.iter().map(&check).collect();
            let matched = children.iter().any(|c| c.matched);
            Check {
                matched,
                why: if matched {
                    "one of these holds (any)".into()
                } else {
                    "none of these holds (any)".into()
                },
                children,
            }
        }
        Condition::Not(inner) => {
            let inner = check(inner);
            Check {
                matched: !inner.matched,
                why: "not".into(),
                children: vec![inner],
            }
        }
        Condition::Text(field, matcher) => {
            let refs = text_values(*field, f);
            match matcher.first_match(&refs) {
                Some((v, p)) => cx.leaf(true, || {
                    format!("{} {:?} matches {}", field.name(), clip(v), p.describe())
                }),
                None => cx.leaf(false, || {
                    format!(
                        "{} {} does not match {}",
                        field.name(),
                        shown_values(&refs),
                        matcher.describe()
                    )
                }),
            }
        }
        Condition::Header(name, matcher) => {
            let values: Vec<&str> = f
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            match matcher.first_match(&values) {
                Some((v, p)) => cx.leaf(true, || {
                    format!("header {name} {:?} matches {}", clip(v), p.describe())
                }),
                None => cx.leaf(false, || {
                    format!(
                        "header {name} {} does not match {}",
                        shown_values(&values),
                        matcher.describe()
                    )
                }),
            }
        }
        Condition::ClientIp(nets) => match f.client_ip {
            None => cx.leaf(false, || "no client IP (local submission)".into()),
            Some(ip) => match rule::in_networks(nets, ip) {
                Some(net) => cx.leaf(true, || format!("client_ip {ip} is in {net}")),
                None => cx.leaf(false, || {
                    format!("client_ip {ip} is in none of {} networks", nets.len())
                }),
            },
        },
        Condition::Inbound(want) => {
            let dir = |inbound: bool| if inbound { "inbound" } else { "outbound" };
            cx.leaf(f.inbound == *want, || {
                format!(
                    "direction is {} (rule wants {})",
                    dir(f.inbound),
                    dir(*want)
                )
            })
        }
        Condition::SizeOver(n) => cx.leaf(f.size > *n, || {
            format!(
                "size {} bytes {} {n}",
                f.size,
                if f.size > *n { ">" } else { "<=" }
            )
        }),
        Condition::SizeUnder(n) => cx.leaf(f.size < *n, || {
            format!(
                "size {} bytes {} {n}",
                f.size,
                if f.size < *n { "<" } else { ">=" }
            )
        }),
        Condition::AuthResult(method, wanted) => {
            let got: Vec<&str> = f
                .auth
                .iter()
                .filter(|(m, _)| m == method)
                .map(|(_, r)| r.as_str())
                .collect();
            if got.is_empty() {
                return cx.leaf(false, || format!("{method} was not checked (not inbound)"));
            }
            let hit = got.iter().find(|g| wanted.iter().any(|w| w == *g));
            cx.leaf(hit.is_some(), || {
                format!(
                    "{method}={} {} {}",
                    got.join(","),
                    if hit.is_some() { "is in" } else { "is not in" },
                    wanted.join(",")
                )
            })
        }
        Condition::DmarcPolicy(wanted) => match &f.dmarc_policy {
            None => cx.leaf(false, || "no DMARC policy applies".into()),
            Some(p) => cx.leaf(wanted.iter().any(|w| w == p), || {
                format!("DMARC policy is {p} (rule wants {})", wanted.join(","))
            }),
        },
        Condition::RateLimit(index, name) => {
            let (Some(rates), Some(limit)) =
                (cx.rates, cx.rates.and_then(|r| r.limits.get(*index)))
            else {
                return cx.leaf(false, || format!("rate limit {name} not counted here"));
            };
            let keys: Vec<String> = match limit.key {
                LimitKey::ClientIp => f
                    .client_ip
                    .map(crate::transaction::ip_text)
                    .into_iter()
                    .collect(),
                LimitKey::Sender => vec![f.sender.clone()],
                LimitKey::SenderDomain => vec![f.sender_domain().to_owned()],
                LimitKey::AuthUser => f.auth_user.iter().cloned().collect(),
                LimitKey::Recipient => f.recipients.clone(),
            };
            if keys.is_empty() {
                return cx.leaf(false, || {
                    format!("rate limit {name}: the message has no {}", limit.key.name())
                });
            }
            let over: Vec<&String> = keys
                .iter()
                .filter(|k| rates.limiter.exceeded(*index, limit, k, rates.now))
                .collect();
            let per = limit.per.as_secs();
            match over.first() {
                Some(k) => cx.leaf(true, || {
                    format!(
                        "rate limit {name} exceeded for {} {k:?} ({} per {per}s, burst {})",
                        limit.key.name(),
                        limit.count,
                        limit.burst
                    )
                }),
                None => cx.leaf(false, || {
                    format!(
                        "rate limit {name} not exceeded ({} per {per}s)",
                        limit.count
                    )
                }),
            }
        }
        Condition::UrlIpLiteral(want) => {
            let hit = f.links.iter().find(|l| l.ip_literal);
            cx.leaf(hit.is_some() == *want, || match hit {
                Some(l) => format!("a link goes to the IP address {}", l.host),
                None => format!("no link goes to an IP address ({} links)", f.links.len()),
            })
        }
        Condition::UrlTextMismatch(want) => {
            let hit = f.links.iter().find(|l| l.text_mismatch());
            cx.leaf(hit.is_some() == *want, || match hit {
                Some(l) => format!(
                    "a link reads {} but goes to {}",
                    l.text_host.as_deref().unwrap_or("?"),
                    l.host
                ),
                None => format!(
                    "no link text names another site than it goes to ({} links)",
                    f.links.len()
                ),
            })
        }
        Condition::DisposableSender(list) => {
            let domains: Vec<&str> = std::iter::once(f.sender_domain())
                .chain(f.from_address.iter().map(|a| domain_of(a)))
                .filter(|d| !d.is_empty())
                .collect();
            match domains
                .iter()
                .find_map(|d| list.find(d).map(|hit| (*d, hit)))
            {
                Some((d, hit)) => cx.leaf(true, || {
                    format!("sender domain {d} is {hit} in {}", list.source)
                }),
                None => cx.leaf(false, || {
                    format!("{} not in {}", shown_values(&domains), list.source)
                }),
            }
        }
        Condition::Impersonates(imp) => impersonation(imp, cx),
        Condition::Virus(want) => match &f.viruses {
            None => cx.leaf(false, || "not scanned".into()),
            Some(v) => cx.leaf(v.is_empty() != *want, || {
                if v.is_empty() {
                    "clamd found nothing".into()
                } else {
                    format!("clamd found {}", v.join(", "))
                }
            }),
        },
    }
}

fn impersonation(imp: &rule::Impersonation, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    let outside: Vec<(&String, &String)> = f
        .from_name
        .iter()
        .zip(&f.from_address)
        .filter(|(_, addr)| imp.domains.find(domain_of(addr)).is_none())
        .collect();
    if outside.is_empty() {
        return cx.leaf(false, || {
            "From is one of our domains, or has no address".into()
        });
    }
    for (name, addr) in outside {
        let normalized = rule::normalize_name(name);
        if let Some(hit) = imp
            .names
            .iter()
            .find(|n| !n.is_empty() && normalized.contains(n.as_str()))
        {
            return cx.leaf(true, || {
                format!("From {name:?} <{addr}> claims the protected name {hit:?} from outside")
            });
        }
        let lower = name.to_ascii_lowercase();
        if let Some(d) = imp
            .domains
            .domains
            .iter()
            .find(|d| lower.contains(d.as_str()))
        {
            return cx.leaf(true, || {
                format!("From {name:?} <{addr}> names our domain {d} from outside")
            });
        }
    }
    cx.leaf(false, || {
        "no From display name claims a protected name or our domains".into()
    })
}

fn text_values(field: TextField, f: &Facts) -> Vec<&str> {
    fn all(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    match field {
        TextField::ReverseName => vec![&f.reverse_name],
        TextField::Helo => vec![&f.helo],
        TextField::AuthUser => f.auth_user.iter().map(String::as_str).collect(),
        TextField::Sender => vec![&f.sender],
        TextField::SenderDomain => vec![f.sender_domain()],
        TextField::Recipient => all(&f.recipients),
        TextField::RecipientDomain => f.recipients.iter().map(|r| domain_of(r)).collect(),
        TextField::Subject => vec![&f.subject],
        TextField::FromName => all(&f.from_name),
        TextField::FromAddress => all(&f.from_address),
        TextField::Body => vec![&f.body],
        TextField::VirusName => f.viruses.as_deref().map(all).unwrap_or_default(),
        TextField::AttachmentName => f.attachments.iter().map(|a| a.name.as_str()).collect(),
        TextField::AttachmentExt => f.attachments.iter().map(|a| a.ext.as_str()).collect(),
        TextField::AttachmentType => f
            .attachments
            .iter()
            .flat_map(|a| [Some(a.mime.as_str()), a.detected.as_deref()])
            .flatten()
            .filter(|t| !t.is_empty())
            .collect(),
        TextField::UrlHost => f.links.iter().map(|l| l.host.as_str()).collect(),
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn shown_values(values: &[&str]) -> String {
    match values {
        [] => "(none)".into(),
        [one] => format!("{:?}", clip(one)),
        many => format!(
            "{:?}",
            many.iter().take(5).map(|v| clip(v)).collect::<Vec<_>>()
        ),
    }
}

/// The header edits for the non-final actions, against the headers as received.
/// `prefix_subject` is not doubled; `set_header` replaces the first field of that
/// name and removes the others (or adds one).
pub fn edits_for(changes: &[(Action, String)], headers: &[HeaderField]) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (action, _) in changes {
        match action {
            Action::AddHeader(name, value) => edits.push(Edit::AddHeader {
                name: name.clone(),
                value: fold(name, value),
            }),
            Action::SetHeader(name, value) => {
                let exists = headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
                edits.extend(delete_headers(headers, name, 2));
                edits.push(if exists {
                    Edit::ChangeHeader {
                        name: name.clone(),
                        occurrence: 1,
                        value: fold(name, value),
                    }
                } else {
                    Edit::AddHeader {
                        name: name.clone(),
                        value: fold(name, value),
                    }
                });
            }
            Action::RemoveHeader(name) => edits.extend(delete_headers(headers, name, 1)),
            Action::PrefixSubject(prefix) => {
                let subject = headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("Subject"));
                match subject {
                    None => edits.push(Edit::AddHeader {
                        name: "Subject".into(),
                        value: prefix.clone(),
                    }),
                    Some(h) => {
                        let current = keep_folding_only(&String::from_utf8_lossy(&h.value));
                        let current = current.trim_start();
                        if !current.starts_with(prefix.as_str()) {
                            edits.push(Edit::ChangeHeader {
                                name: "Subject".into(),
                                occurrence: 1,
                                value: format!("{prefix} {current}"),
                            });
                        }
                    }
                }
            }
            Action::AddRecipient(address) => edits.push(Edit::AddRecipient {
                address: format!("<{address}>"),
                params: None,
            }),
            // The body is rebuilt by the pipeline, which has the raw message.
            Action::Log(_) | Action::StripAttachments(_) => {}
            Action::Accept
            | Action::Reject(_)
            | Action::Tempfail(_)
            | Action::Discard
            | Action::Quarantine(_) => {}
        }
    }
    edits
}

/// A value from the message, with any line break that is not folding (LF followed
/// by a space or tab) turned into a space and every CR dropped: nothing from the
/// message can start a new header line in one we write.
fn keep_folding_only(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| *c != '\r').collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            '\n' if !matches!(chars.get(i + 1), Some(' ' | '\t')) => ' ',
            other => *other,
        })
        .collect()
}

/// Folds a header value we write at spaces so no line exceeds 78 characters
/// (RFC 5322 §2.1.1); lines are joined with LF and a tab, as milter edits carry them.
pub fn fold(name: &str, value: &str) -> String {
    let mut out = String::new();
    let mut line_len = name.len() + 2;
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            if line_len + 1 + word.len() > 78 {
                out.push_str("\n\t");
                line_len = 1;
            } else {
                out.push(' ');
                line_len += 1;
            }
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}

#[cfg(test)]
mod tests;
