//! `check_host()` (RFC 7208 §4): record lookup and selection, every mechanism and
//! modifier, the limits (10 DNS-querying terms, 2 void lookups, 10 names per mx or
//! ptr), and the explanation of a `fail` (§6.2).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use super::macros::{Context, Facts, MacroString};
use super::record::{self, Mechanism, Qualifier, Record};
use super::{Check, Verdict};
use crate::auth::lookup::{Dns, Failure};

/// §4.6.4.
const TERM_LIMIT: u32 = 10;
const VOID_LIMIT: u32 = 2;
const NAMES_LIMIT: usize = 10;

/// An evaluation that stopped early.
enum Stop {
    Temp(String),
    Perm(String),
}

type Outcome = Result<(Verdict, Option<String>), Stop>;

pub(super) struct Evaluation<'a, D> {
    pub dns: &'a D,
    pub ip: IpAddr,
    pub sender: &'a str,
    pub local: &'a str,
    pub sender_domain: &'a str,
    pub helo: &'a str,
    pub receiver: &'a str,
    pub now: u64,
    pub terms: u32,
    pub voids: u32,
}

impl<'a, D: Dns> Evaluation<'a, D> {
    pub(super) async fn run(mut self, domain: &str) -> Check {
        let (verdict, explanation) = match self.check_host(domain.to_owned()).await {
            Ok(done) => done,
            Err(Stop::Temp(why)) => (Verdict::TempError(why), None),
            Err(Stop::Perm(why)) => (Verdict::PermError(why), None),
        };
        Check {
            verdict,
            domain: domain.to_owned(),
            explanation,
        }
    }

    fn check_host(&mut self, domain: String) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>>
    where
        D: Dns,
    {
        Box::pin(async move {
            if !super::valid_domain(&domain) {
                return Ok((
                    Verdict::None(format!("{domain} is not a domain name")),
                    None,
                ));
            }
            let record = match self.dns.txt(&domain).await {
                Ok(records) => {
                    let mut spf = records.iter().filter(|r| record::is_spf(r));
                    match (spf.next(), spf.next()) {
                        (None, _) => {
                            return Ok((
                                Verdict::None(format!("no SPF record for {domain}")),
                                None,
                            ));
                        }
                        (Some(_), Some(_)) => {
                            return Err(Stop::Perm(format!(
                                "{domain} publishes more than one SPF record"
                            )));
                        }
                        (Some(one), None) => one.clone(),
                    }
                }
                Err(Failure::Void) => {
                    return Ok((Verdict::None(format!("no SPF record for {domain}")), None));
                }
                Err(Failure::Error(e)) => {
                    return Err(Stop::Temp(format!("SPF record of {domain}: {e}")));
                }
            };
            let record = self.dns.spf_record(&record);
            let record = record
                .as_ref()
                .as_ref()
                .map_err(|e| Stop::Perm(format!("SPF record of {domain}: {e}")))?;
            self.evaluate(&domain, record).await
        })
    }

    async fn evaluate(&mut self, domain: &str, record: &Record) -> Outcome {
        for directive in &record.directives {
            if directive.mechanism.queries_dns() {
                self.count_term()?;
            }
            if self.matches(domain, &directive.mechanism).await? {
                let verdict = match directive.qualifier {
                    Qualifier::Pass => Verdict::Pass,
                    Qualifier::Fail => Verdict::Fail,
                    Qualifier::SoftFail => Verdict::SoftFail,
                    Qualifier::Neutral => Verdict::Neutral,
                };
                let explanation = match (&verdict, &record.exp) {
                    (Verdict::Fail, Some(exp)) => self.explain(domain, exp).await,
                    _ => None,
                };
                return Ok((verdict, explanation));
            }
        }
        if let Some(redirect) = &record.redirect {
            self.count_term()?;
            let target = self.expand(domain, redirect).await;
            return match self.check_host(target.clone()).await? {
                (Verdict::None(_), _) => {
                    Err(Stop::Perm(format!("redirect={target} has no SPF record")))
                }
                done => Ok(done),
            };
        }
        Ok((Verdict::Neutral, None))
    }

    fn count_term(&mut self) -> Result<(), Stop> {
        self.terms += 1;
        if self.terms > TERM_LIMIT {
            return Err(Stop::Perm(format!(
                "{} DNS-querying terms (limit {TERM_LIMIT})",
                self.terms
            )));
        }
        Ok(())
    }

    fn void(&mut self) -> Result<bool, Stop> {
        self.voids += 1;
        if self.voids > VOID_LIMIT {
            return Err(Stop::Perm(format!(
                "{} void lookups (limit {VOID_LIMIT})",
                self.voids
            )));
        }
        Ok(false)
    }

