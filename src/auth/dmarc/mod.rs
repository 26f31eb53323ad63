//! DMARC as RFC 9989 defines it: the policy record found by the DNS tree walk,
//! identifier alignment of SPF and DKIM against organizational domains found the
//! same way, `p`/`sp`/`np` and `t`. `dmarc.discovery = "psl"` keeps RFC 7489's
//! answers (Public Suffix List, `pct`, no `np`/`psd`/`t`) for sites that need them.
//! We evaluate it ourselves over [`Dns`]: mail-auth's DMARC takes one From
//! domain and stops at `psd=y` on the author domain, where RFC 9989 walks on.

mod record;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use mail_auth::common::to_a_label;

use super::lookup::Dns;
use super::results::AuthResult;

pub use record::{Destination, Psd, Record, is_dmarc, parse as parse_record};
pub use walk::Discovered;
pub(crate) use walk::{discover, org_domain};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// The next less strict policy: what `t=y` (RFC 9989 §4.7) and a message
    /// outside RFC 7489's `pct` get.
    pub fn weaker(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            _ => Policy::None,
        }
    }

    pub(crate) fn parse(t: &str) -> Option<Policy> {
        match t.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }
}

/// How the policy record and organizational domains are found.
pub use crate::config::DmarcDiscovery as Discovery;

