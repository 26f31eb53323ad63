//! `[[rules]]` and `[policy]`: each rule's `when` (conditions) and `then` (actions)
//! checked and compiled at load time, so a bad regex, an unknown condition, an
//! action missing a field or a list file that cannot be read is a `check-config`
//! error naming the rule and the field, never a surprise at the first message.

use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::{Spanned, Value};

mod action;
mod condition;
mod lists;

use super::check::Checker;
use super::parse::S;
use super::units::parse_size;

use super::rate_limit::{LimitKey, RateLimit};
use super::rule::{
    AUTH_METHODS, Action, Condition, DomainList, Enforcer, Impersonation, Matcher, Pattern, Rule,
    StripSpec, TextField, normalize_name,
};
use crate::reply::SmtpReply;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    mode: S<String>,
    rate_limit_keys: S<i64>,
    archive_depth: S<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: S<String>,
    when: Option<Spanned<Value>>,
    then: Option<Spanned<Value>>,
    stop: Option<bool>,
    mode: S<String>,
    skip: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    name: S<String>,
    key: S<String>,
    rate: S<String>,
    burst: S<i64>,
}

pub(super) fn check_rate_limits(
    c: &mut Checker<'_>,
    raw: Vec<Spanned<RawRateLimit>>,
) -> Vec<RateLimit> {
    let mut out: Vec<RateLimit> = Vec::new();
    for (i, spanned) in raw.into_iter().enumerate() {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let at = |f: &str| format!("rate_limits[{i}].{f}");
        let name = match raw.name {
            Some(n) if !n.get_ref().trim().is_empty() => {
                if out.iter().any(|l| l.name == n.get_ref().trim()) {
                    c.error(
                        Some(n.span()),
                        &at("name"),
                        "is used by an earlier rate limit",
                    );
                }
                n.get_ref().trim().to_owned()
            }
            _ => {
                c.error(Some(span.clone()), &at("name"), "is required");
                continue;
            }
        };
        let Some(key) = raw.key else {
            c.error(
                Some(span.clone()),
                &at("key"),
                "is required: client_ip, sender, sender_domain, auth_user or recipient",
            );
            continue;
        };
        let key = c.value(Some(key), &at("key"), LimitKey::Sender, |t| {
            LimitKey::ALL
                .iter()
                .find(|(n, _)| *n == t)
                .map(|(_, k)| *k)
                .ok_or_else(|| format!("{t:?} is not a key: use client_ip, sender, sender_domain, auth_user or recipient"))
        });
        let Some(rate) = raw.rate else {
            c.error(
                Some(span.clone()),
                &at("rate"),
                "is required, like \"100/hour\"",
            );
            continue;
        };
        let (count, per) = c.value(Some(rate), &at("rate"), (1, Duration::from_secs(1)), |t| {
            let (n, unit) = t
                .split_once('/')
                .ok_or_else(|| format!("{t:?} is not a rate like \"100/hour\""))?;
            let n: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{t:?}: the count must be a positive number"))?;
            let per = match unit.trim() {
                "second" | "s" => 1,
                "minute" | "min" | "m" => 60,
                "hour" | "h" => 3600,
                "day" | "d" => 86_400,
                other => return Err(format!("{other:?} is not second, minute, hour or day")),
            };
            Ok((n, Duration::from_secs(per)))
        });
        let burst = c.integer(raw.burst, &at("burst"), count, 1..1_000_001);
        out.push(RateLimit {
            name,
            key,
            count,
            per,
            burst,
        });
    }
    out
}

/// `[policy]`: monitor mode for every rule, how many rate-limit buckets are kept,
/// and how deep into zip archives inside zip archives member names are read.
pub(super) fn check_policy(c: &mut Checker<'_>, raw: RawPolicy) -> (bool, usize, u32) {
    let monitor = c.value(raw.mode, "policy.mode", false, parse_monitor);
    let keys = c.integer(
        raw.rate_limit_keys,
        "policy.rate_limit_keys",
        100_000,
        2..100_000_001,
    );
    let depth = c.integer(raw.archive_depth, "policy.archive_depth", 3, 0..9);
    (monitor, keys as usize, depth)
}

