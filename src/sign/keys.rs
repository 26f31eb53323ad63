//! DKIM private keys from PEM files (PKCS#1 RSA, PKCS#8 RSA or ed25519), checked
//! the way an admin needs: unreadable, malformed, too small, the wrong kind for the
//! configured algorithm, or readable by other users is an error naming the file.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

use crate::config::KeyAlgorithm;

/// RSA keys below this many bits are weak (RFC 8301 asks signers for 2048).
pub const RSA_RECOMMENDED_BITS: usize = 2048;

pub struct LoadedKey {
    pub key: DkimKey,
    pub algorithm: KeyAlgorithm,
    /// RSA modulus size; `None` for ed25519.
    pub bits: Option<usize>,
    /// The base64 public key, as the `p=` tag of the DNS record carries it.
    pub public_key: String,
}

impl LoadedKey {
    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn dns_record(&self) -> String {
        let k = match self.algorithm {
            KeyAlgorithm::RsaSha256 => "rsa",
            KeyAlgorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", self.public_key)
    }
}

/// Reads and checks a key file. Errors start with the file name.
pub fn load(path: &Path) -> Result<LoadedKey, String> {
    let pem = crate::secret::read(path).map_err(|e| e.to_string())?;
    parse(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses PEM text into a signing key.
pub fn parse(pem: &[u8]) -> Result<LoadedKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
        "not a PEM private key (expected \"BEGIN RSA PRIVATE KEY\" or \"BEGIN PRIVATE KEY\")"
            .to_owned()
    })?;
    match der {
        PrivateKeyDer::Pkcs1(pkcs1) => rsa(
            RsaKeyPair::from_der(pkcs1.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(pkcs1.secret_pkcs1_der().to_vec())),
        ),
        PrivateKeyDer::Pkcs8(pkcs8) => {
            let bytes = pkcs8.secret_pkcs8_der();
            match RsaKeyPair::from_pkcs8(bytes) {
                Err(e) if e.description_() == "WrongAlgorithm" => ed25519(bytes),
                parsed => rsa(
                    parsed,
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.to_vec())),
                ),
            }
        }
        _ => Err("not an RSA or ed25519 key (DKIM signs with nothing else)".to_owned()),
    }
}

fn rsa(
    parsed: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>,
    der: PrivateKeyDer<'static>,
) -> Result<LoadedKey, String> {
    let pair = parsed.map_err(|e| match e.description_() {
        "TooSmall" => format!(
            "the RSA key is smaller than {RSA_RECOMMENDED_BITS} bits; mailwarden signs only with 2048 to 8192-bit keys (generate one with `mailwarden genkey`)"
        ),
        "TooLarge" => "the RSA key is larger than 8192 bits".to_owned(),
        other => format!("not a usable RSA private key ({other})"),
    })?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|_| "cannot encode the RSA public key".to_owned())?;
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| e.to_string())?;
    Ok(LoadedKey {
        key: DkimKey::Rsa(key),
        algorithm: KeyAlgorithm::RsaSha256,
        bits: Some(pair.public_modulus_len() * 8),
        public_key: BASE64.encode(spki.as_ref()),
    })
}

fn ed25519(pkcs8: &[u8]) -> Result<LoadedKey, String> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| {
        format!(
            "not a usable RSA or ed25519 private key ({})",
            e.description_()
        )
    })?;
    let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8).map_err(|e| e.to_string())?;
    Ok(LoadedKey {
        key: DkimKey::Ed25519(key),
        algorithm: KeyAlgorithm::Ed25519Sha256,
        bits: None,
        // RFC 8463: the raw 32-byte public key, not a SubjectPublicKeyInfo.
        public_key: BASE64.encode(pair.public_key().as_ref()),
    })
}

/// PEM text for DER bytes, 64 columns, as openssl writes it.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/auth/keys")
            .join(name)
    }

    #[test]
    fn loads_pkcs1_rsa_and_pkcs8_ed25519() {
        let rsa = parse(&std::fs::read(fixture("sender.test.rsa2048.pem")).unwrap()).unwrap();
        assert_eq!(
            (rsa.algorithm, rsa.bits),
            (KeyAlgorithm::RsaSha256, Some(2048))
        );
        // The same public key the fixture zone publishes.
        let zone = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/auth/zones/sender.test.zone"),
        )
        .unwrap()
        .replace("\" \"", "");
        assert!(zone.contains(&rsa.public_key), "{}", rsa.dns_record());

        let generated =
            Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let ed = parse(pem("PRIVATE KEY", generated.as_ref()).as_bytes()).unwrap();
        assert_eq!((ed.algorithm, ed.bits), (KeyAlgorithm::Ed25519Sha256, None));
        assert_eq!(BASE64.decode(&ed.public_key).unwrap().len(), 32);
        assert!(ed.dns_record().starts_with("v=DKIM1; k=ed25519; p="));
    }

    #[test]
    fn refuses_bad_keys_with_reasons() {
        assert!(
            parse(b"hello")
                .err()
                .unwrap()
                .contains("not a PEM private key")
        );
        let garbage = pem("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
        assert!(
            parse(garbage.as_bytes())
                .err()
                .unwrap()
                .contains("not a usable")
        );
        // A 1024-bit key (made with openssl for this test's fixture set).
        let small = pem(
            "RSA PRIVATE KEY",
            &BASE64
                .decode(include_str!("../../tests/fixtures/sign/rsa1024.b64").trim())
                .unwrap(),
        );
        assert!(
            parse(small.as_bytes())
                .err()
                .unwrap()
                .contains("smaller than 2048")
        );
    }

    #[test]
    fn refuses_a_key_file_other_users_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::copy(fixture("sender.test.rsa2048.pem"), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).err().unwrap();
        assert!(err.contains("readable by every user (mode 0644)"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load(&path).is_ok());
        let missing = load(&dir.path().join("nope.pem")).err().unwrap();
        assert!(
            missing.contains("nope.pem") && missing.contains("No such file"),
            "{missing}"
        );
    }
}
