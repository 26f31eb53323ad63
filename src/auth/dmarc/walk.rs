//! Where a DMARC policy comes from and what a domain's organizational domain is:
//! RFC 9989's DNS tree walk (§4.4, §4.10.1, §4.10.2), or RFC 7489's Public Suffix
//! List for sites that set `dmarc.discovery = "psl"`.

use std::sync::Arc;

use super::Discovery;
use super::record::{Psd, Record, is_dmarc};
use crate::auth::lookup::{Dns, Failure};

/// A name and the DMARC record published there.
pub(crate) type Found = (String, Arc<Record>);

/// The walk never asks more than this many names (RFC 9989 §4.4: after the
/// first, a name of eight labels or more is cut to seven).
pub const MAX_QUERIES: usize = 8;

/// The policy record that applies to an author domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub record: Arc<Record>,
    /// The domain that published it (the author domain, its organizational
    /// domain, or the public suffix domain above that).
    pub domain: String,
    /// The author domain's organizational domain; `None` when the record is the
    /// author domain's own, where the walk is not needed for the policy and is
    /// made only if relaxed alignment asks (§4.10.2's note).
    pub org_domain: Option<String>,
}

/// The valid DMARC record at `_dmarc.<name>`: none for no record, for several
/// (§4.4 step 2) or for one that does not parse; `Err` for DNS trouble.
async fn record_at<D: Dns>(dns: &D, name: &str) -> Result<Option<Arc<Record>>, String> {
    let texts = match dns.txt(&format!("_dmarc.{name}")).await {
        Ok(texts) => texts,
        Err(Failure::Void) => return Ok(None),
        Err(Failure::Error(e)) => return Err(format!("_dmarc.{name}: {e}")),
    };
    let mut dmarc = texts.iter().filter(|t| is_dmarc(t));
    match (dmarc.next(), dmarc.next()) {
        (Some(one), None) => Ok(dns.dmarc_record(one)),
        _ => Ok(None),
    }
}

/// RFC 9989 §4.4: the valid records from `domain` up to its top-level label,
/// longest name first, stopping at `psd=n` (anywhere) or `psd=y` (above the
/// start). At most [`MAX_QUERIES`] names are asked.
pub(crate) async fn walk<D: Dns>(dns: &D, domain: &str) -> Result<Vec<Found>, String> {
    let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
    let total = labels.len();
    let mut found = Vec::new();
    let mut count = total;
    while count > 0 {
        let name = labels[total - count..].join(".");
        if let Some(record) = record_at(dns, &name).await? {
            let stop = record.psd == Psd::No || (record.psd == Psd::Yes && count != total);
            found.push((name, record));
            if stop {
                break;
            }
        }
        count = if count == total && count >= MAX_QUERIES {
            MAX_QUERIES - 1
        } else {
            count - 1
        };
    }
    Ok(found)
}

/// RFC 9989 §4.10.2: the organizational domain from a walk that started at
/// `start`; `start` itself when the walk found nothing.
pub(crate) fn org_of_walk(found: &[Found], start: &str) -> String {
    for (name, record) in found {
        match record.psd {
            Psd::No => return name.clone(),
            Psd::Yes if name != start => return one_label_below(name, start),
            _ => {}
        }
    }
    found
        .last()
        .map_or_else(|| start.to_owned(), |(name, _)| name.clone())
}

/// The name one label longer than `upper` on the way down to `start`.
fn one_label_below(upper: &str, start: &str) -> String {
    let keep = upper.split('.').count() + 1;
    let labels: Vec<&str> = start.split('.').collect();
    labels[labels.len().saturating_sub(keep)..].join(".")
}

/// The registrable domain by the Public Suffix List, or the name itself when it
/// is a public suffix or not a valid domain (RFC 7489 §3.2).
pub fn psl_org_domain(domain: &str) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    psl::domain_str(&domain)
        .map(str::to_owned)
        .unwrap_or(domain)
}

/// A domain's organizational domain, by the configured method.
pub(crate) async fn org_domain<D: Dns>(
    dns: &D,
    domain: &str,
    discovery: Discovery,
) -> Result<String, String> {
    match discovery {
        Discovery::Psl => Ok(psl_org_domain(domain)),
        Discovery::TreeWalk => Ok(org_of_walk(&walk(dns, domain).await?, domain)),
    }
}

/// The record that applies to `author` (lower-case A-labels): RFC 9989 §4.10.1
/// takes the author domain's own, else its organizational domain's, else the
/// public suffix domain's; RFC 7489 the author domain's, else the PSL
/// organizational domain's.
pub(crate) async fn discover<D: Dns>(
    dns: &D,
    author: &str,
    discovery: Discovery,
) -> Result<Option<Discovered>, String> {
    match discovery {
        Discovery::Psl => {
            let org = psl_org_domain(author);
            let found = match record_at(dns, author).await? {
                Some(record) => Some((author.to_owned(), record)),
                None if org != author => record_at(dns, &org).await?.map(|r| (org.clone(), r)),
                None => None,
            };
            Ok(found.map(|(domain, record)| Discovered {
                record,
                domain,
                org_domain: Some(org),
            }))
        }
        Discovery::TreeWalk => {
            if let Some(record) = record_at(dns, author).await? {
                let org_domain = (record.psd == Psd::No).then(|| author.to_owned());
                return Ok(Some(Discovered {
                    record,
                    domain: author.to_owned(),
                    org_domain,
                }));
            }
            let found = walk(dns, author).await?;
            let org = org_of_walk(&found, author);
            let pick = found
                .iter()
                .find(|(name, _)| name == author)
                .or_else(|| found.iter().find(|(name, _)| *name == org))
                .or_else(|| found.iter().find(|(_, r)| r.psd == Psd::Yes))
                .or_else(|| found.last());
            Ok(pick.map(|(domain, record)| Discovered {
                record: record.clone(),
                domain: domain.clone(),
                org_domain: Some(org.clone()),
            }))
        }
    }
}
