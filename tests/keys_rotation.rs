//! Key handling an admin relies on: `genkey --owner --group` hands the key to
//! the service user (mode 0640), and `keys rotate` makes the next key beside the
//! current one while `check-config --check-dns` refuses the switch until knot
//! serves the new record.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{require, shared_tempdir};

fn mailwarden(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(args)
        .output()
        .expect("mailwarden");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The zone line(s) of genkey's or rotate's output (the rest are `;` comments).
fn record(output: &str) -> String {
    let start = output
        .find("._domainkey.")
        .and_then(|at| output[..at].rfind('\n').map(|nl| nl + 1))
        .expect("a record");
    let end = output[start..].find(" )").expect("the record's end") + start + 2;
    output[start..end].to_owned()
}

fn zone(serial: u32, records: &[&str]) -> String {
    format!(
        "$ORIGIN rot.test.\n$TTL 300\n@ SOA ns.harness.test. hostmaster.harness.test. {serial} 3600 600 86400 300\n\
         @ NS ns.harness.test.\n{}\n",
        records.join("\n")
    )
}

#[test]
fn genkey_owner_and_a_rotation_checked_against_dns() {
    if !require("knotd", "knot") || !require("getent", "libc-bin") {
        return;
    }
    let dir = shared_tempdir("mw-keys");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let keys_arg = keys.to_str().unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let mut args = vec![
        "genkey",
        "--domain",
        "rot.test",
        "--selector",
        "s1",
        "--algorithm",
        "ed25519-sha256",
        "--out",
        keys_arg,
    ];
    if root {
        args.extend(["--owner", "nobody", "--group", "nogroup"]);
    }
    let (ok, first, err) = mailwarden(&args);
    assert!(ok, "{err}");
    let s1 = keys.join("rot.test.s1.pem");
    let meta = std::fs::metadata(&s1).unwrap();
    if root {
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "{first}");
        let nobody = command_out("id", &["-u", "nobody"]);
        assert_eq!(meta.uid().to_string(), nobody.trim());
        assert!(first.contains("mode 0640"), "{first}");
    } else {
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let (ok, _, err) = mailwarden(&[
        "genkey",
        "--domain",
        "rot.test",
        "--selector",
        "s9",
        "--out",
        keys_arg,
        "--owner",
        "no-such-user-here",
    ]);
    assert!(
        !ok && err.contains("no user \"no-such-user-here\""),
        "{err}"
    );

    let mut knot = common::knot::Knot::start_zones(
        dir.path(),
        &[("rot.test".to_owned(), zone(1, &[&record(&first)]))],
    );
    let config = dir.path().join("mailwarden.toml");
    let write_config = |selector: &str, key: &Path| {
        std::fs::write(
            &config,
            format!(
                "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
                 [[signing.keys]]\ndomain = \"rot.test\"\nselector = \"{selector}\"\nkey_file = \"{}\"\n",
                knot.address(),
                key.display()
            ),
        )
        .unwrap();
    };
    write_config("s1", &s1);
    let config_arg = config.to_str().unwrap();
    let (ok, out, err) = mailwarden(&["check-config", "-c", config_arg, "--check-dns"]);
    assert!(
        ok && out.contains("s1._domainkey.rot.test: OK"),
        "{out}{err}"
    );

    // The next key: beside the current one, the same algorithm, not in use yet.
    let (ok, rotation, err) = mailwarden(&[
        "keys",
        "rotate",
        "-c",
        config_arg,
        "--domain",
        "rot.test",
        "--selector",
        "s2",
    ]);
    assert!(ok, "{err}");
    let s2 = keys.join("rot.test.s2.pem");
    assert!(s2.exists(), "{rotation}");
    assert!(
        rotation.contains("selector = \"s1\"  ->  selector = \"s2\"")
            && rotation.contains("keep the old record s1._domainkey.rot.test published for a week")
            && rotation.contains("k=ed25519"),
        "{rotation}"
    );
    // Switching before the record is published is refused.
    write_config("s2", &s2);
    let (ok, out, err) = mailwarden(&["check-config", "-c", config_arg, "--check-dns"]);
    assert!(
        !ok && err.contains("s2._domainkey.rot.test: ERROR"),
        "{out}{err}"
    );
    // Published (both records, the old one kept): accepted.
    let zone_file = dir.path().join("knot/zones/rot.test.zone");
    std::fs::write(&zone_file, zone(2, &[&record(&first), &record(&rotation)])).unwrap();
    knot.restart();
    let (ok, out, err) = mailwarden(&["check-config", "-c", config_arg, "--check-dns"]);
    assert!(
        ok && out.contains("s2._domainkey.rot.test: OK"),
        "{out}{err}"
    );
}

fn command_out(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().expect(program);
    String::from_utf8_lossy(&out.stdout).into_owned()
}
