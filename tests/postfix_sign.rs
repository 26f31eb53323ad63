//! Outbound signing through a real Postfix: keys made by `mailwarden genkey` and
//! published in knot, mail submitted by an authenticated client, from a trusted
//! network and with sendmail, each signature verified by dkimpy (a verifier we did
//! not write) reading the keys from knot. Mail from outside is never signed, and
//! `check-config --check-dns` catches a published key that does not match.

mod common;

use std::path::Path;
use std::process::Command;

use common::knot::Knot;
use common::require;
use common::scenario::{Components, Scenario};
use common::smtp::Peer;

struct Stack {
    _dir: tempfile::TempDir,
    knot: Knot,
    mw: common::mailwarden::Mailwarden,
    postfix: common::postfix::Postfix,
    config: std::path::PathBuf,
}

/// `mailwarden genkey` output: the zone line (without the comment lines).
fn genkey(dir: &Path, domain: &str, selector: &str, algorithm: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["genkey", "--domain", domain, "--selector", selector])
        .args(["--algorithm", algorithm, "--out"])
        .arg(dir)
        .output()
        .expect("run genkey");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(';'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The signing scenario (`tests/scenarios/signing`): keys made by `mailwarden
/// genkey` into the temp dir and published in knot, mailwarden signing with them,
/// Postfix in front.
fn stack() -> Option<Stack> {
    if !require("python3", "python3") {
        return None;
    }
    let with = Components {
        knot: true,
        clamd: false,
    };
    let s = Scenario::new("signing").start_prepared(with, |dir| {
        let keys = dir.join("keys");
        std::fs::create_dir(&keys).unwrap();
        let rsa = genkey(&keys, "sign.test", "rsa", "rsa-sha256");
        let ed = genkey(&keys, "sign.test", "ed", "ed25519-sha256");
        // Two more domains, one key each, for messages with a single signature.
        let rsa_only = genkey(&keys, "rsa.sign.test", "s1", "rsa-sha256");
        let ed_only = genkey(&keys, "ed.sign.test", "s1", "ed25519-sha256");
        // "stale" publishes the RSA key, but the config pairs that selector with the
        // ed25519 key file: the mismatch check-config --check-dns must catch.
        let stale = rsa.replacen("rsa._domainkey", "stale._domainkey", 1);
        let zone = format!(
            "$ORIGIN sign.test.\n$TTL 300\n@ SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
             @ NS ns.harness.test.\n{rsa}\n{ed}\n{stale}\n{rsa_only}\n{ed_only}\n"
        );
        vec![("sign.test".to_owned(), zone)]
    })?;
    let config = s.mw.config_path.clone();
    Some(Stack {
        knot: s.knot.expect("the scenario starts knot"),
        mw: s.mw,
        postfix: s.postfix,
        _dir: s.dir,
        config,
    })
}

/// sign.test's RSA and ed25519 signatures are both there and both verify.
fn assert_two_signatures_verify(raw: &[u8], dns_port: u16) {
    let results = common::dkimpy::verify(raw, dns_port);
    assert!(
        results.len() == 2 && results.iter().all(|r| r.3),
        "{results:?}\n{}",
        String::from_utf8_lossy(raw)
    );
}

const AUTHENTICATED: Peer<'static> = Peer {
    addr: "192.0.2.50",
    name: "app.customer.test",
    helo: "app.customer.test",
    login: Some("app-mailer"),
};

