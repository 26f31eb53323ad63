//! `mailwarden keys rotate`: the next key for a signing domain, made beside the
//! current one, with its DNS record and the configuration change to make once
//! the record is visible. Nothing signs with the new key until the admin edits
//! the configuration, and `check-config --check-dns` refuses the edit while the
//! record is not published or does not match.

use std::path::Path;

use super::genkey::{self, Generated, Ownership};
use crate::config::{Config, KeyAlgorithm, SigningKeyConfig};

/// A rotation: the key in use and the one made to replace it.
pub struct Rotation {
    pub current: SigningKeyConfig,
    pub algorithm: KeyAlgorithm,
    pub next: Generated,
    pub next_selector: String,
}

/// What `keys rotate` was asked for.
pub struct Request<'a> {
    pub domain: &'a str,
    /// The new selector; by default `s` and this year and month (`s202612`).
    pub selector: Option<&'a str>,
    /// Which of the domain's keys, when it has several (RSA and ed25519).
    pub algorithm: Option<KeyAlgorithm>,
    pub rsa_bits: usize,
    pub owner: Ownership,
}

/// Makes the next key for `request.domain`, in the folder of its current key.
pub fn rotate(config: &Config, request: &Request<'_>) -> Result<Rotation, String> {
    let domain = request.domain.to_ascii_lowercase();
    // Each key's algorithm: as configured, else as its file says.
    let mut candidates: Vec<(&SigningKeyConfig, KeyAlgorithm)> = Vec::new();
    for k in config.signing.keys.iter().filter(|k| k.domain == domain) {
        let algorithm = match k.algorithm {
            Some(a) => a,
            None => super::keys::load(&k.key_file)?.algorithm,
        };
        if request.algorithm.is_none_or(|a| a == algorithm) {
            candidates.push((k, algorithm));
        }
    }
    let (current, algorithm) = match candidates.as_slice() {
        [] => {
            return Err(format!(
                "no [[signing.keys]] entry for {domain}{}",
                request
                    .algorithm
                    .map(|a| format!(" with algorithm {}", a.as_str()))
                    .unwrap_or_default()
            ));
        }
        [(one, algorithm)] => ((*one).clone(), *algorithm),
        _ => {
            return Err(format!(
                "{domain} has several keys; say which with --algorithm rsa-sha256 or ed25519-sha256"
            ));
        }
    };
    let selector = match request.selector {
        Some(s) => crate::config::parse_selector(s)?.to_ascii_lowercase(),
        None => dated_selector(std::time::SystemTime::now()),
    };
    if selector == current.selector {
        return Err(format!(
            "{selector} is the selector in use; give another with --selector"
        ));
    }
    let dir = current.key_file.parent().unwrap_or(Path::new("."));
    let bits = if algorithm == KeyAlgorithm::RsaSha256 {
        request.rsa_bits
    } else {
        0
    };
    let next = genkey::generate(&domain, &selector, algorithm, bits, dir, request.owner)?;
    Ok(Rotation {
        current,
        algorithm,
        next,
        next_selector: selector,
    })
}

/// `s` and the year and month of `now` (UTC).
fn dated_selector(now: std::time::SystemTime) -> String {
    let days = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let (year, month, _) = crate::calendar::civil_from_days(days);
    format!("s{year}{month:02}")
}

impl Rotation {
    /// The procedure, as comment lines around the record and the change.
    pub fn instructions(&self) -> String {
        let c = &self.current;
        let n = &self.next;
        format!(
            "; wrote {path} ({alg}, mode {mode:04o})\n\
             ; 1. publish this record in the {domain} zone:\n\
             {zone}\n\
             ; 2. wait until it is visible everywhere: at least its TTL (3600 s here) after\n\
             ;    every authoritative server has it (dig +short TXT {name}).\n\
             ; 3. then change the entry for {domain} in mailwarden.toml:\n\
             ;      selector = \"{old_sel}\"  ->  selector = \"{new_sel}\"\n\
             ;      key_file = \"{old_file}\"  ->  key_file = \"{path}\"\n\
             ;    and run `mailwarden check-config --check-dns` (it refuses the new selector\n\
             ;    while the record is missing or does not match), then `systemctl reload mailwarden`.\n\
             ; 4. keep the old record {old_sel}._domainkey.{domain} published for a week, so mail\n\
             ;    signed with it still verifies (queued, forwarded, re-checked); then publish it\n\
             ;    with an empty p= (revoked) and delete {old_file}.\n",
            path = n.path.display(),
            alg = self.algorithm.as_str(),
            mode = n.mode,
            domain = c.domain,
            zone = n.zone_line(),
            name = n.record_name,
            old_sel = c.selector,
            new_sel = self.next_selector,
            old_file = c.key_file.display(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_selectors() {
        let at = |secs: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(dated_selector(at(0)), "s197001");
        // 2026-12-03 09:00 UTC and 2024-02-29.
        assert_eq!(dated_selector(at(1_796_288_400)), "s202612");
        assert_eq!(dated_selector(at(1_709_164_800)), "s202402");
    }

    #[test]
    fn rotates_the_one_key_of_a_domain_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let old = genkey::generate(
            "example.com",
            "s1",
            KeyAlgorithm::Ed25519Sha256,
            0,
            dir.path(),
            Ownership::default(),
        )
        .unwrap();
        let config = crate::config::parse_str(
            &format!(
                "[[signing.keys]]\ndomain = \"example.com\"\nselector = \"s1\"\n\
                 key_file = \"{}\"\nalgorithm = \"ed25519-sha256\"\n",
                old.path.display()
            ),
            None,
        )
        .unwrap();
        let request = |selector| Request {
            domain: "Example.COM",
            selector,
            algorithm: None,
            rsa_bits: 2048,
            owner: Ownership::default(),
        };
        let r = rotate(&config, &request(Some("s2"))).unwrap();
        assert_eq!(r.next.path, dir.path().join("example.com.s2.pem"));
        let text = r.instructions();
        assert!(
            text.contains("selector = \"s1\"  ->  selector = \"s2\""),
            "{text}"
        );
        assert!(
            text.contains("s2._domainkey.example.com. 3600 IN TXT"),
            "{text}"
        );
        assert!(text.contains("mode 0600"), "{text}");
        assert!(rotate(&config, &request(Some("s1"))).is_err());
        let other = Request {
            domain: "other.example",
            ..request(Some("s3"))
        };
        let refused = rotate(&config, &other).err().unwrap_or_default();
        assert!(refused.contains("no [[signing.keys]]"), "{refused}");
    }
}
