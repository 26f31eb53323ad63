//! `mailwarden scan`: runs the whole pipeline on a message file, offline from any
//! MTA but against real DNS, and explains the outcome: direction, every method's
//! result with its reason, the header we would add, the edits and the verdict.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::decision::{Edit, Verdict};
use crate::milter::client::SplitMessage;
use crate::pipeline::{Findings, Pipeline};
use crate::policy::Check;
use crate::scan::Outcome;
use crate::transaction::{Client, EnvelopeAddress, HeaderField, Macros, Transaction};

/// The envelope `scan` pretends Postfix gave us.
pub struct ScanInput {
    pub ip: IpAddr,
    pub helo: String,
    pub from: String,
    pub rcpt: Vec<String>,
    pub auth: Option<String>,
    pub message: Vec<u8>,
    /// Keep at most this much of the body, as a session does (`server.max_message_size`).
    pub max_body: usize,
}

impl ScanInput {
    pub fn transaction(&self) -> Transaction {
        let split = SplitMessage::parse(&self.message);
        let mut macros = std::collections::BTreeMap::new();
        macros.insert("i".to_owned(), Bytes::from_static(b"SCAN"));
        if let Some(user) = &self.auth {
            macros.insert("auth_authen".to_owned(), Bytes::from(user.clone()));
        }
        let body_size = split.body.len() as u64;
        let mut body = split.body;
        body.truncate(self.max_body);
        Transaction {
            session_id: 0,
            client: Client {
                hostname: format!("[{}]", self.ip),
                ip: Some(self.ip),
                port: None,
                helo: Some(self.helo.clone()),
            },
            macros: Macros::new(macros),
            sender: EnvelopeAddress {
                raw: format!("<{}>", self.from),
                params: Vec::new(),
            },
            recipients: self
                .rcpt
                .iter()
                .map(|r| EnvelopeAddress {
                    raw: format!("<{r}>"),
                    params: Vec::new(),
                })
                .collect(),
            headers: split
                .headers
                .into_iter()
                .map(|(name, value)| HeaderField {
                    name,
                    value: Bytes::from(value),
                })
                .collect(),
            headers_exact: true,
            body: Bytes::from(body),
            body_size,
            headers_dropped: 0,
        }
    }
}

pub async fn run(pipeline: &Pipeline, input: &ScanInput) -> Findings {
    let tx = Arc::new(input.transaction());
    pipeline.run(&tx).await
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Reject(r) | Verdict::Tempfail(r) => format!("{} {}", v.label(), r),
        _ => v.label().to_owned(),
    }
}

fn edit_text(e: &Edit) -> String {
    match e {
        Edit::AddHeader { name, value } => format!("add header {name}: {value}"),
        Edit::InsertHeader { index, name, value } => {
            format!("insert header at {index}: {name}: {value}")
        }
        Edit::ChangeHeader {
            name,
            occurrence,
            value,
        } => format!("change header {name} #{occurrence}: {value}"),
        Edit::DeleteHeader { name, occurrence } => format!("delete header {name} #{occurrence}"),
        Edit::ReplaceBody(b) => format!("replace body ({} bytes)", b.len()),
        Edit::AddRecipient { address, .. } => format!("add recipient {address}"),
        Edit::DeleteRecipient { address } => format!("delete recipient {address}"),
        Edit::ChangeSender { address, .. } => format!("change sender to {address}"),
        Edit::Quarantine { reason } => format!("quarantine: {reason}"),
    }
}

