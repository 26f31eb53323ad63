//! One stored row per decided message and author domain whose DMARC record asks
//! for reports: what RFC 9990's `record` element needs (source IP, identifiers,
//! the authentication results with domains and selectors, the disposition
//! applied and why it differs from the policy) and the policy as published.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::dmarc::{Discovery, Evaluation, Policy};
use crate::auth::{AuthReport, AuthResult};
use crate::decision::Decision;
use crate::transaction::Transaction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Unix seconds when the message was decided.
    pub t: i64,
    /// The domain whose record applied (RFC 9990's `policy_published/domain`).
    pub policy_domain: String,
    pub header_from: String,
    pub source_ip: String,
    pub envelope_from: String,
    pub envelope_to: String,
    /// `pass`, `none`, `quarantine` or `reject`: what was done.
    pub disposition: &'static str,
    pub dkim_aligned: bool,
    pub spf_aligned: bool,
    /// RFC 9990 `PolicyOverrideType` when the disposition is weaker than the
    /// policy asked for, and a comment.
    pub override_type: Option<&'static str>,
    pub override_comment: Option<String>,
    /// `domain scope result`, scope `mfrom` or `helo`.
    pub spf: String,
    /// `domain selector result` per signature, `;`-separated.
    pub dkim: String,
    /// The published record, `tag=value` pairs `;`-separated (p, sp, np, adkim,
    /// aspf, psd, t, fo).
    pub policy: String,
    pub discovery: &'static str,
    /// Aggregate destinations, `address[!size]`, `,`-separated.
    pub rua: String,
}

impl Row {
    /// Everything but the time, as one string: rows with equal keys are one
    /// RFC 9990 record and are stored as one tuple.
    pub fn key(&self) -> String {
        let flag = |b: bool| if b { "1" } else { "0" };
        [
            self.policy_domain.as_str(),
            &self.header_from,
            &self.source_ip,
            &self.envelope_from,
            &self.envelope_to,
            self.disposition,
            flag(self.dkim_aligned),
            flag(self.spf_aligned),
            self.override_type.unwrap_or(""),
            self.override_comment.as_deref().unwrap_or(""),
            &self.spf,
            &self.dkim,
            &self.policy,
            self.discovery,
            &self.rua,
        ]
        .join("\u{1f}")
    }
}

