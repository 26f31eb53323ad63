//! `check-config --check-dns`: fetch each selector's published key and compare it
//! with the private key we would sign with — a mismatch silently breaks DKIM for
//! every message, and nothing else would tell the admin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::MessageAuthenticator;
use mail_auth::hickory_resolver::proto::rr::{Name, RData};

use super::keys;
use crate::config::{Config, KeyAlgorithm, SigningKeyConfig};

/// The outcome for one configured key: `Ok` with a description, or what is wrong.
pub struct KeyCheck {
    pub name: String,
    pub outcome: Result<String, String>,
}

/// Checks every `[[signing.keys]]` entry with the configured resolver.
pub async fn check_config(config: &Config) -> Result<Vec<KeyCheck>, String> {
    let resolver = crate::auth::authenticator(&config.dns)?;
    Ok(check(&resolver, &config.signing.keys).await)
}

pub async fn check(
    resolver: &MessageAuthenticator,
    keys_cfg: &[SigningKeyConfig],
) -> Vec<KeyCheck> {
    let mut out = Vec::new();
    for k in keys_cfg {
        let name = format!("{}._domainkey.{}", k.selector, k.domain);
        let outcome = match keys::load(&k.key_file) {
            Err(e) => Err(e),
            Ok(key) => match published(resolver, &name).await {
                Err(e) => Err(e),
                Ok(records) => compare(&key, &records),
            },
        };
        out.push(KeyCheck { name, outcome });
    }
    out
}

async fn published(resolver: &MessageAuthenticator, name: &str) -> Result<Vec<String>, String> {
    let fqdn = Name::from_str_relaxed(format!("{name}.")).map_err(|e| format!("{name}: {e}"))?;
    let lookup = resolver
        .resolver()
        .txt_lookup(fqdn)
        .await
        .map_err(|e| format!("no TXT record found ({e})"))?;
    Ok(lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// Compares published records with our key: the `k=` kind and the `p=` bytes.
fn compare(key: &keys::LoadedKey, records: &[String]) -> Result<String, String> {
    let ours = BASE64.decode(&key.public_key).unwrap_or_default();
    let mut problems = Vec::new();
    for record in records {
        let tag = |name: &str| {
            record.split(';').find_map(|t| {
                let (k, v) = t.split_once('=')?;
                (k.trim() == name).then(|| v.split_whitespace().collect::<String>())
            })
        };
        let Some(p) = tag("p") else {
            problems.push("a TXT record without p=".to_owned());
            continue;
        };
        if p.is_empty() {
            problems.push("the key is revoked (empty p=)".to_owned());
            continue;
        }
        let kind = tag("k").unwrap_or_else(|| "rsa".to_owned());
        let want = match key.algorithm {
            KeyAlgorithm::RsaSha256 => "rsa",
            KeyAlgorithm::Ed25519Sha256 => "ed25519",
        };
        if kind != want {
            problems.push(format!("published k={kind}, the private key is {want}"));
            continue;
        }
        match BASE64.decode(&p) {
            Ok(theirs) if theirs == ours => {
                return Ok(format!(
                    "published key matches ({})",
                    key.algorithm.as_str()
                ));
            }
            Ok(_) => problems.push(
                "the published key does NOT match the private key: every signature will fail"
                    .to_owned(),
            ),
            Err(_) => problems.push("p= is not valid base64".to_owned()),
        }
    }
    Err(if problems.is_empty() {
        "no TXT record found".to_owned()
    } else {
        problems.join("; ")
    })
}
