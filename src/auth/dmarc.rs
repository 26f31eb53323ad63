//! DMARC as RFC 7489 defines it: the policy record of the From domain (or of its
//! organizational domain, found with the Public Suffix List), identifier alignment
//! of SPF and DKIM, `p`/`sp` and `pct`. We evaluate it ourselves rather than with
//! `mail-auth`, whose DMARC follows the later tree-walk draft and drops `pct`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_auth::ResolverCache;
use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::hickory_resolver::proto::rr::{Name, RData};

use super::cache::TtlCache;
use super::results::AuthResult;

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

    /// The next less strict policy, applied to messages outside `pct`
    /// (RFC 7489 §6.6.4).
    fn weaker(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            _ => Policy::None,
        }
    }

    fn parse(t: &str) -> Option<Policy> {
        match t.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    pub p: Policy,
    pub sp: Option<Policy>,
    pub pct: u8,
    pub adkim_strict: bool,
    pub aspf_strict: bool,
}

/// A cached answer for one `_dmarc` name: the record, or `None` for "no record".
pub(crate) type DmarcLookup = Option<Arc<DmarcRecord>>;

/// Parses a DMARC TXT record. `Err` means "not a usable DMARC record", which RFC
/// 7489 treats like no record at all.
pub fn parse_record(txt: &str) -> Result<DmarcRecord, String> {
    let mut tags = txt.split(';').map(str::trim).filter(|t| !t.is_empty());
    match tags.next().map(|t| t.split_once('=')) {
        Some(Some((v, value))) if v.trim() == "v" && value.trim() == "DMARC1" => {}
        _ => return Err("does not start with v=DMARC1".into()),
    }
    let mut record = DmarcRecord {
        p: Policy::None,
        sp: None,
        pct: 100,
        adkim_strict: false,
        aspf_strict: false,
    };
    let mut has_p = false;
    let mut has_rua = false;
    for tag in tags {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "p" => {
                record.p = Policy::parse(value).ok_or(format!("p={value} is not a policy"))?;
                has_p = true;
            }
            // An invalid sp= is ignored and p= applies (RFC 7489 §6.3).
            "sp" => record.sp = Policy::parse(value),
            "pct" => {
                record.pct = value
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .unwrap_or(100)
            }
            "adkim" => record.adkim_strict = value.eq_ignore_ascii_case("s"),
            "aspf" => record.aspf_strict = value.eq_ignore_ascii_case("s"),
            "rua" => has_rua = true,
            _ => {}
        }
    }
    // Without p=, a record with a valid rua= is p=none; otherwise it is not a record
    // (RFC 7489 §6.6.3).
    if !has_p && !has_rua {
        return Err("has no p= tag".into());
    }
    Ok(record)
}

/// The organizational domain: the registrable domain by the Public Suffix List,
/// or the name itself when it is a public suffix or not a valid domain.
pub fn org_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&domain)
        .map(str::to_owned)
        .unwrap_or(domain)
}

/// Identifier alignment (RFC 7489 §3.1).
pub fn aligned(identifier: &str, from_domain: &str, strict: bool) -> bool {
    let a = identifier.trim_end_matches('.');
    let b = from_domain.trim_end_matches('.');
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    !strict && !a.is_empty() && org_domain(a) == org_domain(b)
}

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
    pub from_domain: String,
    pub reason: String,
    /// The published policy that applies to this From domain, when there is one.
    pub requested: Option<Policy>,
    /// What applies after `pct` sampling.
    pub applied: Option<Policy>,
}

