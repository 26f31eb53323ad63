//! The `[signing]` section: which keys sign outbound mail for which From domains,
//! and how. Parsed here into [`SigningConfig`]; the key files themselves are read
//! and checked by the `sign` layer when the daemon (or check-config) loads them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use ipnet::IpNet;

use super::model::{
    Canonicalization, FromPattern, KeyAlgorithm, OnSignError, OnUnauthorized, SenderBinding,
    SenderId, SigningConfig, SigningKeyConfig,
};
use super::parse::{S, parse_domain};
use super::units::parse_duration;

/// The headers a signature covers unless configured otherwise: what a reader sees
/// and what threading and unsubscribing rely on.
pub const DEFAULT_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Sender",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigning {
    keys: Option<Vec<Spanned<RawKey>>>,
    on_error: S<String>,
    senders: Option<Vec<Spanned<RawSender>>>,
    on_unauthorized: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSender {
    user: S<String>,
    network: S<String>,
    local: Option<bool>,
    from: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKey {
    domain: S<String>,
    selector: S<String>,
    key_file: S<String>,
    algorithm: S<String>,
    subdomains: Option<bool>,
    headers: Option<Spanned<Vec<Spanned<String>>>>,
    expire: S<String>,
    canonicalization: S<String>,
}

pub(super) fn check_signing(
    c: &mut Checker<'_>,
    raw: RawSigning,
    config_file: Option<&Path>,
) -> SigningConfig {
    let on_error = c.value(
        raw.on_error,
        "signing.on_error",
        OnSignError::Accept,
        |t| match t {
            "accept" => Ok(OnSignError::Accept),
            "tempfail" => Ok(OnSignError::Tempfail),
            other => Err(format!(
                "{other:?} is not an action: use \"accept\" (deliver unsigned, logged) or \"tempfail\""
            )),
        },
    );
    let base = super::parse::config_dir(config_file);
    let mut keys: Vec<SigningKeyConfig> = Vec::new();
    for (i, spanned) in raw.keys.unwrap_or_default().into_iter().enumerate() {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let key = |field: &str| format!("signing.keys[{i}].{field}");
        let required =
            |c: &mut Checker<'_>, v: S<String>, field: &str| -> Option<Spanned<String>> {
                if v.is_none() {
                    c.error(Some(span.clone()), &key(field), "is required");
                }
                v
            };
        let domain = required(c, raw.domain, "domain");
        let selector = required(c, raw.selector, "selector");
        let key_file = required(c, raw.key_file, "key_file");
        let domain = c.value(domain, &key("domain"), String::new(), parse_domain);
        let selector = c.value(selector, &key("selector"), String::new(), parse_selector);
        let key_file = c.value(key_file, &key("key_file"), PathBuf::new(), |t| {
            if t.is_empty() {
                return Err("is empty".into());
            }
            Ok(base.join(t))
        });
        let algorithm = c.value(raw.algorithm, &key("algorithm"), None, |t| match t {
            "rsa-sha256" => Ok(Some(KeyAlgorithm::RsaSha256)),
            "ed25519-sha256" => Ok(Some(KeyAlgorithm::Ed25519Sha256)),
            other => Err(format!(
                "{other:?} is not a signing algorithm: use \"rsa-sha256\" or \"ed25519-sha256\""
            )),
        });
        let headers = match raw.headers {
            None => DEFAULT_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
            Some(list) => {
                let list_span = list.span();
                let headers = c.list(list.into_inner(), &key("headers"), parse_header_name);
                if !headers.iter().any(|h| h.eq_ignore_ascii_case("From")) {
                    c.error(
                        Some(list_span),
                        &key("headers"),
                        "must include From (RFC 6376 §5.4)",
                    );
                }
                headers
            }
        };
        let expire = c.value(
            raw.expire,
            &key("expire"),
            None,
            |t| match parse_duration(t)? {
                d if d < Duration::from_secs(3600) => {
                    Err("must be at least 1h: mail can sit in queues that long".into())
                }
                d => Ok(Some(d)),
            },
        );
        let canonicalization = c.value(
            raw.canonicalization,
            &key("canonicalization"),
            (Canonicalization::Relaxed, Canonicalization::Relaxed),
            parse_canonicalization,
        );
        if keys
            .iter()
            .any(|k| k.domain == domain && k.selector == selector && !domain.is_empty())
        {
            c.error(
                Some(span.clone()),
                &key("selector"),
                format!("{selector} for {domain} is configured twice"),
            );
        }
        keys.push(SigningKeyConfig {
            domain,
            selector,
            key_file,
            algorithm,
            subdomains: raw.subdomains.unwrap_or(false),
            headers,
            expire,
            canonicalization,
        });
    }
    let on_unauthorized = c.value(
        raw.on_unauthorized,
        "signing.on_unauthorized",
        OnUnauthorized::Unsigned,
        |t| match t {
            "unsigned" => Ok(OnUnauthorized::Unsigned),
            "reject" => Ok(OnUnauthorized::Reject),
            other => Err(format!(
                "{other:?} is not an action: use \"unsigned\" (deliver without our signature, logged) or \"reject\""
            )),
        },
    );
    let senders = raw
        .senders
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| check_sender(c, i, s))
        .collect();
    SigningConfig {
        keys,
        on_error,
        senders,
        on_unauthorized,
    }
}