    async fn matches(&mut self, domain: &str, mechanism: &Mechanism) -> Result<bool, Stop> {
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4(net, len) => Ok(match self.ip {
                IpAddr::V4(ip) => in_prefix(&ip.octets(), &net.octets(), *len),
                IpAddr::V6(_) => false,
            }),
            Mechanism::Ip6(net, len) => Ok(match self.ip {
                IpAddr::V6(ip) => in_prefix(&ip.octets(), &net.octets(), *len),
                IpAddr::V4(_) => false,
            }),
            Mechanism::Include(spec) => {
                let target = self.expand(domain, spec).await;
                match self.check_host(target.clone()).await? {
                    (Verdict::Pass, _) => Ok(true),
                    (Verdict::None(_), _) => {
                        Err(Stop::Perm(format!("include:{target} has no SPF record")))
                    }
                    _ => Ok(false),
                }
            }
            Mechanism::A {
                domain: spec,
                v4,
                v6,
            } => {
                let target = self.target(domain, spec.as_ref()).await;
                match self.address_match(&target, *v4, *v6).await? {
                    Some(found) => Ok(found),
                    None => self.void(),
                }
            }
            Mechanism::Mx {
                domain: spec,
                v4,
                v6,
            } => {
                let target = self.target(domain, spec.as_ref()).await;
                let exchanges = match self.dns.mx(&target).await {
                    Ok(names) if !names.is_empty() => names,
                    Ok(_) | Err(Failure::Void) => return self.void(),
                    Err(Failure::Error(e)) => {
                        return Err(Stop::Temp(format!("MX of {target}: {e}")));
                    }
                };
                if exchanges.len() > NAMES_LIMIT {
                    return Err(Stop::Perm(format!(
                        "{target} has {} MX names (limit {NAMES_LIMIT})",
                        exchanges.len()
                    )));
                }
                for exchange in exchanges.iter().filter(|n| !n.is_empty()) {
                    if self.address_match(exchange, *v4, *v6).await? == Some(true) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(domain, spec.as_ref()).await;
                match self.validated_names().await {
                    Some(names) => Ok(names.iter().any(|n| within(n, &target))),
                    None => self.void(),
                }
            }
            Mechanism::Exists(spec) => {
                let target = self.expand(domain, spec).await;
                match self.dns.a(&target).await {
                    Ok(found) if !found.is_empty() => Ok(true),
                    Ok(_) | Err(Failure::Void) => self.void(),
                    Err(Failure::Error(e)) => Err(Stop::Temp(format!("exists:{target}: {e}"))),
                }
            }
        }
    }

    /// Whether `name`'s addresses of the client's family include it; `None` when
    /// the name has none (a void lookup for the a mechanism).
    async fn address_match(&self, name: &str, v4: u8, v6: u8) -> Result<Option<bool>, Stop> {
        let found = match self.ip {
            IpAddr::V4(ip) => self.dns.a(name).await.map(|list| {
                (!list.is_empty()).then(|| {
                    list.iter()
                        .any(|a| in_prefix(&ip.octets(), &a.octets(), v4))
                })
            }),
            IpAddr::V6(ip) => self.dns.aaaa(name).await.map(|list| {
                (!list.is_empty()).then(|| {
                    list.iter()
                        .any(|a| in_prefix(&ip.octets(), &a.octets(), v6))
                })
            }),
        };
        match found {
            Ok(found) => Ok(found),
            Err(Failure::Void) => Ok(None),
            Err(Failure::Error(e)) => Err(Stop::Temp(format!("addresses of {name}: {e}"))),
        }
    }

    /// §5.5: the client's PTR names (at most 10) whose addresses include it; `None`
    /// when the PTR query found nothing (a void lookup). DNS errors make a name not
    /// validated; they never stop the check.
    async fn validated_names(&self) -> Option<Vec<String>> {
        let names = match self.dns.ptr(self.ip).await {
            Ok(names) if !names.is_empty() => names,
            Ok(_) | Err(Failure::Void) => return None,
            Err(Failure::Error(_)) => return Some(Vec::new()),
        };
        let mut valid = Vec::new();
        for name in names.iter().take(NAMES_LIMIT) {
            if let Ok(Some(true)) = self.address_match(name, 32, 128).await {
                valid.push(name.clone());
            }
        }
        Some(valid)
    }

    async fn target(&self, domain: &str, spec: Option<&MacroString>) -> String {
        match spec {
            Some(spec) => self.expand(domain, spec).await,
            None => domain.to_owned(),
        }
    }

    async fn expand(&self, domain: &str, spec: &MacroString) -> String {
        let validated = self.p_macro(domain, spec).await;
        spec.expand_domain(&self.facts(domain, &validated))
    }

    /// `%{p}` (§7.3): a validated name that is the domain or below it if there is
    /// one, else any validated name, else "unknown".
    async fn p_macro(&self, domain: &str, spec: &MacroString) -> String {
        if !spec.uses_p() {
            return String::new();
        }
        let names = self.validated_names().await.unwrap_or_default();
        names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(domain))
            .or_else(|| names.iter().find(|n| within(n, domain)))
            .or(names.first())
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    }

    fn facts<'f>(&'f self, domain: &'f str, validated: &'f str) -> Facts<'f> {
        Facts {
            sender: self.sender,
            local: self.local,
            sender_domain: self.sender_domain,
            domain,
            ip: self.ip,
            helo: self.helo,
            receiver: self.receiver,
            validated,
            now: self.now,
        }
    }

    /// §6.2: the text of the `exp=` domain's one TXT record, macros expanded; any
    /// problem on the way means no explanation, never a different result.
    async fn explain(&self, domain: &str, exp: &MacroString) -> Option<String> {
        let target = self.expand(domain, exp).await;
        let records = self.dns.txt(&target).await.ok()?;
        let [text] = &records[..] else {
            return None;
        };
        let text = std::str::from_utf8(text).ok().filter(|t| t.is_ascii())?;
        let explanation = MacroString::parse(text, Context::Explanation).ok()?;
        let validated = self.p_macro(domain, &explanation).await;
        Some(explanation.expand(&self.facts(domain, &validated)))
    }
}

/// Whether `name` is `domain` or a name below it, ignoring case.
fn within(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    let domain = domain.trim_end_matches('.');
    name == domain || name.ends_with(&format!(".{domain}"))
}

fn in_prefix(ip: &[u8], net: &[u8], len: u8) -> bool {
    let len = usize::from(len);
    let whole = len / 8;
    if ip[..whole] != net[..whole] {
        return false;
    }
    let rest = len % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        ip[whole] & mask == net[whole] & mask
    }
}
