//! The SPF part of `dns-audit`: the domain's record read by our strict parser,
//! its includes and redirect followed as a receiver would, and the DNS lookups
//! and void lookups counted against RFC 7208 §4.6.4's limits (10 and 2).

use std::collections::HashSet;

use super::{Finding, Level};
use crate::auth::lookup::{Dns, Failure};
use crate::auth::spf::record::{self, Mechanism, Qualifier, Record};

const CHECK: &str = "spf";
/// §4.6.4: DNS-querying terms per check.
const MAX_LOOKUPS: usize = 10;
/// §4.6.4: lookups that find nothing.
const MAX_VOIDS: usize = 2;

struct Walk {
    /// The domain's own record was read (else there is nothing to count).
    read: bool,
    lookups: usize,
    voids: usize,
    seen: HashSet<String>,
    out: Vec<Finding>,
}

impl Walk {
    fn say(&mut self, level: Level, message: String) {
        self.out.push(Finding::new(CHECK, level, message));
    }
}

/// The record at `domain`: `None` (with the finding said) when there is none
/// to follow.
async fn fetch<D: Dns>(dns: &D, domain: &str, w: &mut Walk, top: bool) -> Option<Record> {
    let texts = match dns.txt(domain).await {
        Ok(t) => t,
        Err(Failure::Void) => {
            if top {
                w.say(Level::Warning, format!("{domain} publishes no SPF record: receivers cannot tell its senders (result none)"));
            } else {
                w.voids += 1;
                w.say(Level::Error, format!("{domain} has no SPF record: an include of it is a permerror at every receiver"));
            }
            return None;
        }
        Err(Failure::Error(e)) => {
            w.say(Level::Error, format!("{domain}: DNS error: {e}"));
            return None;
        }
    };
    let spf: Vec<&Vec<u8>> = texts.iter().filter(|t| record::is_spf(t)).collect();
    match spf.as_slice() {
        [] if top => {
            w.say(
                Level::Warning,
                format!("{domain} publishes no SPF record (TXT without v=spf1)"),
            );
            None
        }
        [] => {
            w.say(
                Level::Error,
                format!("{domain} has no SPF record: an include of it is a permerror"),
            );
            None
        }
        [one] => match record::parse(one) {
            Ok(r) => Some(r),
            Err(e) => {
                w.say(
                    Level::Error,
                    format!("{domain}: syntax error, a permerror at every receiver: {e}"),
                );
                None
            }
        },
        many => {
            w.say(
                Level::Error,
                format!(
                    "{domain} publishes {} SPF records: a permerror at every receiver (§4.5)",
                    many.len()
                ),
            );
            None
        }
    }
}

/// Follows `domain`'s record: counts its DNS terms, checks the names they
/// point at, and descends into includes and the redirect.
async fn follow<D: Dns>(dns: &D, domain: &str, w: &mut Walk, depth: usize) {
    let top = depth == 0;
    if !w.seen.insert(domain.to_owned()) {
        w.say(
            Level::Error,
            format!("{domain} is included twice or in a loop"),
        );
        return;
    }
    if depth > MAX_LOOKUPS {
        return;
    }
    let Some(record) = Box::pin(fetch(dns, domain, w, top)).await else {
        return;
    };
    w.read |= top;
    for d in &record.directives {
        if d.mechanism.queries_dns() {
            w.lookups += 1;
        }
        match &d.mechanism {
            Mechanism::All if top && d.qualifier == Qualifier::Pass => w.say(
                Level::Error,
                format!("{domain} ends in +all: any host on the Internet passes SPF as {domain}"),
            ),
            Mechanism::All if top && d.qualifier == Qualifier::Neutral => w.say(
                Level::Warning,
                format!("{domain} ends in ?all: mail from anywhere else is neutral, not refused"),
            ),
            Mechanism::Ptr(_) => w.say(
                Level::Warning,
                format!("{domain} uses ptr: slow, unreliable, and RFC 7208 §5.5 says not to"),
            ),
            Mechanism::Include(target) => match target.literal() {
                Some(name) => Box::pin(follow(dns, &name.to_ascii_lowercase(), w, depth + 1)).await,
                None => w.say(
                    Level::Info,
                    format!("{domain}: an include with macros, not followed here"),
                ),
            },
            Mechanism::A { domain: name, .. } | Mechanism::Mx { domain: name, .. } => {
                let target = name
                    .as_ref()
                    .and_then(|n| n.literal())
                    .unwrap_or_else(|| domain.to_owned());
                let mx = matches!(d.mechanism, Mechanism::Mx { .. });
                let found = if mx {
                    dns.mx(&target).await.map(|v| v.len())
                } else {
                    match dns.a(&target).await {
                        Ok(v) => Ok(v.len()),
                        Err(Failure::Void) => dns.aaaa(&target).await.map(|v| v.len()),
                        Err(e) => Err(e),
                    }
                };
                match found {
                    Err(Failure::Void) => {
                        w.voids += 1;
                        let kind = if mx { "mx" } else { "a" };
                        w.say(Level::Warning, format!("{domain}: {kind}:{target} finds nothing (a void lookup)"));
                    }
                    Ok(n) if mx && n > MAX_LOOKUPS => w.say(
                        Level::Error,
                        format!("{domain}: mx:{target} has {n} MX hosts, over the limit of 10 (permerror)"),
                    ),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(target) = &record.redirect {
        w.lookups += 1;
        match target.literal() {
            Some(name) => Box::pin(follow(dns, &name.to_ascii_lowercase(), w, depth + 1)).await,
            None => w.say(
                Level::Info,
                format!("{domain}: a redirect with macros, not followed here"),
            ),
        }
    } else if top
        && !record
            .directives
            .iter()
            .any(|d| d.mechanism == Mechanism::All)
    {
        w.say(
            Level::Warning,
            format!("{domain} has no all and no redirect: mail from other hosts is neutral"),
        );
    }
}

/// Every SPF finding for `domain`.
pub(super) async fn audit<D: Dns>(dns: &D, domain: &str) -> Vec<Finding> {
    let mut w = Walk {
        read: false,
        lookups: 0,
        voids: 0,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    follow(dns, domain, &mut w, 0).await;
    let (lookups, voids) = (w.lookups, w.voids);
    if lookups > MAX_LOOKUPS {
        w.say(
            Level::Error,
            format!("{lookups} DNS lookups with includes resolved, over the limit of {MAX_LOOKUPS}: a permerror at every receiver"),
        );
    } else if w.read && !w.out.iter().any(|f| f.level == Level::Error) {
        let mut names: Vec<&str> = w
            .seen
            .iter()
            .map(String::as_str)
            .filter(|n| *n != domain)
            .collect();
        names.sort_unstable();
        let names = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        w.say(
            Level::Ok,
            format!("{lookups} of {MAX_LOOKUPS} DNS lookups, includes resolved: {names}"),
        );
    }
    if voids > MAX_VOIDS {
        w.say(
            Level::Error,
            format!("{voids} void lookups, over the limit of {MAX_VOIDS}: a permerror"),
        );
    }
    w.out
}
