//! The conditions that look at more than one fact: text and header patterns,
//! networks, authentication results, rate limits, links, throwaway domains,
//! impersonation and the antivirus outcome. Each returns its [`Check`] with the
//! reason an admin reads in `mailwarden scan`.

use ipnet::IpNet;

use super::Check;
use super::check::Cx;
use super::facts::{Facts, domain_of};
use crate::config::{DomainList, Impersonation, Matcher, TextField, in_networks, normalize_name};

pub(super) fn text(field: &TextField, matcher: &Matcher, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let refs = text_values(*field, f);
        match matcher.first_match(&refs) {
            Some((v, p)) => cx.leaf(true, || {
                format!("{} {:?} matches {}", field.name(), clip(v), p.describe())
            }),
            None => cx.leaf(false, || {
                format!(
                    "{} {} does not match {}",
                    field.name(),
                    shown_values(&refs),
                    matcher.describe()
                )
            }),
        }
    }
}

pub(super) fn header(name: &str, matcher: &Matcher, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let values: Vec<&str> = f
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        match matcher.first_match(&values) {
            Some((v, p)) => cx.leaf(true, || {
                format!("header {name} {:?} matches {}", clip(v), p.describe())
            }),
            None => cx.leaf(false, || {
                format!(
                    "header {name} {} does not match {}",
                    shown_values(&values),
                    matcher.describe()
                )
            }),
        }
    }
}

pub(super) fn client_ip(nets: &[IpNet], cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    match f.client_ip {
        None => cx.leaf(false, || "no client IP (local submission)".into()),
        Some(ip) => match in_networks(nets, ip) {
            Some(net) => cx.leaf(true, || format!("client_ip {ip} is in {net}")),
            None => cx.leaf(false, || {
                format!("client_ip {ip} is in none of {} networks", nets.len())
            }),
        },
    }
}

pub(super) fn auth_result(method: &&str, wanted: &[String], cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let got: Vec<&str> = f
            .auth
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, r)| r.as_str())
            .collect();
        if got.is_empty() {
            return cx.leaf(false, || format!("{method} was not checked (not inbound)"));
        }
        let hit = got.iter().find(|g| wanted.iter().any(|w| w == *g));
        cx.leaf(hit.is_some(), || {
            format!(
                "{method}={} {} {}",
                got.join(","),
                if hit.is_some() { "is in" } else { "is not in" },
                wanted.join(",")
            )
        })
    }
}

pub(super) fn rate_limit(index: &usize, name: &str, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let (Some(rates), Some(limit)) = (cx.rates, cx.rates.and_then(|r| r.limits.get(*index)))
        else {
            return cx.leaf(false, || format!("rate limit {name} not counted here"));
        };
        let keys = super::limit_keys(limit, f);
        if keys.is_empty() {
            return cx.leaf(false, || {
                format!("rate limit {name}: the message has no {}", limit.key.name())
            });
        }
        // Counted in Redis before the rules ran (fleet mode), else here in memory.
        let over: Vec<&String> = keys
            .iter()
            .filter(|k| match rates.counted {
                Some(counted) => counted.get(&(*index, k.to_ascii_lowercase())) == Some(&true),
                None => rates.limiter.exceeded(*index, limit, k, rates.now),
            })
            .collect();
        let per = limit.per.as_secs();
        match over.first() {
            Some(k) => cx.leaf(true, || {
                format!(
                    "rate limit {name} exceeded for {} {k:?} ({} per {per}s, burst {})",
                    limit.key.name(),
                    limit.count,
                    limit.burst
                )
            }),
            None => cx.leaf(false, || {
                format!(
                    "rate limit {name} not exceeded ({} per {per}s)",
                    limit.count
                )
            }),
        }
    }
}

pub(super) fn url_ip_literal(want: &bool, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let hit = f.links.iter().find(|l| l.ip_literal);
        cx.leaf(hit.is_some() == *want, || match hit {
            Some(l) => format!("a link goes to the IP address {}", l.host),
            None => format!("no link goes to an IP address ({} links)", f.links.len()),
        })
    }
}

