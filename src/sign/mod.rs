//! Outbound DKIM signing: the key table from `[[signing.keys]]`, chosen by the
//! RFC5322.From domain, and the signatures for one message. Which mail is outbound
//! is decided elsewhere (`direction`); this layer only signs what it is handed.

pub mod dnscheck;
pub mod genkey;
pub mod keys;
pub mod rotate;
pub mod senders;

use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{self, DkimSigner, Done};

use crate::config::{Canonicalization, SigningConfig, SigningKeyConfig};

pub const HEADER: &str = "DKIM-Signature";

struct KeyEntry {
    domain: String,
    selector: String,
    subdomains: bool,
    signer: DkimSigner<DkimKey, Done>,
}

/// Every configured key, loaded and ready to sign.
pub struct Signer {
    keys: Vec<KeyEntry>,
}

/// What signing one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    /// One `DKIM-Signature` value (no name, LF-folded) per key, and "d/s" labels.
    Headers(Vec<String>, Vec<String>),
    /// No key for this From domain: nothing to do.
    NoKey(String),
    /// The message cannot be signed; the reason says why.
    Unsignable(String),
}

impl Signer {
    /// Loads every key file; all problems are reported together, each naming the
    /// key's file and its place in the configuration.
    pub fn from_config(config: &SigningConfig) -> Result<Signer, String> {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for (i, k) in config.keys.iter().enumerate() {
            match entry(k) {
                Ok(e) => keys.push(e),
                Err(e) => errors.push(format!(
                    "signing.keys[{i}] ({}/{}): {e}",
                    k.domain, k.selector
                )),
            }
        }
        if errors.is_empty() {
            Ok(Signer { keys })
        } else {
            Err(errors.join("\n"))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Signs `message` (header block and body, CRLF) for the domain of its From
    /// addresses, with every key for that domain.
    pub fn sign(&self, message: &[u8], from: &[String]) -> Signed {
        let mut domains: Vec<&str> = from
            .iter()
            .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d))
            .collect();
        domains.sort_unstable();
        domains.dedup();
        let domain = match domains.as_slice() {
            [] => return Signed::Unsignable("no From address".into()),
            [one] => one.trim_end_matches('.').to_ascii_lowercase(),
            _ => {
                return Signed::Unsignable(format!(
                    "From has addresses in {} domains",
                    domains.len()
                ));
            }
        };
        let chosen: Vec<&KeyEntry> = self
            .keys
            .iter()
            .filter(|k| {
                k.domain == domain
                    || (k.subdomains
                        && domain
                            .strip_suffix(k.domain.as_str())
                            .is_some_and(|p| p.ends_with('.')))
            })
            .collect();
        if chosen.is_empty() {
            return Signed::NoKey(domain);
        }
        let mut values = Vec::with_capacity(chosen.len());
        let mut labels = Vec::with_capacity(chosen.len());
        for k in chosen {
            match k.signer.sign(message) {
                Ok(signature) => {
                    let header = signature.to_header();
                    let value = header
                        .strip_prefix("DKIM-Signature:")
                        .unwrap_or(&header)
                        .trim_start()
                        .trim_end_matches(['\r', '\n'])
                        .replace("\r\n", "\n");
                    values.push(value);
                    labels.push(format!("{}/{}", k.domain, k.selector));
                }
                Err(e) => {
                    return Signed::Unsignable(format!(
                        "signing with {}/{} failed: {e}",
                        k.domain, k.selector
                    ));
                }
            }
        }
        Signed::Headers(values, labels)
    }
}

fn entry(k: &SigningKeyConfig) -> Result<KeyEntry, String> {
    let loaded = keys::load(&k.key_file)?;
    if let Some(want) = k.algorithm
        && want != loaded.algorithm
    {
        return Err(format!(
            "{}: algorithm = \"{}\" but the file holds a {} key",
            k.key_file.display(),
            want.as_str(),
            loaded.algorithm.as_str()
        ));
    }
    let canon = |c: Canonicalization| match c {
        Canonicalization::Relaxed => dkim::Canonicalization::Relaxed,
        Canonicalization::Simple => dkim::Canonicalization::Simple,
    };
    // From is listed once more than mail-auth can find it, so h= names it one time
    // more than it occurs: a second From added later breaks the signature.
    let mut headers = k.headers.clone();
    if headers.iter().any(|h| h.eq_ignore_ascii_case("From")) {
        headers.push("From".to_owned());
    }
    let mut signer = DkimSigner::from_key(loaded.key)
        .domain(k.domain.clone())
        .selector(k.selector.clone())
        .headers(headers)
        .header_canonicalization(canon(k.canonicalization.0))
        .body_canonicalization(canon(k.canonicalization.1));
    if let Some(expire) = k.expire {
        signer = signer.expiration(expire.as_secs());
    }
    Ok(KeyEntry {
        domain: k.domain.clone(),
        selector: k.selector.clone(),
        subdomains: k.subdomains,
        signer,
    })
}
