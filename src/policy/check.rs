//! Evaluating one condition: the combinators (`all`, `any`, `not`) and the small
//! leaf conditions here, each larger condition in `conditions.rs`. With `explain`
//! every reason is built and every branch evaluated; without it `all` and `any`
//! stop at the first condition that decides them.

use super::conditions;
use super::{Check, Facts, Rates};
use crate::config::Condition;

/// What a condition is evaluated against, and whether reasons are wanted.
pub(super) struct Cx<'a, 'r> {
    pub f: &'a Facts,
    pub rates: Option<&'a Rates<'r>>,
    /// Build every reason and evaluate every condition (for `scan`); otherwise
    /// `all` and `any` stop at the first condition that decides them.
    pub explain: bool,
}

impl Cx<'_, '_> {
    pub fn leaf(&self, matched: bool, why: impl FnOnce() -> String) -> Check {
        Check {
            matched,
            why: if self.explain { why() } else { String::new() },
            children: Vec::new(),
        }
    }
}

/// Evaluates one condition, with its reason (rate limits count as not exceeded).
#[cfg(test)]
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

pub(super) fn check_with(c: &Condition, cx: &Cx<'_, '_>) -> Check {
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
        Condition::Text(field, matcher) => conditions::text(field, matcher, cx),
        Condition::Header(name, matcher) => conditions::header(name, matcher, cx),
        Condition::ClientIp(nets) => conditions::client_ip(nets, cx),
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
        Condition::AuthResult(method, wanted) => conditions::auth_result(method, wanted, cx),
        Condition::DmarcPolicy(wanted) => match &f.dmarc_policy {
            None => cx.leaf(false, || "no DMARC policy applies".into()),
            Some(p) => cx.leaf(wanted.iter().any(|w| w == p), || {
                format!("DMARC policy is {p} (rule wants {})", wanted.join(","))
            }),
        },
        Condition::RateLimit(index, name) => conditions::rate_limit(index, name, cx),
        Condition::UrlIpLiteral(want) => conditions::url_ip_literal(want, cx),
        Condition::UrlTextMismatch(want) => conditions::url_text_mismatch(want, cx),
        Condition::DisposableSender(list) => conditions::disposable_sender(list, cx),
        Condition::Impersonates(imp) => conditions::impersonation(imp, cx),
        Condition::Virus(want) => conditions::virus(want, cx),
    }
}