/// Evaluates DMARC for one From domain against its (already fetched) record.
pub fn evaluate(
    from_domain: &str,
    found: Option<(Arc<DmarcRecord>, bool)>,
    ids: &Identifiers<'_>,
    sample: impl FnOnce(u8) -> bool,
) -> Evaluation {
    let mut out = Evaluation {
        result: AuthResult::None,
        from_domain: from_domain.to_owned(),
        reason: "no DMARC record".into(),
        requested: None,
        applied: None,
    };
    let Some((record, at_org)) = found else {
        return out;
    };
    let policy = if at_org {
        record.sp.unwrap_or(record.p)
    } else {
        record.p
    };
    out.requested = Some(policy);
    out.applied = Some(policy);
    let (spf_result, spf_domain) = ids.spf;
    let spf_aligned = aligned(spf_domain, from_domain, record.aspf_strict);
    if spf_result == AuthResult::Pass && spf_aligned {
        out.result = AuthResult::Pass;
        out.reason = format!("SPF {spf_domain} aligned");
        return out;
    }
    if let Some((_, d)) = ids
        .dkim
        .iter()
        .find(|(r, d)| *r == AuthResult::Pass && aligned(d, from_domain, record.adkim_strict))
    {
        out.result = AuthResult::Pass;
        out.reason = format!("DKIM {d} aligned");
        return out;
    }
    let temp = (spf_result == AuthResult::TempError && spf_aligned)
        || ids.dkim.iter().any(|(r, d)| {
            *r == AuthResult::TempError && aligned(d, from_domain, record.adkim_strict)
        });
    if temp {
        out.result = AuthResult::TempError;
        out.reason = "an aligned identifier could not be checked (DNS)".into();
        return out;
    }
    out.result = AuthResult::Fail;
    out.reason = format!(
        "neither SPF nor DKIM {} aligned with {from_domain}",
        if record.aspf_strict || record.adkim_strict {
            "strictly"
        } else {
            "passed"
        }
    );
    if record.pct < 100 && !sample(record.pct) {
        out.applied = Some(policy.weaker());
        out.reason
            .push_str(&format!(", outside pct={}", record.pct));
    }
    out
}

/// Fetches the record for `from_domain` (then its organizational domain). Returns
/// the record and whether it came from the organizational domain.
pub(crate) async fn fetch(
    resolver: &mail_auth::MessageAuthenticator,
    cache: &TtlCache<Box<str>, DmarcLookup>,
    from_domain: &str,
) -> Result<Option<(Arc<DmarcRecord>, bool)>, String> {
    if let Some(record) = fetch_one(resolver, cache, from_domain).await? {
        return Ok(Some((record, false)));
    }
    let org = org_domain(from_domain);
    if org != from_domain.trim_end_matches('.').to_ascii_lowercase()
        && let Some(record) = fetch_one(resolver, cache, &org).await?
    {
        return Ok(Some((record, true)));
    }
    Ok(None)
}

/// Negative answers without an SOA TTL are kept this long.
const NEGATIVE_TTL: Duration = Duration::from_secs(300);

