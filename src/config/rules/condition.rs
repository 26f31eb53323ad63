//! The `when` side of a rule: each key of a condition table parsed into a
//! [`Condition`], with nested `any`/`all`/`not` and the file:line of every error.

use std::ops::Range;

use toml::Value;

use super::*;

impl RuleCtx<'_, '_> {
    /// A `when`-style table: every key is a condition and all must hold.
    pub(super) fn condition_table(
        &mut self,
        v: &Value,
        at: &str,
        span: &Range<usize>,
    ) -> Option<Condition> {
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

    pub(super) fn condition(
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
                self.err(
                    span,
                    field,
                    format!(
                        "unknown condition {other:?}; known: {}",
                        known_conditions().join(", ")
                    ),
                );
                None
            }
        }
    }
}

/// Every condition name, as the error for an unknown one lists them.
pub(crate) fn known_conditions() -> Vec<&'static str> {
    TextField::ALL
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
            "rate_limit",
            "virus",
            "url_ip_literal",
            "url_text_mismatch",
            "disposable_sender",
            "impersonates",
            "any",
            "not",
        ])
        .collect()
}

#[cfg(test)]
mod tests {
    /// Each name the error lists is one the parser takes: none gets "unknown
    /// condition" (whatever else a bare `true` may be wrong for).
    #[test]
    fn every_listed_condition_is_known() {
        for name in super::known_conditions() {
            let source = format!(
                "[[rules]]\nname = \"x\"\nwhen = {{ {name} = true }}\nthen = {{ action = \"accept\" }}\n"
            );
            if let Err(e) = crate::config::parse_str(&source, None) {
                assert!(!e.to_string().contains("unknown condition"), "{name}: {e}");
            }
        }
    }
}
