//! Defect 8 of the hardening review: token files with mode 0602 or 0622 were
//! accepted. Every secret (DKIM key, admin token file, TLS key, webhook token) is
//! refused by `check-config` (and so by `serve` and a reload) when another user can
//! read it or anyone but its owner can change it (scenario
//! `tests/scenarios/secret_files`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::scenario::Scenario;

fn check_config(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["check-config", "-c"])
        .arg(config)
        .output()
        .expect("run check-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn group_or_world_writable_and_world_readable_secrets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args([
            "genkey",
            "--domain",
            "sign.test",
            "--selector",
            "s1",
            "--out",
        ])
        .arg(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(d.join("admin.pem"), cert.cert.pem()).unwrap();
    std::fs::write(d.join("admin.key"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(d.join("admin-tokens"), "admin-token-0123456789\n").unwrap();
    std::fs::write(d.join("webhook-token"), "hook-token\n").unwrap();
    let secrets = [
        "sign.test.s1.pem",
        "admin-tokens",
        "admin.key",
        "webhook-token",
    ];
    for s in secrets {
        chmod(&d.join(s), 0o600);
    }
    let config = d.join("mailwarden.toml");
    let text = Scenario::new("secret_files").config(&[
        ("LISTEN", "inet:127.0.0.1:1".to_owned()),
        ("PORT", "2".to_owned()),
    ]);
    std::fs::write(&config, text).unwrap();
    let (ok, said) = check_config(&config);
    assert!(ok, "all secrets 0600: {said}");

    for secret in secrets {
        for (mode, complaint) in [
            (0o602, "writable by every user (mode 0602)"),
            (0o622, "writable by every user (mode 0622)"),
            (0o620, "writable by its group (mode 0620)"),
            (0o644, "readable by every user (mode 0644)"),
        ] {
            chmod(&d.join(secret), mode);
            let (ok, said) = check_config(&config);
            assert!(!ok, "{secret} with mode {mode:o} was accepted");
            assert!(
                said.contains(secret) && said.contains(complaint),
                "{secret} {mode:o}: {said}"
            );
        }
        chmod(&d.join(secret), 0o640);
        let (ok, said) = check_config(&config);
        assert!(ok, "{secret} with 0640 (group may read): {said}");
    }
}