async fn fetch_one(
    resolver: &mail_auth::MessageAuthenticator,
    cache: &TtlCache<Box<str>, DmarcLookup>,
    domain: &str,
) -> Result<DmarcLookup, String> {
    let key = format!("_dmarc.{}.", domain.trim_end_matches('.'));
    if let Some(hit) = cache.get(key.as_str()) {
        return Ok(hit);
    }
    let name = Name::from_str_relaxed(&key).map_err(|e| format!("{key}: {e}"))?;
    match resolver.resolver().txt_lookup(name).await {
        Ok(lookup) => {
            let mut records = Vec::new();
            for record in lookup.answers() {
                if let RData::TXT(txt) = &record.data {
                    let text: Vec<u8> = txt
                        .txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    let text = String::from_utf8_lossy(&text).into_owned();
                    if text.trim_start().starts_with("v=DMARC1") {
                        records.push(text);
                    }
                }
            }
            // More than one DMARC record means none applies (RFC 7489 §6.6.3).
            let found = match records.as_slice() {
                [one] => parse_record(one).ok().map(Arc::new),
                _ => None,
            };
            cache.insert(key.into_boxed_str(), found.clone(), lookup.valid_until());
            Ok(found)
        }
        Err(NetError::Dns(DnsError::NoRecordsFound(no)))
            if matches!(
                no.response_code,
                ResponseCode::NXDomain | ResponseCode::NoError
            ) =>
        {
            let ttl = no.negative_ttl.map_or(NEGATIVE_TTL, |s| {
                Duration::from_secs(u64::from(s)).min(NEGATIVE_TTL)
            });
            cache.insert(key.into_boxed_str(), None, Instant::now() + ttl);
            Ok(None)
        }
        Err(e) => Err(format!("{key}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_as_rfc_7489_says() {
        let r = parse_record("v=DMARC1; p=reject; sp=none; pct=25; adkim=s; aspf=r").unwrap();
        assert_eq!(
            r,
            DmarcRecord {
                p: Policy::Reject,
                sp: Some(Policy::None),
                pct: 25,
                adkim_strict: true,
                aspf_strict: false
            }
        );
        assert!(parse_record("v=DMARC2; p=reject").is_err());
        assert!(parse_record("p=reject; v=DMARC1").is_err());
        assert!(parse_record("v=DMARC1; p=bogus").is_err());
        assert!(parse_record("v=DMARC1").is_err());
        // rua= without p= means p=none.
        assert_eq!(
            parse_record("v=DMARC1; rua=mailto:d@example.com")
                .unwrap()
                .p,
            Policy::None
        );
        // Bad sp= and pct= fall back to their defaults.
        let r = parse_record("v=DMARC1;p=quarantine;sp=maybe;pct=900").unwrap();
        assert_eq!((r.sp, r.pct), (None, 100));
    }

    #[test]
    fn organizational_domains_come_from_the_public_suffix_list() {
        assert_eq!(org_domain("mail.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("a.b.example.com."), "example.com");
        assert_eq!(org_domain("Sub.Example.TEST"), "example.test");
        assert_eq!(org_domain("co.uk"), "co.uk");
        assert!(aligned("mail.example.co.uk", "example.co.uk", false));
        assert!(!aligned("mail.example.co.uk", "example.co.uk", true));
        assert!(!aligned("other.co.uk", "example.co.uk", false));
        assert!(aligned("EXAMPLE.com", "example.com", true));
    }

    fn record(p: Policy, pct: u8) -> Option<(Arc<DmarcRecord>, bool)> {
        Some((
            Arc::new(DmarcRecord {
                p,
                sp: Some(Policy::None),
                pct,
                adkim_strict: false,
                aspf_strict: false,
            }),
            false,
        ))
    }

    #[test]
    fn pass_needs_an_aligned_pass() {
        let ids = Identifiers {
            spf: (AuthResult::Pass, "bounces.other.test"),
            dkim: vec![
                (AuthResult::Pass, "other.test"),
                (AuthResult::Fail, "example.test"),
            ],
        };
        let e = evaluate("example.test", record(Policy::Reject, 100), &ids, |_| true);
        assert_eq!(e.result, AuthResult::Fail);
        assert_eq!(e.applied, Some(Policy::Reject));

        let ids = Identifiers {
            spf: (AuthResult::Fail, "example.test"),
            dkim: vec![(AuthResult::Pass, "mail.example.test")],
        };
        let e = evaluate("example.test", record(Policy::Reject, 100), &ids, |_| true);
        assert_eq!(
            (e.result, e.reason.as_str()),
            (AuthResult::Pass, "DKIM mail.example.test aligned")
        );
    }

    #[test]
    fn pct_downgrades_messages_outside_the_sample() {
        let ids = Identifiers {
            spf: (AuthResult::Fail, "example.test"),
            dkim: vec![],
        };
        let e = evaluate("example.test", record(Policy::Reject, 10), &ids, |_| false);
        assert_eq!(
            (e.requested, e.applied),
            (Some(Policy::Reject), Some(Policy::Quarantine))
        );
        let e = evaluate("example.test", record(Policy::Reject, 10), &ids, |pct| {
            pct == 10
        });
        assert_eq!(e.applied, Some(Policy::Reject));
    }

    #[test]
    fn subdomain_policy_applies_to_records_found_at_the_org_domain() {
        let ids = Identifiers {
            spf: (AuthResult::Fail, "x.example.test"),
            dkim: vec![],
        };
        let found = record(Policy::Reject, 100).map(|(r, _)| (r, true));
        let e = evaluate("x.example.test", found, &ids, |_| true);
        assert_eq!(e.requested, Some(Policy::None));
    }

    #[test]
    fn an_aligned_dns_error_is_temperror_not_fail() {
        let ids = Identifiers {
            spf: (AuthResult::TempError, "example.test"),
            dkim: vec![],
        };
        let e = evaluate("example.test", record(Policy::Reject, 100), &ids, |_| true);
        assert_eq!(e.result, AuthResult::TempError);
        assert_eq!(
            evaluate("example.test", None, &ids, |_| true).result,
            AuthResult::None
        );
    }
}