impl Row {
    /// A row back from its [`Row::key`] and time (fleet mode sends rows so).
    pub fn from_key(t: i64, key: &str) -> Option<Row> {
        let f: Vec<&str> = key.split('\u{1f}').collect();
        let [
            policy_domain,
            header_from,
            source_ip,
            envelope_from,
            envelope_to,
            disposition,
            dkim_aligned,
            spf_aligned,
            override_type,
            override_comment,
            spf,
            dkim,
            policy,
            discovery,
            rua,
        ] = f[..]
        else {
            return None;
        };
        let word = |w: &str, words: &[&'static str]| words.iter().find(|x| **x == w).copied();
        Some(Row {
            t,
            policy_domain: policy_domain.to_owned(),
            header_from: header_from.to_owned(),
            source_ip: source_ip.to_owned(),
            envelope_from: envelope_from.to_owned(),
            envelope_to: envelope_to.to_owned(),
            disposition: word(disposition, &["pass", "none", "quarantine", "reject"])?,
            dkim_aligned: dkim_aligned == "1",
            spf_aligned: spf_aligned == "1",
            override_type: word(
                override_type,
                &[
                    "trusted_forwarder",
                    "policy_test_mode",
                    "local_policy",
                    "mailing_list",
                    "other",
                ],
            ),
            override_comment: (!override_comment.is_empty()).then(|| override_comment.to_owned()),
            spf: spf.to_owned(),
            dkim: dkim.to_owned(),
            policy: policy.to_owned(),
            discovery: word(discovery, &["treewalk", "psl"])?,
            rua: rua.to_owned(),
        })
    }
}

/// The rows for one message: one per author domain whose record has `rua`.
/// Tempfailed messages are not counted (they come back).
pub(crate) fn rows(tx: &Transaction, decision: &Decision, auth: &AuthReport) -> Vec<Row> {
    let action = decision.action();
    if action == "tempfail" || auth.evaluations.is_empty() {
        return Vec::new();
    }
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let spf_domain = auth
        .spf_mailfrom
        .get("smtp.mailfrom")
        .map(domain_of)
        .unwrap_or_default();
    let scope = if tx.sender.address().is_empty() {
        "helo"
    } else {
        "mfrom"
    };
    let spf = format!(
        "{} {scope} {}",
        field(&spf_domain),
        auth.spf_mailfrom.result.as_str()
    );
    let dkim = auth
        .dkim
        .iter()
        .filter_map(|m| {
            let d = m.get("header.d")?;
            let s = m.get("header.s").unwrap_or("-");
            Some(format!("{} {} {}", field(d), field(s), dkim_word(m.result)))
        })
        .collect::<Vec<_>>()
        .join(";");
    let envelope_to = tx
        .recipients
        .first()
        .map(|r| domain_of(r.address()))
        .unwrap_or_default();
    let source_ip = tx.client.ip_text().unwrap_or_else(|| "127.0.0.1".into());
    auth.evaluations
        .iter()
        .filter_map(|e| {
            let found = e.published.as_ref()?;
            if found.record.rua.is_empty() {
                return None;
            }
            let (disposition, override_type, override_comment) = disposition(e, auth, action);
            Some(Row {
                t,
                policy_domain: found.domain.clone(),
                header_from: e.from_domain.clone(),
                source_ip: source_ip.clone(),
                envelope_from: spf_domain.clone(),
                envelope_to: envelope_to.clone(),
                disposition,
                dkim_aligned: e.dkim_aligned,
                spf_aligned: e.spf_aligned,
                override_type,
                override_comment,
                spf: spf.clone(),
                dkim: dkim.clone(),
                policy: found.record.tags(),
                discovery: e.discovery.as_str(),
                rua: found
                    .record
                    .rua
                    .iter()
                    .map(|d| match d.max_size {
                        Some(size) => format!("{}!{size}", d.address),
                        None => d.address.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            })
        })
        .collect()
}

/// What was done with a message of this domain, and why that is less than the
/// policy asked for.
fn disposition(
    e: &Evaluation,
    auth: &AuthReport,
    action: &str,
) -> (&'static str, Option<&'static str>, Option<String>) {
    if e.result == AuthResult::Pass {
        return ("pass", None, None);
    }
    let done = match action {
        "reject" | "discard" => "reject",
        "quarantine" => "quarantine",
        _ => "none",
    };
    let asked = match (e.result, e.requested) {
        (AuthResult::Fail, Some(p)) => p,
        _ => Policy::None,
    };
    let rank = |d: &str| match d {
        "reject" => 2,
        "quarantine" => 1,
        _ => 0,
    };
    if rank(done) >= rank(asked.as_str()) {
        return (done, None, None);
    }
    let sealer = auth
        .disposition
        .as_ref()
        .and_then(|d| d.override_by.clone());
    let testing = e.published.as_ref().is_some_and(|f| f.record.testing)
        && e.discovery == Discovery::TreeWalk;
    let (kind, comment) = if let Some(sealer) = sealer {
        ("trusted_forwarder", format!("ARC sealed by {sealer}"))
    } else if testing {
        ("policy_test_mode", "t=y".to_owned())
    } else if e.applied != e.requested {
        ("other", "outside pct (RFC 7489 sampling)".to_owned())
    } else {
        ("local_policy", "receiver policy".to_owned())
    };
    (done, Some(kind), Some(comment))
}

/// RFC 9990's DKIM result words.
fn dkim_word(r: AuthResult) -> &'static str {
    match r {
        AuthResult::SoftFail => "fail",
        other => other.as_str(),
    }
}

/// A value stored between spaces: no spaces or separators in it.
fn field(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, ';' | ','))
        .take(255)
        .collect()
}

fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or(address, |(_, d)| d)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}