/// One `[[signing.senders]]` entry: exactly one of `user`, `network`, `local`, and
/// a non-empty `from`.
fn check_sender(c: &mut Checker<'_>, i: usize, raw: Spanned<RawSender>) -> Option<SenderBinding> {
    let span = raw.span();
    let raw = raw.into_inner();
    let key = |field: &str| format!("signing.senders[{i}].{field}");
    let given = [
        raw.user.is_some(),
        raw.network.is_some(),
        raw.local == Some(true),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        c.error(
            Some(span.clone()),
            &key("user"),
            "give exactly one of user (SASL login), network or local = true",
        );
        return None;
    }
    let who = if let Some(user) = raw.user {
        let name = c.value(Some(user), &key("user"), String::new(), |t| {
            if t.is_empty() || t.chars().any(char::is_control) {
                Err(format!("{t:?} is not a login name"))
            } else {
                Ok(t.to_owned())
            }
        });
        SenderId::User(name)
    } else if let Some(net) = raw.network {
        let fallback = IpNet::from(std::net::IpAddr::from([0u8, 0, 0, 0]));
        let net = c.value(Some(net), &key("network"), None, |t| {
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(Some)
                .map_err(|_| format!("{t:?} is not an IP address or network"))
        });
        SenderId::Network(net.unwrap_or(fallback))
    } else {
        SenderId::Local
    };
    let from = raw.from.unwrap_or_default();
    if from.is_empty() {
        c.error(
            Some(span),
            &key("from"),
            "is required: the From domains (example.com, *.example.com) or addresses this sender may use",
        );
        return None;
    }
    let from = c.list(from, &key("from"), parse_from_pattern);
    Some(SenderBinding { who, from })
}

fn parse_from_pattern(t: &str) -> Result<FromPattern, String> {
    let t = t.trim().to_ascii_lowercase();
    if let Some((local, domain)) = t.split_once('@') {
        if local.is_empty() || local.contains(char::is_whitespace) {
            return Err(format!("{t:?} is not an address"));
        }
        let domain = parse_domain(domain)?;
        return Ok(FromPattern::Address(format!("{local}@{domain}")));
    }
    match t.strip_prefix("*.") {
        Some(parent) => parse_domain(parent).map(FromPattern::Subdomains),
        None => parse_domain(&t).map(FromPattern::Domain),
    }
}

/// A selector: one or more DNS labels.
pub fn parse_selector(t: &str) -> Result<String, String> {
    let ok = !t.is_empty()
        && t.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!(
            "{t:?} is not a selector (DNS labels such as \"s2026\")"
        ))
    }
}

fn parse_header_name(t: &str) -> Result<String, String> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        Ok(t.to_owned())
    } else {
        Err(format!("{t:?} is not a header field name"))
    }
}

fn parse_canonicalization(t: &str) -> Result<(Canonicalization, Canonicalization), String> {
    let one = |s: &str| match s {
        "relaxed" => Some(Canonicalization::Relaxed),
        "simple" => Some(Canonicalization::Simple),
        _ => None,
    };
    let (h, b) = t.split_once('/').unwrap_or((t, "simple"));
    match (one(h), one(b)) {
        (Some(h), Some(b)) => Ok((h, b)),
        _ => Err(format!(
            "{t:?} is not a canonicalization: use \"relaxed/relaxed\", \"relaxed/simple\", \"simple/relaxed\" or \"simple/simple\""
        )),
    }
}
