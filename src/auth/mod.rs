//! Inbound authentication: SPF, DKIM, DMARC, ARC and iprev over real DNS, and the
//! one `Authentication-Results` header that carries their results downstream.
//! Knows nothing of the milter protocol or of policy rules: it turns a message and
//! its envelope into an [`AuthReport`].

pub mod audit;
mod cache;
mod chain;
pub mod dmarc;
mod dns;
mod external;
pub(crate) mod forged;
mod from;
mod lookup;
mod outcome;
pub mod results;
mod signature;
mod spf;
mod tags;
mod verify;
#[cfg(test)]
mod zone;

use crate::config::{DnsConfig, InboundConfig};

pub use dmarc::Policy;
pub use external::ReportDestinations;
pub use forged::remove_forged;
pub use results::{AuthReport, AuthResult, FromField};
pub use verify::Envelope;

pub(crate) use dns::authenticator;
#[cfg(feature = "fuzzing")]
pub(crate) use spf::parse_for_fuzzing as spf_record;

/// The fuzz target's entry for the strict field readers: the bytes split at the
/// first NUL into a field name and value (which header the value stands for).
#[cfg(feature = "fuzzing")]
pub(crate) fn auth_fields(data: &[u8]) {
    let (name, value) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"From"[..], data),
    };
    let _ = from::author_domains(&[value]);
    if let Ok(tags) = tags::Tags::parse(value) {
        let _ = tags.require(&["v", "a", "b"]);
    }
    signature::read_for_fuzzing(value);
    let _ = chain::check(&[(name, value), (b"ARC-Seal", value)]);
}

pub const HEADER: &str = "Authentication-Results";

/// The inbound verifier: a resolver, its caches and the settings the checks use.
pub struct Verifier {
    resolver: mail_auth::MessageAuthenticator,
    caches: dns::Caches,
    /// Answers for the lookups we make ourselves (SPF, DKIM key records).
    answers: lookup::AnswerCache,
    /// Our name in the header, and the host name SPF's `%{r}` macro expands to.
    authserv_id: String,
    /// How DMARC policies and organizational domains are found.
    discovery: dmarc::Discovery,
    /// ARC sealers whose pass may override a DMARC failure (lower case).
    trusted_arc_sealers: Vec<String>,
}

impl Verifier {
    /// Whether the name servers answer at all: any DNS answer (even NXDOMAIN or
    /// REFUSED) counts; a time-out or an unreachable server does not.
    pub async fn dns_reachable(&self) -> Result<(), String> {
        use mail_auth::hickory_resolver::net::NetError;
        use mail_auth::hickory_resolver::proto::rr::RecordType;
        match self
            .resolver
            .resolver()
            .lookup(
                format!("{}.", self.authserv_id.trim_end_matches('.')),
                RecordType::SOA,
            )
            .await
        {
            Ok(_) | Err(NetError::Dns(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn new(dns: &DnsConfig, inbound: &InboundConfig) -> Result<Self, String> {
        Ok(Verifier {
            resolver: dns::authenticator(dns)?,
            caches: dns::Caches::new(dns::CACHE_ENTRIES),
            answers: lookup::AnswerCache::new(dns::CACHE_ENTRIES),
            authserv_id: inbound.authserv_id.clone(),
            discovery: inbound.dmarc_discovery,
            trusted_arc_sealers: inbound
                .trusted_arc_sealers
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
        })
    }

    pub fn authserv_id(&self) -> &str {
        &self.authserv_id
    }
}

/// The first eight characters of the base64 form of a signature (RFC 6008's
/// `header.b`), enough to tell two signatures of one domain apart.
pub(crate) fn base64_prefix(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(8);
    for chunk in bytes.chunks(3).take(2) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::decision::Edit;
    use crate::transaction::{HeaderField, Transaction};

    #[test]
    fn forged_headers_with_our_id_are_removed_highest_first() {
        let header = |name: &str, value: &'static str| HeaderField {
            name: name.into(),
            value: Bytes::from_static(value.as_bytes()),
        };
        let tx = Transaction {
            headers: vec![
                header("Authentication-Results", " MX.Test; dmarc=pass"),
                header("Subject", " hi"),
                header("authentication-results", " other.example; spf=pass"),
                header("ARC-Authentication-Results", " i=1; mx.test; dkim=pass"),
                header("Authentication-Results", " (x) mx.test 1; dkim=pass"),
            ],
            ..Default::default()
        };
        assert_eq!(
            remove_forged(&tx, "mx.test"),
            vec![
                Edit::DeleteHeader {
                    name: HEADER.into(),
                    occurrence: 3
                },
                Edit::DeleteHeader {
                    name: HEADER.into(),
                    occurrence: 1
                },
            ]
        );
    }

    #[test]
    fn base64_prefix_matches_the_standard_alphabet() {
        assert_eq!(base64_prefix(b"\xff\xef\xbe\x00\x01\x02\x03"), "/+++AAEC");
        assert_eq!(base64_prefix(b"Ma"), "TWE");
        assert_eq!(base64_prefix(b""), "");
    }
}