pub(super) fn url_text_mismatch(want: &bool, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let hit = f.links.iter().find(|l| l.text_mismatch());
        cx.leaf(hit.is_some() == *want, || match hit {
            Some(l) => format!(
                "a link reads {} but goes to {}",
                l.text_host.as_deref().unwrap_or("?"),
                l.host
            ),
            None => format!(
                "no link text names another site than it goes to ({} links)",
                f.links.len()
            ),
        })
    }
}

pub(super) fn disposable_sender(list: &DomainList, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    {
        let domains: Vec<&str> = std::iter::once(f.sender_domain())
            .chain(f.from_address.iter().map(|a| domain_of(a)))
            .filter(|d| !d.is_empty())
            .collect();
        match domains
            .iter()
            .find_map(|d| list.find(d).map(|hit| (*d, hit)))
        {
            Some((d, hit)) => cx.leaf(true, || {
                format!("sender domain {d} is {hit} in {}", list.source)
            }),
            None => cx.leaf(false, || {
                format!("{} not in {}", shown_values(&domains), list.source)
            }),
        }
    }
}

pub(super) fn virus(want: &bool, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    match &f.viruses {
        None => cx.leaf(false, || "not scanned".into()),
        Some(v) => cx.leaf(v.is_empty() != *want, || {
            if v.is_empty() {
                "clamd found nothing".into()
            } else {
                format!("clamd found {}", v.join(", "))
            }
        }),
    }
}

pub(super) fn impersonation(imp: &Impersonation, cx: &Cx<'_, '_>) -> Check {
    let f = cx.f;
    let outside: Vec<(&String, &String)> = f
        .from_name
        .iter()
        .zip(&f.from_address)
        .filter(|(_, addr)| imp.domains.find(domain_of(addr)).is_none())
        .collect();
    if outside.is_empty() {
        return cx.leaf(false, || {
            "From is one of our domains, or has no address".into()
        });
    }
    for (name, addr) in outside {
        let normalized = normalize_name(name);
        if let Some(hit) = imp
            .names
            .iter()
            .find(|n| !n.is_empty() && normalized.contains(n.as_str()))
        {
            return cx.leaf(true, || {
                format!("From {name:?} <{addr}> claims the protected name {hit:?} from outside")
            });
        }
        let lower = name.to_ascii_lowercase();
        if let Some(d) = imp
            .domains
            .domains
            .iter()
            .find(|d| lower.contains(d.as_str()))
        {
            return cx.leaf(true, || {
                format!("From {name:?} <{addr}> names our domain {d} from outside")
            });
        }
    }
    cx.leaf(false, || {
        "no From display name claims a protected name or our domains".into()
    })
}

fn text_values(field: TextField, f: &Facts) -> Vec<&str> {
    fn all(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    match field {
        TextField::ReverseName => vec![&f.reverse_name],
        TextField::Helo => vec![&f.helo],
        TextField::AuthUser => f.auth_user.iter().map(String::as_str).collect(),
        TextField::Sender => vec![&f.sender],
        TextField::SenderDomain => vec![f.sender_domain()],
        TextField::Recipient => all(&f.recipients),
        TextField::RecipientDomain => f.recipients.iter().map(|r| domain_of(r)).collect(),
        TextField::Subject => vec![&f.subject],
        TextField::FromName => all(&f.from_name),
        TextField::FromAddress => all(&f.from_address),
        TextField::Body => vec![&f.body],
        TextField::VirusName => f.viruses.as_deref().map(all).unwrap_or_default(),
        TextField::AttachmentName => f.attachments.iter().map(|a| a.name.as_str()).collect(),
        TextField::AttachmentExt => f.attachments.iter().map(|a| a.ext.as_str()).collect(),
        TextField::AttachmentType => f
            .attachments
            .iter()
            .flat_map(|a| [Some(a.mime.as_str()), a.detected.as_deref()])
            .flatten()
            .filter(|t| !t.is_empty())
            .collect(),
        TextField::UrlHost => f.links.iter().map(|l| l.host.as_str()).collect(),
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn shown_values(values: &[&str]) -> String {
    match values {
        [] => "(none)".into(),
        [one] => format!("{:?}", clip(one)),
        many => format!(
            "{:?}",
            many.iter().take(5).map(|v| clip(v)).collect::<Vec<_>>()
        ),
    }
}
