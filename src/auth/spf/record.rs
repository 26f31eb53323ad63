//! An SPF record parsed to RFC 7208 §12's ABNF. The whole record is parsed before
//! anything is evaluated (§4.6: a syntax error anywhere is a `permerror`, even
//! after a mechanism that would have matched), and every error names what is wrong.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::{Context, MacroString};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Mechanism {
    All,
    Include(MacroString),
    A {
        domain: Option<MacroString>,
        v4: u8,
        v6: u8,
    },
    Mx {
        domain: Option<MacroString>,
        v4: u8,
        v6: u8,
    },
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

impl Mechanism {
    /// §4.6.4: these cost a DNS query and count toward the limit of 10.
    pub(crate) fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A { .. }
                | Mechanism::Mx { .. }
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// §4.5: a record is an SPF record when it begins with `v=spf1` (any case)
/// followed by a space or its end.
pub(crate) fn is_spf(txt: &[u8]) -> bool {
    txt.len() >= 6
        && txt[..6].eq_ignore_ascii_case(b"v=spf1")
        && txt.get(6).is_none_or(|b| *b == b' ')
}

pub(crate) fn parse(txt: &[u8]) -> Result<Record, String> {
    if !is_spf(txt) {
        return Err("not an SPF record".into());
    }
    if let Some(bad) = txt.iter().find(|b| !(0x20..0x7f).contains(*b)) {
        return Err(format!("byte {bad:#04x} in the record"));
    }
    // Checked above: every byte is printable ASCII.
    let text = String::from_utf8_lossy(&txt[6..]);
    let mut record = Record::default();
    for term in text.split(' ').filter(|t| !t.is_empty()) {
        if let Some((name, value)) = modifier(term) {
            let slot = match name.to_ascii_lowercase().as_str() {
                "redirect" => &mut record.redirect,
                "exp" => &mut record.exp,
                _ => {
                    MacroString::parse(value, Context::Domain)
                        .map_err(|e| format!("modifier {name}: {e}"))?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(format!("{name}= appears twice"));
            }
            *slot = Some(domain_spec(value).map_err(|e| format!("{name}={value}: {e}"))?);
        } else {
            record.directives.push(directive(term)?);
        }
    }
    Ok(record)
}

/// `name "=" macro-string`, where name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let end = term.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))?;
    let (name, rest) = term.split_at(end);
    let value = rest.strip_prefix('=')?;
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        .then_some((name, value))
}

fn directive(term: &str) -> Result<Directive, String> {
    let (qualifier, body) = match term.as_bytes()[0] {
        b'+' => (Qualifier::Pass, &term[1..]),
        b'-' => (Qualifier::Fail, &term[1..]),
        b'~' => (Qualifier::SoftFail, &term[1..]),
        b'?' => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let split = body.find([':', '/']).unwrap_or(body.len());
    let (name, args) = body.split_at(split);
    let unexpected = || format!("{term:?} takes no argument");
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "all" => return Err(unexpected()),
        "include" => Mechanism::Include(required_domain(term, args)?),
        "exists" => Mechanism::Exists(required_domain(term, args)?),
        "ptr" => Mechanism::Ptr(match args {
            "" => None,
            _ => Some(required_domain(term, args)?),
        }),
        "a" | "mx" => {
            let (rest, v4, v6) = dual_cidr(args).map_err(|e| format!("{term:?}: {e}"))?;
            let domain = match rest {
                "" => None,
                _ => Some(required_domain(term, rest)?),
            };
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A { domain, v4, v6 }
            } else {
                Mechanism::Mx { domain, v4, v6 }
            }
        }
        "ip4" => {
            let value = args
                .strip_prefix(':')
                .ok_or_else(|| format!("{term:?} needs an address"))?;
            let (addr, len) = split_cidr(value, 32).map_err(|e| format!("{term:?}: {e}"))?;
            Mechanism::Ip4(
                ipv4(addr).ok_or_else(|| format!("{term:?}: {addr:?} is not an IPv4 address"))?,
                len,
            )
        }
        "ip6" => {
            let value = args
                .strip_prefix(':')
                .ok_or_else(|| format!("{term:?} needs an address"))?;
            let (addr, len) = split_cidr(value, 128).map_err(|e| format!("{term:?}: {e}"))?;
            Mechanism::Ip6(
                addr.parse()
                    .map_err(|_| format!("{term:?}: {addr:?} is not an IPv6 address"))?,
                len,
            )
        }
        _ => return Err(format!("unknown mechanism {term:?}")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
    })
}

/// `":" domain-spec` with nothing after it.
fn required_domain(term: &str, args: &str) -> Result<MacroString, String> {
    let value = args
        .strip_prefix(':')
        .ok_or_else(|| format!("{term:?} needs \":domain\""))?;
    domain_spec(value).map_err(|e| format!("{term:?}: {e}"))
}

fn domain_spec(value: &str) -> Result<MacroString, String> {
    if value.is_empty() {
        return Err("empty domain".into());
    }
    let spec = MacroString::parse(value, Context::Domain)?;
    if !spec.ends_like_a_domain() {
        return Err(format!(
            "{value:?} does not end in a top-level label or a macro"
        ));
    }
    Ok(spec)
}

/// `[ "/" ip4-cidr-length ] [ "//" ip6-cidr-length ]` at the end of an a or mx
/// mechanism; returns what precedes it and the lengths (32 and 128 by default).
fn dual_cidr(args: &str) -> Result<(&str, u8, u8), String> {
    let mut rest = args;
    let mut v6 = 128;
    if let Some(pos) = rest.rfind("//") {
        let digits = &rest[pos + 2..];
        if !digits.contains(['/', ':', '.']) {
            v6 = cidr_length(digits, 128)?;
            rest = &rest[..pos];
        }
    }
    let mut v4 = 32;
    if let Some(pos) = rest.rfind('/') {
        let digits = &rest[pos + 1..];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            v4 = cidr_length(digits, 32)?;
            rest = &rest[..pos];
        } else if digits.is_empty() {
            return Err("empty prefix length".into());
        }
    }
    if !rest.is_empty() && !rest.starts_with(':') {
        return Err(format!("unexpected {rest:?}"));
    }
    Ok((rest, v4, v6))
}

/// `network [ "/" length ]` for ip4 and ip6.
fn split_cidr(value: &str, max: u8) -> Result<(&str, u8), String> {
    match value.split_once('/') {
        Some((addr, digits)) => Ok((addr, cidr_length(digits, max)?)),
        None => Ok((value, max)),
    }
}

/// `"0" / %x31-39 0*2DIGIT`, at most `max`.
fn cidr_length(digits: &str, max: u8) -> Result<u8, String> {
    let ok = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u16>() {
        Ok(n) if ok && n <= u16::from(max) => Ok(n as u8),
        _ => Err(format!("prefix length {digits:?} (0 to {max})")),
    }
}

/// `qnum "." qnum "." qnum "." qnum`: no leading zeros, each at most 255.
fn ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty()
            || part.len() > 3
            || !part.bytes().all(|b| b.is_ascii_digit())
            || (part.len() > 1 && part.starts_with('0'))
        {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}
