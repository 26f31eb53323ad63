//! The `then` side of a rule: each action table parsed into an [`Action`], with
//! its SMTP reply built and checked.

use std::ops::Range;

use toml::Value;

use super::*;

impl RuleCtx<'_, '_> {
    pub(super) fn actions(&mut self, v: &Value, span: &Range<usize>, rule: &str) -> Vec<Action> {
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

    pub(super) fn action(
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
    pub(super) fn reply(
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
