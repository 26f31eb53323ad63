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
    /// The file's permission bits.
    pub mode: u32,
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

impl Generated {
    /// What `genkey` prints: the record to publish and the configuration entry.
    pub fn instructions(&self, domain: &str, selector: &str, algorithm: KeyAlgorithm) -> String {
        let size = self
            .key
            .bits
            .map(|b| format!(", {b} bits"))
            .unwrap_or_default();
        format!(
            "; wrote {path} ({alg}{size}, mode {mode:04o})\n\
             ; publish this record in the {domain} zone:\n\
             {zone}\n\
             ;\n\
             ; then add to mailwarden.toml:\n\
             ;   [[signing.keys]]\n\
             ;   domain = \"{domain}\"\n\
             ;   selector = \"{selector}\"\n\
             ;   key_file = \"{path}\"\n\
             ;   algorithm = \"{alg}\"\n\
             ; and check with: mailwarden check-config -c FILE --check-dns\n",
            path = self.path.display(),
            alg = algorithm.as_str(),
            mode = self.mode,
            zone = self.zone_line(),
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

/// Who the key file belongs to: by default whoever runs `genkey` (mode 0600);
/// `--owner` and `--group` hand it to the service user (mode 0640 with a group,
/// so the group may read it and no one else).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Ownership {
    /// Looks the names up in the system's user and group databases.
    pub fn named(owner: Option<&str>, group: Option<&str>) -> Result<Ownership, String> {
        let uid = owner.map(|name| id_of("passwd", name)).transpose()?;
        let gid = group.map(|name| id_of("group", name)).transpose()?;
        Ok(Ownership { uid, gid })
    }

    fn mode(self) -> u32 {
        if self.gid.is_some() { 0o640 } else { 0o600 }
    }
}

/// A user's or group's numeric id from `getent DATABASE NAME` (NSS: local files,
/// LDAP, whatever the system uses).
fn id_of(database: &str, name: &str) -> Result<u32, String> {
    let what = if database == "passwd" {
        "user"
    } else {
        "group"
    };
    let out = std::process::Command::new("getent")
        .args([database, name])
        .output()
        .map_err(|e| format!("getent: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|id| id.trim().parse().ok())
        .ok_or_else(|| format!("no {what} {name:?} on this system"))
}

pub fn generate(
    domain: &str,
    selector: &str,
    algorithm: KeyAlgorithm,
    rsa_bits: usize,
    out_dir: &Path,
    owner: Ownership,
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
    // Written while only its creator may read it; then handed over.
    file.write_all(text.as_bytes())
        .and_then(|()| std::os::unix::fs::fchown(&file, owner.uid, owner.gid))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(owner.mode()))
        })
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Generated {
        path,
        key,
        record_name: format!("{selector}._domainkey.{domain}."),
        mode: owner.mode(),
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
            Ownership::default(),
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
            Ownership::default(),
        );
        assert!(again.err().unwrap().contains("exists"));

        let ed = generate(
            "example.com",
            "e1",
            KeyAlgorithm::Ed25519Sha256,
            0,
            dir.path(),
            Ownership::default(),
        )
        .unwrap();
        assert_eq!(txt_strings(&ed.key.dns_record()).len(), 1);
    }
}
