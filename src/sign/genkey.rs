//! `mailwarden genkey`: a new DKIM key in a file only its owner can read, and the
//! exact DNS record to publish for it, RSA split into 255-byte strings as DNS
//! requires.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{Ed25519KeyPair, RsaKeyPair};

use super::keys::{self, pem};
use crate::config::KeyAlgorithm;

pub struct Generated {
    pub path: PathBuf,
    pub key: keys::LoadedKey,
    /// The owner name of the TXT record, fully qualified.
    pub record_name: String,
}

impl Generated {
    /// The record as a zone-file line.
    pub fn zone_line(&self) -> String {
        let strings: Vec<String> = txt_strings(&self.key.dns_record())
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect();
        format!(
            "{} 3600 IN TXT ( {} )",
            self.record_name,
            strings.join("\n\t")
        )
    }
}

/// Splits a TXT value into the at most 255-byte strings one TXT record holds.
pub fn txt_strings(value: &str) -> Vec<String> {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: KeyAlgorithm,
    rsa_bits: usize,
    out_dir: &Path,
) -> Result<Generated, String> {
    let (der, label) = match algorithm {
        KeyAlgorithm::RsaSha256 => {
            let size = match rsa_bits {
                2048 => KeySize::Rsa2048,
                3072 => KeySize::Rsa3072,
                4096 => KeySize::Rsa4096,
                other => return Err(format!("--bits {other}: use 2048, 3072 or 4096")),
            };
            let pair = RsaKeyPair::generate(size).map_err(|_| "RSA key generation failed")?;
            let der = pair
                .as_der()
                .map_err(|_| "cannot encode the RSA key".to_owned())?;
            (der.as_ref().to_vec(), "PRIVATE KEY")
        }
        KeyAlgorithm::Ed25519Sha256 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                .map_err(|_| "ed25519 key generation failed")?;
            (doc.as_ref().to_vec(), "PRIVATE KEY")
        }
    };
    let text = pem(label, &der);
    let key = keys::parse(text.as_bytes())?;
    let path = out_dir.join(format!("{domain}.{selector}.pem"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{}: exists; not overwriting a key", path.display())
            }
            _ => format!("{}: {e}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Generated {
        path,
        key,
        record_name: format!("{selector}._domainkey.{domain}."),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_a_private_key_and_a_split_record() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(
            "example.com",
            "s1",
            KeyAlgorithm::RsaSha256,
            2048,
            dir.path(),
        )
        .unwrap();
        let mode = std::fs::metadata(&g.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(g.key.bits, Some(2048));
        let line = g.zone_line();
        assert!(line.starts_with("s1._domainkey.example.com. 3600 IN TXT ( \"v=DKIM1; k=rsa; p="));
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert!(
            strings.len() >= 2 && strings.iter().all(|s| s.len() <= 255),
            "{line}"
        );
        assert_eq!(strings.concat(), g.key.dns_record());
        // The file loads back as the same key.
        assert_eq!(keys::load(&g.path).unwrap().public_key, g.key.public_key);
        // Never overwrite.
        let again = generate(
            "example.com",
            "s1",
            KeyAlgorithm::RsaSha256,
            2048,
            dir.path(),
        );
        assert!(again.err().unwrap().contains("exists"));

        let ed = generate(
            "example.com",
            "e1",
            KeyAlgorithm::Ed25519Sha256,
            0,
            dir.path(),
        )
        .unwrap();
        assert_eq!(txt_strings(&ed.key.dns_record()).len(), 1);
    }
}
