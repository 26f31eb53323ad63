//! Whether a DMARC report may go to a destination outside the policy domain
//! (RFC 9990 §4 and RFC 9991: "Verifying External Destinations"): a destination
//! in the same organization needs nothing; any other must publish
//! `<policy-domain>._report._dmarc.<destination-domain>` with `v=DMARC1`.

use mail_auth::common::to_a_label;

use super::dmarc::{self, Discovery};
use super::lookup::{AnswerCache, Cached, Dns, Failure};
use crate::config::DnsConfig;

pub struct ReportDestinations {
    resolver: mail_auth::MessageAuthenticator,
    answers: AnswerCache,
    discovery: Discovery,
}

impl ReportDestinations {
    pub fn new(dns: &DnsConfig, discovery: Discovery) -> Result<Self, String> {
        Ok(ReportDestinations {
            resolver: super::dns::authenticator(dns)?,
            answers: AnswerCache::new(1_000),
            discovery,
        })
    }

    /// `Ok(true)` when reports about `domain` may go to an address at
    /// `destination`; `Err` for DNS trouble (try again later).
    pub async fn authorized(&self, domain: &str, destination: &str) -> Result<bool, String> {
        let dns = Cached {
            resolver: self.resolver.resolver(),
            cache: &self.answers,
        };
        let domain = to_a_label(domain.trim_end_matches('.')).to_ascii_lowercase();
        let dest = to_a_label(destination.trim_end_matches('.')).to_ascii_lowercase();
        authorized(&dns, &domain, &dest, self.discovery).await
    }
}

/// The check itself, over any [`Dns`], for names already lower-case A-labels
/// (`dns-audit` runs it on its own resolver).
pub(crate) async fn authorized<D: Dns>(
    dns: &D,
    domain: &str,
    dest: &str,
    discovery: Discovery,
) -> Result<bool, String> {
    if dest == domain || dest.ends_with(&format!(".{domain}")) {
        return Ok(true);
    }
    let (ours, theirs) = (
        dmarc::org_domain(dns, domain, discovery).await?,
        dmarc::org_domain(dns, dest, discovery).await?,
    );
    if ours == theirs {
        return Ok(true);
    }
    match dns.txt(&format!("{domain}._report._dmarc.{dest}")).await {
        Ok(texts) => Ok(texts.iter().any(|t| dmarc::is_dmarc(t))),
        Err(Failure::Void) => Ok(false),
        Err(Failure::Error(e)) => Err(e),
    }
}
