//! `mailwarden dns-audit`: what a receiver will find in the DNS for one of the
//! admin's own domains, read with the same parsers and the same resolver the
//! daemon uses on inbound mail. SPF (the lookup limit with includes resolved),
//! DMARC per RFC 9989 (the policy a receiver applies, and whether the external
//! report destinations accept the reports), MTA-STS and TLS-RPT records. The
//! DKIM part (our keys against the published ones) is `sign::dnscheck`'s.

mod spf;

use serde::Serialize;

use super::dmarc::{self, Discovery, Policy, Psd};
use super::lookup::{AnswerCache, Cached, Dns, Failure};
use crate::config::DnsConfig;

/// How much a finding matters; `dns-audit` exits 2 on an error, 1 on a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// spf, dkim, dmarc, mta-sts or tls-rpt.
    pub check: &'static str,
    pub level: Level,
    pub message: String,
}

impl Finding {
    pub fn new(check: &'static str, level: Level, message: String) -> Finding {
        Finding {
            check,
            level,
            message,
        }
    }
}

/// The SPF, DMARC, MTA-STS and TLS-RPT findings for `domain`, through the
/// resolver `[dns]` configures.
pub async fn audit(
    config: &DnsConfig,
    discovery: Discovery,
    domain: &str,
) -> Result<Vec<Finding>, String> {
    let resolver = super::dns::authenticator(config)?;
    let cache = AnswerCache::new(1_000);
    let dns = Cached {
        resolver: resolver.resolver(),
        cache: &cache,
    };
    let domain = mail_auth::common::to_a_label(domain.trim_end_matches('.')).to_ascii_lowercase();
    let mut out = spf::audit(&dns, &domain).await;
    out.extend(dmarc_findings(&dns, &domain, discovery).await);
    out.extend(
        tagged(
            &dns,
            "mta-sts",
            &format!("_mta-sts.{domain}"),
            "v=STSv1",
            "id",
        )
        .await,
    );
    out.extend(
        tagged(
            &dns,
            "tls-rpt",
            &format!("_smtp._tls.{domain}"),
            "v=TLSRPTv1",
            "rua",
        )
        .await,
    );
    Ok(out)
}

async fn dmarc_findings<D: Dns>(dns: &D, domain: &str, discovery: Discovery) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut say = |level, message: String| out.push(Finding::new("dmarc", level, message));
    // The domain's own records first: several, or one that does not parse,
    // count as none at every receiver (§4.4).
    let name = format!("_dmarc.{domain}");
    if let Ok(texts) = dns.txt(&name).await {
        let own: Vec<&Vec<u8>> = texts.iter().filter(|t| dmarc::is_dmarc(t)).collect();
        if own.len() > 1 {
            say(
                Level::Error,
                format!(
                    "{name} has {} DMARC records: receivers use none of them",
                    own.len()
                ),
            );
        }
        if let [one] = own.as_slice()
            && let Err(e) = dmarc::parse_record(&String::from_utf8_lossy(one))
        {
            say(
                Level::Error,
                format!("{name}: {e}; receivers ignore the record"),
            );
        }
    }
    let found = match dmarc::discover(dns, domain, discovery).await {
        Ok(found) => found,
        Err(e) => {
            say(
                Level::Error,
                format!("DNS error while looking for the policy: {e}"),
            );
            return out;
        }
    };
    let Some(found) = found else {
        say(
            Level::Warning,
            format!(
                "no DMARC policy for {domain} (nor its organizational domain): anyone may put {domain} in From"
            ),
        );
        return out;
    };
    let r = &found.record;
    if found.domain != domain {
        say(
            Level::Info,
            format!(
                "the policy comes from _dmarc.{} (found by {})",
                found.domain,
                discovery.as_str()
            ),
        );
    }
    let applied = if found.domain == domain {
        r.p
    } else {
        r.sp.unwrap_or(r.p)
    };
    match applied {
        Policy::None => say(
            Level::Warning,
            format!("p=none: monitoring only, mail failing DMARC as {domain} is delivered"),
        ),
        p => say(Level::Ok, format!("policy {} ({})", p.as_str(), r.tags())),
    }
    if r.testing {
        say(
            Level::Warning,
            "t=y: the owner is testing; receivers apply the next weaker policy".into(),
        );
    }
    if found.domain == domain && r.psd == Psd::Yes {
        say(
            Level::Warning,
            format!("psd=y: the record says {domain} is a public suffix, not an organization"),
        );
    }
    if r.np.is_none() && r.sp.is_none() && found.domain == domain {
        say(
            Level::Info,
            format!(
                "no sp= or np=: subdomains, even ones that do not exist, get p={}",
                r.p.as_str()
            ),
        );
    }
    if r.rua.is_empty() {
        say(
            Level::Warning,
            "no rua=: nobody sends you aggregate reports, so you cannot see who sends as you"
                .into(),
        );
    }
    for (tag, list) in [("rua", &r.rua), ("ruf", &r.ruf)] {
        for dest in list.iter() {
            let Some((_, dest_domain)) = dest.address.rsplit_once('@') else {
                say(
                    Level::Error,
                    format!("{tag}=mailto:{} has no domain", dest.address),
                );
                continue;
            };
            let dest_domain = mail_auth::common::to_a_label(dest_domain.trim_end_matches('.'))
                .to_ascii_lowercase();
            match super::external::authorized(dns, &found.domain, &dest_domain, discovery).await {
                Ok(true) => {}
                Ok(false) => say(
                    Level::Error,
                    format!(
                        "{tag}=mailto:{}: {dest_domain} does not accept reports about {}: publish TXT \"v=DMARC1\" at {}._report._dmarc.{dest_domain}, or receivers send nothing",
                        dest.address, found.domain, found.domain
                    ),
                ),
                Err(e) => say(
                    Level::Error,
                    format!("{tag}=mailto:{}: DNS error: {e}", dest.address),
                ),
            }
        }
    }
    out
}

/// A `v=...; tag=...` record (MTA-STS, TLS-RPT): none is a note, several or
/// one without `tag` an error.
async fn tagged<D: Dns>(
    dns: &D,
    check: &'static str,
    name: &str,
    version: &str,
    tag: &str,
) -> Vec<Finding> {
    let texts = match dns.txt(name).await {
        Ok(t) => t,
        Err(Failure::Void) => {
            return vec![Finding::new(
                check,
                Level::Info,
                format!("no record at {name}"),
            )];
        }
        Err(Failure::Error(e)) => {
            return vec![Finding::new(
                check,
                Level::Error,
                format!("{name}: DNS error: {e}"),
            )];
        }
    };
    let records: Vec<String> = texts
        .iter()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .filter(|t| t.split(';').next().is_some_and(|v| v.trim() == version))
        .collect();
    let finding = match records.as_slice() {
        [] => Finding::new(check, Level::Info, format!("no {version} record at {name}")),
        [one] => {
            let value = one.split(';').skip(1).find_map(|t| {
                let (k, v) = t.split_once('=')?;
                (k.trim() == tag).then(|| v.trim().to_owned())
            });
            match value {
                Some(v) if !v.is_empty() => {
                    Finding::new(check, Level::Ok, format!("{name}: {one}"))
                }
                _ => Finding::new(
                    check,
                    Level::Error,
                    format!("{name}: no {tag}= in {one:?}: receivers ignore it"),
                ),
            }
        }
        many => Finding::new(
            check,
            Level::Error,
            format!(
                "{name} has {} {version} records: receivers ignore them",
                many.len()
            ),
        ),
    };
    vec![finding]
}