/// The DMARC inputs that come from SPF and DKIM.
pub struct Identifiers<'a> {
    /// SPF result and the domain it authenticated (MAIL FROM, or HELO for `<>`).
    pub spf: (AuthResult, &'a str),
    /// Each DKIM signature's result and `d=`.
    pub dkim: Vec<(AuthResult, &'a str)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub result: AuthResult,
    /// The author domain as an A-label, lower case.
    pub from_domain: String,
    pub reason: String,
    /// The published policy that applies to this From domain, when there is one.
    pub requested: Option<Policy>,
    /// What applies after `t=y` (or RFC 7489's `pct` sampling).
    pub applied: Option<Policy>,
    /// The record and where it was found, when there is one.
    pub published: Option<Discovered>,
    pub discovery: Discovery,
    /// Whether an aligned SPF / DKIM pass was found (RFC 9990's
    /// `policy_evaluated`).
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
}

/// Evaluates DMARC for one author domain.
pub(crate) async fn evaluate<D: Dns>(
    dns: &D,
    from_domain: &str,
    ids: &Identifiers<'_>,
    discovery: Discovery,
    sample: impl FnOnce(u8) -> bool,
) -> Evaluation {
    let from = to_a_label(from_domain.trim_end_matches('.')).to_ascii_lowercase();
    let mut out = Evaluation {
        result: AuthResult::None,
        from_domain: from.clone(),
        reason: format!("no DMARC record; {}", discovery.as_str()),
        requested: None,
        applied: None,
        published: None,
        discovery,
        spf_aligned: false,
        dkim_aligned: false,
    };
    let found = match walk::discover(dns, &from, discovery).await {
        Ok(Some(found)) => found,
        Ok(None) => return out,
        Err(e) => {
            out.result = AuthResult::TempError;
            out.reason = e;
            return out;
        }
    };
    let record = found.record.clone();
    let (policy, which) = policy_for(dns, &from, &found, discovery).await;
    out.requested = Some(policy);
    out.applied = Some(policy);
    let alignment = Alignment {
        dns,
        from: &from,
        org: std::sync::OnceLock::new(),
        discovery,
    };
    if let Some(org) = &found.org_domain {
        let _ = alignment.org.set(org.clone());
    }
    out.published = Some(found);

    let (spf_result, spf_domain) = ids.spf;
    let mut unknown: Option<String> = None;
    let mut check = async |result: AuthResult, id: &str, strict: bool| {
        if !matches!(result, AuthResult::Pass | AuthResult::TempError) {
            return false;
        }
        match alignment.aligned(id, strict).await {
            Ok(aligned) => aligned,
            Err(e) => {
                unknown.get_or_insert(e);
                false
            }
        }
    };
    let spf_aligned = check(spf_result, spf_domain, record.aspf_strict).await;
    let mut dkim_aligned = Vec::with_capacity(ids.dkim.len());
    for (result, d) in &ids.dkim {
        dkim_aligned.push(check(*result, d, record.adkim_strict).await);
    }
    out.spf_aligned = spf_aligned && spf_result == AuthResult::Pass;
    let dkim_pass = ids
        .dkim
        .iter()
        .zip(&dkim_aligned)
        .find(|((r, _), aligned)| **aligned && *r == AuthResult::Pass);
    out.dkim_aligned = dkim_pass.is_some();
    let method = discovery.as_str();
    if out.spf_aligned {
        out.result = AuthResult::Pass;
        out.reason = format!("SPF {spf_domain} aligned; {method}");
        return out;
    }
    if let Some(((_, d), _)) = dkim_pass {
        out.result = AuthResult::Pass;
        out.reason = format!("DKIM {d} aligned; {method}");
        return out;
    }
    // An aligned identifier that could not be checked, or an alignment that could
    // not be decided: neither pass nor fail (RFC 9989 §4.10... "temporary error").
    let temp = spf_aligned || dkim_aligned.iter().any(|a| *a);
    if temp || unknown.is_some() {
        out.result = AuthResult::TempError;
        out.reason =
            unknown.unwrap_or_else(|| "an aligned identifier could not be checked (DNS)".into());
        return out;
    }
    out.result = AuthResult::Fail;
    out.reason = format!(
        "neither SPF nor DKIM {} aligned with {from}; {which}; {method}",
        if record.aspf_strict || record.adkim_strict {
            "strictly"
        } else {
            "passed"
        }
    );
    match discovery {
        Discovery::TreeWalk if record.testing => {
            out.applied = Some(policy.weaker());
            out.reason.push_str("; t=y (testing)");
        }
        Discovery::Psl if record.pct < 100 && !sample(record.pct) => {
            out.applied = Some(policy.weaker());
            out.reason
                .push_str(&format!("; outside pct={}", record.pct));
        }
        _ => {}
    }
    out
}

/// The policy for `from` and the tag it came from: `p` at the author domain;
/// above it `sp`, or `np` when the author domain does not exist (RFC 9989
/// §4.10.1). When whether it exists cannot be learnt, the stricter applies.
async fn policy_for<D: Dns>(
    dns: &D,
    from: &str,
    found: &Discovered,
    discovery: Discovery,
) -> (Policy, &'static str) {
    let r = &found.record;
    if found.domain == from {
        return (r.p, "p= applies");
    }
    let sp = r.sp.unwrap_or(r.p);
    let np = match (discovery, r.np) {
        (Discovery::TreeWalk, Some(np)) if np != sp => np,
        _ => return (sp, "sp= applies"),
    };
    match dns.exists(from).await {
        Ok(true) => (sp, "sp= applies"),
        Ok(false) => (np, "np= applies (the From domain does not exist)"),
        Err(_) if np > sp => (
            np,
            "np= applies (whether the From domain exists is unknown)",
        ),
        Err(_) => (
            sp,
            "sp= applies (whether the From domain exists is unknown)",
        ),
    }
}

/// Identifier alignment (RFC 9989 §4.5 with §4.10.2's organizational domains).
struct Alignment<'a, D> {
    dns: &'a D,
    from: &'a str,
    /// The author domain's organizational domain, once known.
    org: std::sync::OnceLock<String>,
    discovery: Discovery,
}

impl<D: Dns> Alignment<'_, D> {
    async fn aligned(&self, id: &str, strict: bool) -> Result<bool, String> {
        let id = to_a_label(id.trim_end_matches('.')).to_ascii_lowercase();
        if id == self.from {
            return Ok(true);
        }
        if strict || id.is_empty() {
            return Ok(false);
        }
        let org = match self.org.get() {
            Some(org) => org.clone(),
            None => {
                let org = walk::org_domain(self.dns, self.from, self.discovery).await?;
                self.org.get_or_init(|| org).clone()
            }
        };
        if org == id {
            return Ok(true);
        }
        Ok(walk::org_domain(self.dns, &id, self.discovery).await? == org)
    }
}
