//! `[[rules]]` and `[policy]`: each rule's `when` (conditions) and `then` (actions)
//! checked and compiled at load time, so a bad regex, an unknown condition, an
//! action missing a field or a list file that cannot be read is a `check-config`
//! error naming the rule and the field, never a surprise at the first message.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::{Spanned, Value};

use super::parse::{Checker, S};
use super::units::parse_size;
use crate::policy::rule::AUTH_METHODS;
use crate::policy::rule::{DomainList, Impersonation, normalize_name};
use crate::policy::{
    Action, Condition, LimitKey, Matcher, Pattern, RateLimit, Rule, StripSpec, TextField,
};
use crate::reply::SmtpReply;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    mode: S<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: S<String>,
    when: Option<Spanned<Value>>,
    then: Option<Spanned<Value>>,
    stop: Option<bool>,
    mode: S<String>,
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

/// Returns the global monitor switch.
pub(super) fn check_policy(c: &mut Checker<'_>, raw: RawPolicy) -> bool {
    c.value(raw.mode, "policy.mode", false, parse_monitor)
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
    fn err(&mut self, span: &Range<usize>, field: &str, reason: impl Into<String>) {
        let key = format!("{}.{field}", self.prefix);
        self.c.error(Some(span.clone()), &key, reason);
    }

    /// A `when`-style table: every key is a condition and all must hold.
    fn condition_table(&mut self, v: &Value, at: &str, span: &Range<usize>) -> Option<Condition> {
        let Some(table) = v.as_table() else {
            self.err(
                span,
                at,
                "must be a table of conditions, like { sender_domain = \"example.com\" }",
            );
            return None;
        };
        let mut all = Vec::new();
        let mut ok = true;
        for (key, value) in table {
            let field = format!("{at}.{key}");
            match self.condition(key, value, &field, span) {
                Some(c) => all.push(c),
                None => ok = false,
            }
        }
        ok.then_some(Condition::All(all))
    }

    fn condition(
        &mut self,
        key: &str,
        v: &Value,
        field: &str,
        span: &Range<usize>,
    ) -> Option<Condition> {
        if let Some((_, tf)) = TextField::ALL.iter().find(|(n, _)| *n == key) {
            let lower_ext = *tf == TextField::AttachmentExt;
            return self
                .matcher(v, field, span, lower_ext)
                .map(|m| Condition::Text(*tf, m));
        }
        if let Some(method) = AUTH_METHODS.iter().find(|m| **m == key) {
            const RESULTS: [&str; 8] = [
                "pass",
                "fail",
                "softfail",
                "neutral",
                "none",
                "temperror",
                "permerror",
                "policy",
            ];
            return self
                .words(v, field, span, &RESULTS)
                .map(|w| Condition::AuthResult(method, w));
        }
        match key {
            "any" => {
                let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
                    self.err(span, field, "must be a non-empty list of condition tables");
                    return None;
                };
                let mut any = Vec::new();
                for (i, item) in list.iter().enumerate() {
                    any.push(self.condition_table(item, &format!("{field}[{i}]"), span)?);
                }
                Some(Condition::Any(any))
            }
            "not" => self
                .condition_table(v, field, span)
                .map(|c| Condition::Not(Box::new(c))),
            "header" => {
                let Some(t) = v.as_table() else {
                    self.err(
                        span,
                        field,
                        "must be a table like { name = \"X-Mailer\", regex = \"...\" }",
                    );
                    return None;
                };
                let Some(name) = t.get("name").and_then(Value::as_str) else {
                    self.err(span, &format!("{field}.name"), "is required");
                    return None;
                };
                self.header_name(name, field, span)?;
                let mut rest = t.clone();
                rest.remove("name");
                let matcher_value = match rest.remove("value") {
                    Some(v) if rest.is_empty() => v,
                    Some(_) => {
                        self.err(span, field, "give one of value, glob, regex or file");
                        return None;
                    }
                    None => Value::Table(rest),
                };
                self.matcher(&matcher_value, field, span, false)
                    .map(|m| Condition::Header(name.to_owned(), m))
            }
            "client_ip" => {
                let items = self.list_items(v, field, span)?;
                let mut nets = Vec::new();
                for item in items {
                    match parse_net(&item) {
                        Ok(n) => nets.push(n),
                        Err(e) => {
                            self.err(span, field, e);
                            return None;
                        }
                    }
                }
                Some(Condition::ClientIp(nets))
            }
            "direction" => match v.as_str() {
                Some("inbound") => Some(Condition::Inbound(true)),
                Some("outbound") => Some(Condition::Inbound(false)),
                _ => {
                    self.err(span, field, "must be \"inbound\" or \"outbound\"");
                    None
                }
            },
            "size_over" | "size_under" => {
                let parsed = v.as_str().map(parse_size).or_else(|| {
                    v.as_integer()
                        .map(|n| u64::try_from(n).map_err(|e| e.to_string()))
                });
                match parsed {
                    Some(Ok(n)) if key == "size_over" => Some(Condition::SizeOver(n)),
                    Some(Ok(n)) => Some(Condition::SizeUnder(n)),
                    Some(Err(e)) => {
                        self.err(span, field, e);
                        None
                    }
                    None => {
                        self.err(span, field, "must be a size like \"10MiB\"");
                        None
                    }
                }
            }
            "dmarc_policy" => self
                .words(v, field, span, &["none", "quarantine", "reject"])
                .map(Condition::DmarcPolicy),
            "rate_limit" => {
                let name = v.as_str().unwrap_or_default();
                match self.limits.iter().position(|l| l.name == name) {
                    Some(i) => Some(Condition::RateLimit(i, name.to_owned())),
                    None => {
                        let known: Vec<&str> =
                            self.limits.iter().map(|l| l.name.as_str()).collect();
                        self.err(
                            span,
                            field,
                            format!(
                                "{name:?} is not a [[rate_limits]] name{}",
                                if known.is_empty() {
                                    " (none are defined)".to_owned()
                                } else {
                                    format!("; defined: {}", known.join(", "))
                                }
                            ),
                        );
                        None
                    }
                }
            }
            "virus" | "url_ip_literal" | "url_text_mismatch" => match v.as_bool() {
                Some(b) => Some(match key {
                    "virus" => Condition::Virus(b),
                    "url_ip_literal" => Condition::UrlIpLiteral(b),
                    _ => Condition::UrlTextMismatch(b),
                }),
                None => {
                    self.err(span, field, "must be true or false");
                    None
                }
            },
            "disposable_sender" => self
                .domain_list(v, field, span)
                .map(Condition::DisposableSender),
            "impersonates" => {
                let Some(t) = v.as_table() else {
                    self.err(span, field, "must be a table like { names = [\"Jane Doe\"], domains = [\"example.com\"] }");
                    return None;
                };
                if let Some(k) = t.keys().find(|k| *k != "names" && *k != "domains") {
                    self.err(
                        span,
                        &format!("{field}.{k}"),
                        "is not a field of impersonates (names, domains)",
                    );
                    return None;
                }
                let names = match t.get("names") {
                    Some(v) => self.list_items(v, &format!("{field}.names"), span)?,
                    None => Vec::new(),
                };
                let domains = match t.get("domains") {
                    Some(v) => self.domain_list(v, &format!("{field}.domains"), span)?,
                    None => {
                        self.err(
                            span,
                            &format!("{field}.domains"),
                            "is required: our own domains, whose senders are not impersonating",
                        );
                        return None;
                    }
                };
                Some(Condition::Impersonates(Impersonation {
                    names: names.iter().map(|n| normalize_name(n)).collect(),
                    domains,
                }))
            }
            other => {
                let known: Vec<&str> = TextField::ALL
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(AUTH_METHODS)
                    .chain([
                        "header",
                        "client_ip",
                        "direction",
                        "size_over",
                        "size_under",
                        "dmarc_policy",
                        "virus",
                        "any",
                        "not",
                    ])
                    .collect();
                self.err(
                    span,
                    field,
                    format!("unknown condition {other:?}; known: {}", known.join(", ")),
                );
                None
            }
        }
    }

    /// Domains from a string, a list or `{ file = "..." }`, checked and lower-cased.
    fn domain_list(&mut self, v: &Value, field: &str, span: &Range<usize>) -> Option<DomainList> {
        let source = match v {
            Value::Table(t) => format!(
                "list file {}",
                self.base
                    .join(t.get("file").and_then(Value::as_str).unwrap_or_default())
                    .display()
            ),
            _ => field.rsplit('.').next().unwrap_or(field).to_owned(),
        };
        let items = self.list_items(v, field, span)?;
        let mut domains = Vec::with_capacity(items.len());
        for item in items {
            match super::parse::parse_domain(item.trim_start_matches("*.")) {
                Ok(d) => domains.push(d),
                Err(e) => {
                    self.err(span, field, format!("{item:?}: {e}"));
                    return None;
                }
            }
        }
        Some(DomainList { domains, source })
    }

    /// Strings from a string, a list of strings, or `{ file = "..." }`.
    fn list_items(&mut self, v: &Value, field: &str, span: &Range<usize>) -> Option<Vec<String>> {
        match v {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect();
                if strings.is_none() {
                    self.err(span, field, "must be a list of strings");
                }
                strings
            }
            Value::Table(t) if t.len() == 1 && t.contains_key("file") => {
                let file = t.get("file").and_then(Value::as_str).unwrap_or_default();
                self.read_list(file, field, span).map(|(_, lines)| lines)
            }
            _ => {
                self.err(
                    span,
                    field,
                    "must be a string, a list of strings or { file = \"...\" }",
                );
                None
            }
        }
    }

    /// Lines of a list file (relative to the config file), `#` comments and blank
    /// lines skipped.
    fn read_list(
        &mut self,
        file: &str,
        field: &str,
        span: &Range<usize>,
    ) -> Option<(PathBuf, Vec<String>)> {
        let path = self.base.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Some((
                path,
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect(),
            )),
            Err(e) => {
                self.err(
                    span,
                    field,
                    format!("cannot read list file {}: {e}", path.display()),
                );
                None
            }
        }
    }

    fn words(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
        allowed: &[&str],
    ) -> Option<Vec<String>> {
        let items = self.list_items(v, field, span)?;
        for item in &items {
            if !allowed.contains(&item.as_str()) {
                self.err(
                    span,
                    field,
                    format!("{item:?} is not one of {}", allowed.join(", ")),
                );
                return None;
            }
        }
        Some(items)
    }

    /// A text matcher: "exact", ["a", "b"], { glob = ... }, { regex = ... },
    /// { file = "..." } (one entry per line; entries with * or ? are globs).
    fn matcher(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
        extension: bool,
    ) -> Option<Matcher> {
        let exact = |s: &str| {
            let s = if extension {
                s.trim_start_matches('.').to_ascii_lowercase()
            } else {
                s.to_owned()
            };
            Pattern::Exact(s)
        };
        let Value::Table(t) = v else {
            let items = self.list_items(v, field, span)?;
            return Some(Matcher {
                patterns: items.iter().map(|s| exact(s)).collect(),
                source: None,
            });
        };
        if t.len() != 1 {
            self.err(span, field, "give exactly one of glob, regex or file");
            return None;
        }
        let (kind, value) = t.iter().next()?;
        match kind.as_str() {
            "file" => {
                let file = value.as_str().unwrap_or_default();
                let (path, lines) = self.read_list(file, field, span)?;
                let mut patterns = Vec::new();
                for line in lines {
                    if line.contains(['*', '?']) {
                        patterns.push(Pattern::Regex(self.compile(&glob(&line), field, span)?));
                    } else {
                        patterns.push(exact(&line));
                    }
                }
                Some(Matcher {
                    patterns,
                    source: Some(format!("list file {}", path.display())),
                })
            }
            "glob" | "regex" => {
                let items = self.list_items(value, &format!("{field}.{kind}"), span)?;
                let mut patterns = Vec::new();
                for item in items {
                    let re = if kind == "glob" { glob(&item) } else { item };
                    patterns.push(Pattern::Regex(self.compile(&re, field, span)?));
                }
                Some(Matcher {
                    patterns,
                    source: None,
                })
            }
            other => {
                self.err(
                    span,
                    field,
                    format!("unknown matcher {other:?}: use glob, regex or file"),
                );
                None
            }
        }
    }

    /// `Some(())` when `name` can be a header field name; else an error at
    /// `field.name`.
    fn header_name(&mut self, name: &str, field: &str, span: &Range<usize>) -> Option<()> {
        if valid_header_name(name) {
            return Some(());
        }
        self.err(
            span,
            &format!("{field}.name"),
            format!("{name:?} is not a header name"),
        );
        None
    }

    fn compile(&mut self, re: &str, field: &str, span: &Range<usize>) -> Option<Regex> {
        match RegexBuilder::new(re).size_limit(1 << 20).build() {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(span, field, format!("bad regular expression {re:?}: {e}"));
                None
            }
        }
    }

    fn actions(&mut self, v: &Value, span: &Range<usize>, rule: &str) -> Vec<Action> {
        let tables: Vec<&Value> = match v {
            Value::Table(_) => vec![v],
            Value::Array(list) if !list.is_empty() => list.iter().collect(),
            _ => {
                self.err(
                    span,
                    "then",
                    "must be an action table or a non-empty list of them",
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, t) in tables.iter().enumerate() {
            let field = if tables.len() == 1 {
                "then".to_owned()
            } else {
                format!("then[{i}]")
            };
            if let Some(a) = self.action(t, &field, span, rule) {
                out.push(a);
            }
        }
        out
    }

    fn action(
        &mut self,
        v: &Value,
        field: &str,
        span: &Range<usize>,
        rule: &str,
    ) -> Option<Action> {
        let Some(t) = v.as_table() else {
            self.err(span, field, "must be a table like { action = \"reject\" }");
            return None;
        };
        let Some(kind) = t.get("action").and_then(Value::as_str) else {
            self.err(span, &format!("{field}.action"), "is required");
            return None;
        };
        let allowed: &[&str] = match kind {
            "accept" | "discard" => &[],
            "reject" | "tempfail" => &["code", "text"],
            "quarantine" => &["reason"],
            "add_header" | "set_header" => &["name", "value"],
            "remove_header" => &["name"],
            "prefix_subject" => &["prefix"],
            "add_recipient" => &["address"],
            "log" => &["tag"],
            "strip_attachments" => &["ext", "name", "type"],
            other => {
                self.err(
                    span,
                    &format!("{field}.action"),
                    format!("unknown action {other:?}; known: accept, reject, tempfail, discard, quarantine, add_header, set_header, remove_header, prefix_subject, add_recipient, strip_attachments, log"),
                );
                return None;
            }
        };
        for key in t.keys() {
            if key != "action" && !allowed.contains(&key.as_str()) {
                self.err(
                    span,
                    &format!("{field}.{key}"),
                    format!("is not a field of {kind}"),
                );
                return None;
            }
        }
        let text = |name: &str| t.get(name).and_then(Value::as_str).map(str::to_owned);
        let required = |this: &mut Self, name: &str| {
            let v = text(name);
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                this.err(
                    span,
                    &format!("{field}.{name}"),
                    format!("is required for {kind}"),
                );
            }
            v
        };
        match kind {
            "accept" => Some(Action::Accept),
            "discard" => Some(Action::Discard),
            "reject" | "tempfail" => {
                let reply = self.reply(t, kind, field, span, rule)?;
                Some(if kind == "reject" {
                    Action::Reject(reply)
                } else {
                    Action::Tempfail(reply)
                })
            }
            "quarantine" => Some(Action::Quarantine(
                text("reason").unwrap_or_else(|| format!("policy rule {rule}")),
            )),
            "add_header" | "set_header" => {
                let name = required(self, "name")?;
                let value = required(self, "value")?;
                self.header_name(&name, field, span)?;
                if value.contains(['\r', '\n']) || value.len() > 900 {
                    self.err(
                        span,
                        &format!("{field}.value"),
                        "must be one line of at most 900 characters (mailwarden folds it)",
                    );
                    return None;
                }
                Some(if kind == "add_header" {
                    Action::AddHeader(name, value)
                } else {
                    Action::SetHeader(name, value)
                })
            }
            "remove_header" => {
                let name = required(self, "name")?;
                self.header_name(&name, field, span)?;
                Some(Action::RemoveHeader(name))
            }
            "prefix_subject" => {
                let prefix = required(self, "prefix")?;
                if prefix.contains(['\r', '\n']) || prefix.len() > 100 {
                    self.err(span, &format!("{field}.prefix"), "must be one short line");
                    return None;
                }
                Some(Action::PrefixSubject(prefix))
            }
            "add_recipient" => {
                let address = required(self, "address")?;
                let valid = address.split_once('@').is_some_and(|(l, d)| {
                    !l.is_empty()
                        && !d.is_empty()
                        && !address.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c))
                });
                if !valid {
                    self.err(
                        span,
                        &format!("{field}.address"),
                        format!("{address:?} is not a mail address like security@example.com"),
                    );
                    return None;
                }
                Some(Action::AddRecipient(address))
            }
            "log" => Some(Action::Log(text("tag").unwrap_or_else(|| rule.to_owned()))),
            "strip_attachments" => {
                let mut spec = StripSpec::default();
                for (key, slot) in [
                    ("ext", &mut spec.ext),
                    ("name", &mut spec.name),
                    ("type", &mut spec.mime),
                ] {
                    if let Some(v) = t.get(key) {
                        *slot =
                            Some(self.matcher(v, &format!("{field}.{key}"), span, key == "ext")?);
                    }
                }
                Some(Action::StripAttachments(spec))
            }
            _ => None,
        }
    }

    /// `code` and `text` for reject/tempfail. The text may start with the enhanced
    /// status code ("5.7.1 not accepted"); a list is a multi-line reply.
    fn reply(
        &mut self,
        t: &toml::Table,
        kind: &str,
        field: &str,
        span: &Range<usize>,
        rule: &str,
    ) -> Option<SmtpReply> {
        let (default_code, default_status) = if kind == "reject" {
            (550, "5.7.1")
        } else {
            (451, "4.7.1")
        };
        let code = match t.get("code") {
            None => default_code,
            Some(v) => match v.as_integer().and_then(|n| u16::try_from(n).ok()) {
                Some(c)
                    if (kind == "reject" && (500..600).contains(&c))
                        || (kind == "tempfail" && (400..500).contains(&c)) =>
                {
                    c
                }
                _ => {
                    self.err(
                        span,
                        &format!("{field}.code"),
                        format!(
                            "must be a {} code for {kind}",
                            if kind == "reject" { "5xx" } else { "4xx" }
                        ),
                    );
                    return None;
                }
            },
        };
        let lines: Vec<String> = match t.get("text") {
            None => vec![format!("rejected by policy rule {rule}")],
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_str) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(_) => {
                self.err(
                    span,
                    &format!("{field}.text"),
                    "must be a string or a list of lines",
                );
                return None;
            }
        };
        // A leading "5.7.1 " in the first line is the enhanced status code.
        let (status, mut lines) = match lines[0].split_once(' ') {
            Some((first, rest))
                if first.split('.').count() == 3
                    && first.split('.').all(|p| p.parse::<u16>().is_ok()) =>
            {
                let mut l = lines.clone();
                l[0] = rest.to_owned();
                (first.to_owned(), l)
            }
            _ => (format!("{}{}", code / 100, &default_status[1..]), lines),
        };
        if lines.iter().any(|l| l.contains(['\r', '\n'])) {
            self.err(
                span,
                &format!("{field}.text"),
                "lines must not contain line breaks; give a list for several lines",
            );
            return None;
        }
        lines.retain(|l| !l.is_empty());
        if lines.is_empty() {
            lines.push(format!("rejected by policy rule {rule}"));
        }
        match SmtpReply::new(code, &status, &lines) {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(span, &format!("{field}.text"), e.to_string());
                None
            }
        }
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