/// `mode = "enforce" | "monitor"`, for `[policy]` and for each rule: true for monitor.
fn parse_monitor(t: &str) -> Result<bool, String> {
    match t {
        "enforce" => Ok(false),
        "monitor" => Ok(true),
        other => Err(format!(
            "{other:?} is not a mode: use \"enforce\" or \"monitor\" (log what rules would do, change nothing)"
        )),
    }
}

pub(super) fn check_rules(
    c: &mut Checker<'_>,
    raw: Vec<Spanned<RawRule>>,
    config_file: Option<&Path>,
    limits: &[RateLimit],
) -> Vec<Rule> {
    let base = super::parse::config_dir(config_file);
    let mut rules = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, spanned) in raw.into_iter().enumerate() {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let name = match raw.name {
            Some(n) if n.get_ref().chars().any(char::is_control) => {
                c.error(
                    Some(n.span()),
                    &format!("rules[{i}].name"),
                    "has a control character (a line break or tab): rule names go into log lines",
                );
                format!("#{i}")
            }
            Some(n) if !n.get_ref().trim().is_empty() => {
                let text = n.get_ref().trim().to_owned();
                if names.contains(&text) {
                    c.error(
                        Some(n.span()),
                        &format!("rules[{i}].name"),
                        format!("{text:?} is used by an earlier rule; rule names must be unique"),
                    );
                }
                text
            }
            other => {
                c.error(
                    other.map(|n| n.span()).or(Some(span.clone())),
                    &format!("rules[{i}].name"),
                    "is required (it names the rule in logs and explanations)",
                );
                format!("#{i}")
            }
        };
        names.push(name.clone());
        let mut ctx = RuleCtx {
            c: &mut *c,
            prefix: format!("rules[{i}] ({name})"),
            base: &base,
            limits,
        };
        let when = match raw.when {
            Some(w) => {
                let span = w.span();
                ctx.condition_table(w.get_ref(), "when", &span)
            }
            None => {
                ctx.err(
                    &span,
                    "when",
                    "is required (`when = {}` matches every message)",
                );
                None
            }
        };
        let then = match raw.then {
            Some(t) => {
                let span = t.span();
                ctx.actions(t.get_ref(), &span, &name)
            }
            None => {
                ctx.err(
                    &span,
                    "then",
                    "is required: one action table or a list of them",
                );
                Vec::new()
            }
        };
        let monitor = ctx.c.value(
            raw.mode,
            &format!("rules[{i}] ({name}).mode"),
            false,
            parse_monitor,
        );
        let skip = ctx.c.list(
            raw.skip.unwrap_or_default(),
            &format!("rules[{i}] ({name}).skip"),
            |t| {
                Enforcer::ALL
                    .iter()
                    .find(|(n, _)| *n == t)
                    .map(|(_, e)| *e)
                    .ok_or_else(|| {
                        format!(
                            "{t:?} is not a check a rule can skip: use dmarc, antivirus or content"
                        )
                    })
            },
        );
        let has_final = then.iter().any(Action::is_final);
        if then.iter().filter(|a| a.is_final()).count() > 1 {
            ctx.err(
                &span,
                "then",
                "has more than one final action (accept, reject, tempfail, discard, quarantine)",
            );
        }
        if let Some(when) = when {
            rules.push(Rule {
                name,
                when,
                then,
                stop: raw.stop.unwrap_or(has_final),
                monitor,
                skip,
            });
        }
    }
    rules
}

struct RuleCtx<'c, 'a> {
    c: &'c mut Checker<'a>,
    prefix: String,
    base: &'c Path,
    limits: &'c [RateLimit],
}

impl RuleCtx<'_, '_> {
    /// An error about `field` of the rule, at the line of its last key when that
    /// key stands once inside `span`.
    fn err(&mut self, span: &Range<usize>, field: &str, reason: impl Into<String>) {
        let key = format!("{}.{field}", self.prefix);
        let last = field.rsplit('.').next().unwrap_or(field);
        let last = last.split('[').next().unwrap_or(last);
        let span = self.c.narrow(span, last);
        self.c.error(Some(span), &key, reason);
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 76 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    IpNet::from_str(s)
        .or_else(|_| std::net::IpAddr::from_str(s).map(IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or network like 192.0.2.0/24"))
}

/// A shell-style glob as an anchored, case-insensitive regex: `*` any run, `?` one
/// character, everything else literal.
fn glob(pattern: &str) -> String {
    let mut re = String::from("(?i)^");
    for ch in pattern.chars() {
        match ch {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    re
}