#[test]
fn authenticated_mail_is_dual_signed_and_dkimpy_verifies_both() {
    let Some(s) = stack() else {
        return;
    };
    let subject_words: Vec<String> = (0..30).map(|i| format!("word{i}")).collect();
    let message = format!(
        "From: Zoë Müller <zoe@sign.test>\nTo: bob@dest.test\n\
         Subject: Bestätigen Sie Ihr Konto — {}\n\t{}\n\
         Date: Tue, 24 Nov 2026 08:00:00 +0000\nMessage-ID: <dual-1@sign.test>\n\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
         Grüße,\nthe app",
        subject_words[..15].join(" "),
        subject_words[15..].join(" ")
    );
    let out = s
        .postfix
        .send_as(AUTHENTICATED, "bounces@sign.test", message.as_bytes());
    assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
    let delivered = s.postfix.wait_delivered("<dual-1@sign.test>");
    let mut results = common::dkimpy::verify(&delivered.raw, s.knot.port);
    results.sort();
    assert_eq!(
        results,
        vec![
            (
                "sign.test".into(),
                "ed".into(),
                "ed25519-sha256".into(),
                true
            ),
            ("sign.test".into(), "rsa".into(), "rsa-sha256".into(), true),
        ],
        "{}",
        String::from_utf8_lossy(&delivered.raw)
    );
    // The check is live: the same message with one body byte changed fails.
    let tampered = String::from_utf8_lossy(&delivered.raw).replace("the app", "the ap!");
    assert!(
        common::dkimpy::verify(tampered.as_bytes(), s.knot.port)
            .iter()
            .all(|r| !r.3)
    );
    let line = s.mw.decision_line(&out.queue_id().unwrap());
    assert!(line.contains("authenticated as app-mailer"), "{line}");
    assert!(
        line.contains("signed by sign.test/rsa, sign.test/ed"),
        "{line}"
    );
}

#[test]
fn rsa_2048_alone_and_ed25519_alone_each_verify() {
    let Some(s) = stack() else {
        return;
    };
    for (domain, algorithm) in [
        ("rsa.sign.test", "rsa-sha256"),
        ("ed.sign.test", "ed25519-sha256"),
    ] {
        let id = format!("<single@{domain}>");
        let message = format!(
            "From: App <noreply@{domain}>\nTo: bob@dest.test\nSubject: Your code is 123456\n\
             Date: Tue, 24 Nov 2026 08:00:00 +0000\nMessage-ID: {id}\n\nYour code is 123456.\n"
        );
        let out = s.postfix.send_as(
            AUTHENTICATED,
            &format!("bounces@{domain}"),
            message.as_bytes(),
        );
        assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
        let delivered = s.postfix.wait_delivered(&id);
        assert_eq!(
            common::dkimpy::verify(&delivered.raw, s.knot.port),
            vec![(
                domain.to_owned(),
                "s1".to_owned(),
                algorithm.to_owned(),
                true
            )],
            "{}",
            String::from_utf8_lossy(&delivered.raw)
        );
    }
}

#[test]
fn trusted_and_locally_submitted_mail_is_signed_and_outside_mail_is_not() {
    let Some(s) = stack() else {
        return;
    };
    let message = |id: &str, end: &str| {
        format!(
            "From: noreply@sign.test\nTo: bob@dest.test\nSubject: Reset your password\n\
             Date: Tue, 24 Nov 2026 08:00:00 +0000\nMessage-ID: <{id}@sign.test>\n\n\
             Click the link to reset.{end}"
        )
    };
    // From a trusted network (127.0.0.1).
    let out = s.postfix.send_as(
        Peer {
            addr: "127.0.0.1",
            name: "localhost",
            helo: "localhost",
            login: None,
        },
        "noreply@sign.test",
        message("trusted-1", "\n").as_bytes(),
    );
    assert!(out.accepted(), "{out:?}");
    let delivered = s.postfix.wait_delivered("<trusted-1@sign.test>");
    assert_two_signatures_verify(&delivered.raw, s.knot.port);

    // Local submission, the body without a final newline.
    if require("sendmail", "postfix") {
        s.postfix.sendmail(
            "noreply@sign.test",
            "bob@dest.test",
            message("local-1", "").as_bytes(),
        );
        let delivered = s.postfix.wait_delivered("<local-1@sign.test>");
        assert_two_signatures_verify(&delivered.raw, s.knot.port);
    }

    // From outside, claiming our domain: verified as inbound, never signed.
    let out = s.postfix.send_as(
        Peer {
            addr: "192.0.2.10",
            name: "mail.sender.test",
            helo: "mail.sender.test",
            login: None,
        },
        "noreply@sign.test",
        message("outside-1", "\n").as_bytes(),
    );
    assert!(out.accepted(), "{out:?}");
    let delivered = s.postfix.wait_delivered("<outside-1@sign.test>");
    assert_eq!(delivered.header("DKIM-Signature"), None);
    assert!(delivered.header("Authentication-Results").is_some());
    let line = s.mw.decision_line(&out.queue_id().unwrap());
    assert!(
        line.contains("inbound from 192.0.2.10") && !line.contains("signed by"),
        "{line}"
    );
}