/// A human explanation, one fact per line.
pub fn text(f: &Findings) -> String {
    let mut out = format!("direction: {}\n", f.observation.direction);
    match &f.observation.auth {
        None => out.push_str("authentication: not checked (not inbound)\n"),
        Some(report) => {
            out.push_str("authentication:\n");
            for m in report.methods() {
                let props: Vec<String> = m.props.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!(
                    "  {:<6} {:<10} {}{}\n",
                    m.method,
                    m.result.as_str(),
                    props.join(" "),
                    m.reason
                        .as_deref()
                        .map(|r| format!("  ({r})"))
                        .unwrap_or_default()
                ));
            }
            if let Some(d) = &report.disposition {
                out.push_str(&format!(
                    "  dmarc policy: requested {}, applied {}{}\n",
                    d.requested.as_str(),
                    d.applied.as_str(),
                    d.override_by
                        .as_deref()
                        .map(|s| format!(" (overridden by trusted ARC sealer {s})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out.push_str(&format!(
        "antivirus: {}\n",
        scan_text(f.observation.scan.as_ref())
    ));
    if let Some(eval) = &f.observation.policy {
        out.push_str("rules:\n");
        for t in &eval.trace {
            let mode = if t.monitor { " [monitor]" } else { "" };
            match &t.check {
                None => out.push_str(&format!(
                    "  {}{mode}: not evaluated (an earlier rule stopped)\n",
                    t.name
                )),
                Some(check) => {
                    out.push_str(&format!(
                        "  {}{mode}: {}{}\n",
                        t.name,
                        if check.matched { "MATCHED" } else { "no match" },
                        if t.actions.is_empty() {
                            String::new()
                        } else {
                            format!(" -> {}", t.actions.join("; "))
                        }
                    ));
                    check_text(check, 2, &mut out);
                }
            }
        }
    }
    out.push_str("edits:\n");
    for e in &f.decision.edits {
        out.push_str(&format!("  {}\n", edit_text(e).replace("\n", "\n    ")));
    }
    out.push_str(&format!("verdict: {}\n", verdict_text(&f.decision.verdict)));
    out.push_str(&format!("reason: {}\n", f.decision.reason));
    out
}

fn check_text(check: &Check, depth: usize, out: &mut String) {
    out.push_str(&format!(
        "{}{} {}\n",
        "  ".repeat(depth),
        if check.matched { "+" } else { "-" },
        check.why
    ));
    for child in &check.children {
        check_text(child, depth + 1, out);
    }
}

fn check_json(check: &Check) -> Value {
    json!({
        "matched": check.matched,
        "why": check.why,
        "conditions": check.children.iter().map(check_json).collect::<Vec<_>>(),
    })
}

fn scan_text(outcome: Option<&Outcome>) -> String {
    match outcome {
        None => "not scanned (no [antivirus], or decided before scanning)".into(),
        Some(Outcome::Clean) => "clean".into(),
        Some(Outcome::Infected(found)) => format!(
            "infected: {}",
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(Outcome::Oversize { size }) => format!("not scanned: {size} bytes is over max_size"),
        Some(Outcome::Error(e)) => format!("error: {e}"),
    }
}

/// The same facts as JSON, for scripts and tests.
pub fn json(f: &Findings) -> Value {
    let methods: Vec<Value> = f
        .observation
        .auth
        .iter()
        .flat_map(|r| r.methods())
        .map(|m| {
            let props: serde_json::Map<String, Value> = m
                .props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(v.clone())))
                .collect();
            json!({
                "method": m.method,
                "result": m.result.as_str(),
                "reason": m.reason,
                "properties": props,
            })
        })
        .collect();
    let disposition = f
        .observation
        .auth
        .as_ref()
        .and_then(|r| r.disposition.as_ref())
        .map(|d| {
            json!({
                "requested": d.requested.as_str(),
                "applied": d.applied.as_str(),
                "override_by": d.override_by,
            })
        });
    let auth_header = f.decision.edits.iter().find_map(|e| match e {
        Edit::InsertHeader { name, value, .. } if name == crate::auth::HEADER => {
            Some(value.clone())
        }
        _ => None,
    });
    let (code, reply) = match &f.decision.verdict {
        Verdict::Reject(r) | Verdict::Tempfail(r) => (Some(r.code()), Some(r.to_string())),
        _ => (None, None),
    };
    json!({
        "direction": f.observation.direction.to_string(),
        "methods": methods,
        "dmarc_policy": disposition,
        "authentication_results": auth_header,
        "antivirus": f.observation.scan.as_ref().map(|_| scan_text(f.observation.scan.as_ref())),
        "rules": f.observation.policy.as_ref().map(|eval| eval.trace.iter().map(|t| json!({
            "name": t.name,
            "monitor": t.monitor,
            "evaluated": t.check.is_some(),
            "matched": t.check.as_ref().is_some_and(|c| c.matched),
            "actions": t.actions,
            "check": t.check.as_ref().map(check_json),
        })).collect::<Vec<_>>()),
        "decided_by": f.observation.policy.as_ref().and_then(|e| e.decision.as_ref().map(|(_, rule)| rule.clone())),
        "edits": f.decision.edits.iter().map(edit_text).collect::<Vec<_>>(),
        "verdict": f.decision.verdict.label(),
        "reply_code": code,
        "reply": reply,
        "reason": f.decision.reason,
    })
}
