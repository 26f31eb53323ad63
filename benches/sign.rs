//! DKIM signing cost per message: the raw RSA-2048 and ed25519 private-key
//! operation (aws-lc, what `openssl speed` measures) beside `Signer::sign` on the
//! load tool's 5 KB message, which adds canonicalization, hashing and the header.

use std::hint::black_box;
use std::os::unix::fs::PermissionsExt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use mailwarden::bench::{Signed, Signer, keys};
use mailwarden::config::parse_str;

fn message() -> Vec<u8> {
    let mut m = b"From: Example App <noreply@load.test>\r\nTo: user@example.net\r\n\
Subject: Your password reset code\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\n\
Message-ID: <bench-1@load.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        .to_vec();
    while m.len() < 5120 {
        m.extend_from_slice(
            b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n",
        );
    }
    m
}

fn signer(dir: &std::path::Path, file: &str, pem: &str, algorithm: &str) -> Signer {
    let path = dir.join(file);
    std::fs::write(&path, pem).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = parse_str(
        &format!(
            "[[signing.keys]]\ndomain = \"load.test\"\nselector = \"s\"\nkey_file = \"{}\"\nalgorithm = \"{algorithm}\"\n",
            path.display()
        ),
        None,
    )
    .unwrap();
    Signer::from_config(&config.signing).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rsa_pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/auth/keys/sender.test.rsa2048.pem"),
    )
    .unwrap();
    let ed_der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let ed_pem = keys::pem("PRIVATE KEY", ed_der.as_ref());

    let rsa_raw = RsaKeyPair::from_der(&rsa_der(&rsa_pem)).unwrap();
    let mut sig = vec![0; rsa_raw.public_modulus_len()];
    let rng = SystemRandom::new();
    c.bench_function("raw rsa2048 sign (aws-lc)", |b| {
        b.iter(|| {
            rsa_raw
                .sign(
                    &RSA_PKCS1_SHA256,
                    &rng,
                    black_box(b"0123456789abcdef0123456789abcdef"),
                    &mut sig,
                )
                .unwrap()
        })
    });
    let ed_raw = Ed25519KeyPair::from_pkcs8(ed_der.as_ref()).unwrap();
    c.bench_function("raw ed25519 sign (aws-lc)", |b| {
        b.iter(|| ed_raw.sign(black_box(b"0123456789abcdef0123456789abcdef")))
    });

    let msg = message();
    let from = vec!["noreply@load.test".to_owned()];
    for (name, signer) in [
        (
            "Signer::sign 5 KB rsa-sha256",
            signer(dir.path(), "rsa.pem", &rsa_pem, "rsa-sha256"),
        ),
        (
            "Signer::sign 5 KB ed25519-sha256",
            signer(dir.path(), "ed.pem", &ed_pem, "ed25519-sha256"),
        ),
    ] {
        assert!(matches!(signer.sign(&msg, &from), Signed::Headers(..)));
        c.bench_function(name, |b| b.iter(|| signer.sign(black_box(&msg), &from)));
    }
}

/// The PKCS#1 DER inside an "RSA PRIVATE KEY" PEM.
fn rsa_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