#[test]
fn check_dns_compares_published_keys_with_the_private_ones() {
    let Some(s) = stack() else {
        return;
    };
    let run = |config: &Path| {
        Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["check-config", "--check-dns", "-c"])
            .arg(config)
            .output()
            .expect("run check-config")
    };
    let good = run(&s.config);
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("rsa._domainkey.sign.test: OK, published key matches (rsa-sha256)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ed._domainkey.sign.test: OK, published key matches (ed25519-sha256)"),
        "{stdout}"
    );

    // The ed25519 key file under a selector that publishes the RSA key.
    let text = std::fs::read_to_string(&s.config).unwrap();
    let bad_path = s.config.with_file_name("stale.toml");
    std::fs::write(
        &bad_path,
        text.replace("selector = \"ed\"", "selector = \"stale\""),
    )
    .unwrap();
    let bad = run(&bad_path);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains(
            "stale._domainkey.sign.test: ERROR: published k=rsa, the private key is ed25519"
        ),
        "{stderr}"
    );

    // Another RSA key under the RSA selector.
    let other = s.config.with_file_name("other.pem");
    std::fs::copy(
        common::fixture("fixtures/auth/keys/sender.test.rsa2048.pem"),
        &other,
    )
    .unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let rsa_file = text
        .lines()
        .find(|l| l.contains("sign.test.rsa.pem"))
        .unwrap()
        .to_owned();
    std::fs::write(
        &bad_path,
        text.replace(&rsa_file, &format!("key_file = \"{}\"", other.display())),
    )
    .unwrap();
    let mismatch = run(&bad_path);
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert!(!mismatch.status.success());
    assert!(
        stderr.contains(
            "rsa._domainkey.sign.test: ERROR: the published key does NOT match the private key"
        ),
        "{stderr}"
    );

    // A selector with nothing published.
    std::fs::write(
        &bad_path,
        text.replace("selector = \"ed\"", "selector = \"nothing\""),
    )
    .unwrap();
    let missing = run(&bad_path);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("nothing._domainkey.sign.test: ERROR: no TXT record")
    );
}

#[test]
fn a_body_the_rules_rebuilt_is_what_gets_signed() {
    let Some(s) = stack() else {
        return;
    };
    let message = "From: App <noreply@sign.test>\nTo: bob@dest.test\nSubject: your files\n\
                   Message-ID: <strip-1@sign.test>\nMIME-Version: 1.0\n\
                   Content-Type: multipart/mixed; boundary=\"b\"\n\n\
                   --b\nContent-Type: text/plain\n\nAttached.\n\
                   --b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"run.bat\"\n\n\
                   @echo off\n--b--\n";
    let out = s
        .postfix
        .send_as(AUTHENTICATED, "bounces@sign.test", message.as_bytes());
    assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
    let delivered = s.postfix.wait_delivered("<strip-1@sign.test>");
    let raw = String::from_utf8_lossy(&delivered.raw).into_owned();
    assert!(
        !raw.contains("@echo off") && raw.contains("run.bat"),
        "{raw}"
    );
    assert_two_signatures_verify(&delivered.raw, s.knot.port);
}

/// Defect 10 of the hardening review: an authenticated account could get mail
/// signed for any domain we hold a key for. With `[[signing.senders]]` it may use
/// only its own From addresses; another is delivered unsigned, or refused with
/// `on_unauthorized = "reject"` (scenario `tests/scenarios/signing_senders`).
#[test]
fn an_account_gets_only_its_own_from_addresses_signed() {
    let scenario = Scenario::new("signing_senders");
    let Some(stack) = scenario.start_prepared(Components::default(), |dir| {
        let keys = dir.join("keys");
        std::fs::create_dir(&keys).unwrap();
        genkey(&keys, "app.test", "s1", "rsa-sha256");
        genkey(&keys, "bank.test", "s1", "rsa-sha256");
        Vec::new()
    }) else {
        return;
    };
    stack.play("own");
    stack.play("allowed-address");
    stack.play("spoof");

    let reject = scenario.config_file("mailwarden-reject.toml", &stack.vars);
    std::fs::write(&stack.mw.config_path, reject).unwrap();
    stack.mw.signal("HUP");
    assert!(
        stack.mw.wait_for_log(
            "configuration reloaded",
            1,
            std::time::Duration::from_secs(5)
        ),
        "{}",
        stack.mw.log()
    );
    stack.play("spoof-refused");
}
