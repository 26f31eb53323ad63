//! Our own RFC 7208 SPF: a record parser to the §12 ABNF ([`record`]), macro
//! strings ([`macros`]), `check_host()` with every mechanism, modifier and limit
//! ([`eval`]), over the DNS questions in [`super::lookup`] (our hickory resolver in the
//! daemon, an in-memory zone in the unit tests).

mod eval;
mod macros;
pub(crate) mod record;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use super::lookup::Dns;
use std::time::{SystemTime, UNIX_EPOCH};

/// A check's result (§2.6), with the reason for the ones that need one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None(String),
    TempError(String),
    PermError(String),
}

pub(crate) struct Check {
    pub verdict: Verdict,
    /// The domain checked (the identity's, not an include's or a redirect's).
    pub domain: String,
    /// The `exp=` text of a `fail` (§6.2), macros expanded.
    pub explanation: Option<String>,
}

/// One identity to check: MAIL FROM (`sender` = `local@domain`) or HELO.
pub(crate) struct Identity<'a> {
    pub ip: IpAddr,
    pub sender: &'a str,
    pub helo: &'a str,
    /// Our host name, for `%{r}`.
    pub receiver: &'a str,
}

/// `check_host()` for the identity's domain (§4): the MAIL FROM domain, or with a
/// null sender the HELO name as `postmaster@helo` (§2.4).
pub(crate) async fn check<D: Dns>(dns: &D, id: &Identity<'_>) -> Check {
    let helo_sender;
    let sender = if id.sender.contains('@') {
        id.sender
    } else {
        helo_sender = format!("postmaster@{}", id.helo);
        &helo_sender
    };
    let (local, domain) = sender.rsplit_once('@').unwrap_or(("", sender));
    // RFC 5322's obsolete syntax allows space around "@" ("a@ example.com").
    let (local, domain) = (local.trim(), domain.trim());
    let local = if local.is_empty() {
        "postmaster"
    } else {
        local
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if unquoted_at_signs(sender) > 1 {
        return Check {
            verdict: Verdict::None(format!(
                "MAIL FROM {:?} is not one address",
                sender.chars().take(80).collect::<String>()
            )),
            domain: domain.to_owned(),
            explanation: None,
        };
    }
    // An IPv4 client seen through IPv6 is checked as IPv4 (§5: ip4 mechanisms, A
    // records and the macros see the IPv4 address).
    let ip = match id.ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(id.ip, IpAddr::V4),
        v4 => v4,
    };
    let sender = if local == "postmaster" && sender.starts_with('@') {
        format!("postmaster{sender}")
    } else {
        sender.to_owned()
    };
    let evaluation = eval::Evaluation {
        dns,
        ip,
        sender: &sender,
        local,
        sender_domain: domain,
        helo: id.helo,
        receiver: id.receiver,
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        terms: 0,
        voids: 0,
    };
    evaluation.run(domain).await
}

/// "@" signs outside a quoted local part.
fn unquoted_at_signs(sender: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    let mut count = 0;
    for c in sender.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '@' if !quoted => count += 1,
            _ => {}
        }
    }
    count
}

/// §4.3: a name SPF can check: labels of 1 to 63 octets, 253 in all, at least two
/// labels (a final dot allowed); not a domain literal.
pub(crate) fn valid_domain(domain: &str) -> bool {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    !name.is_empty()
        && name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
        && !name.starts_with('[')
}

/// The fuzz target's entry: a record through the parser, and the bytes as an
/// explanation string through the macro parser and expansion.
#[cfg(feature = "fuzzing")]
pub(crate) fn parse_for_fuzzing(data: &[u8]) {
    let _ = record::parse(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = macros::MacroString::parse(text, macros::Context::Explanation)
    {
        let facts = macros::Facts {
            sender: "a-b+c@example.com",
            local: "a-b+c",
            sender_domain: "example.com",
            domain: "example.com",
            ip: IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
            helo: "helo.example.com",
            receiver: "mx.example.net",
            validated: "unknown",
            now: 0,
        };
        let _ = parsed.expand_domain(&facts);
    }
}
