//! `mailwarden dns-audit` against knot-served zones, one zone per kind of
//! mistake: exit 0 for a domain in order, 1 for warnings, 2 for errors, and each
//! finding named.

mod common;

use std::process::Command;

use common::{require, shared_tempdir};

fn zone(origin: &str, records: &str) -> (String, String) {
    (
        origin.to_owned(),
        format!(
            "$ORIGIN {origin}.\n$TTL 300\n@ SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
             @ NS ns.harness.test.\n{records}\n"
        ),
    )
}

const SPF_OK: &str = "@ TXT \"v=spf1 ip4:192.0.2.0/24 -all\"";

#[test]
fn each_kind_of_mistake_is_found() {
    if !require("knotd", "knot") {
        return;
    }
    let dir = shared_tempdir("mw-dns-audit");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let genkey = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args([
            "genkey",
            "--domain",
            "good.test",
            "--selector",
            "s1",
            "--algorithm",
            "ed25519-sha256",
            "--out",
        ])
        .arg(&keys)
        .output()
        .unwrap();
    let record: String = String::from_utf8_lossy(&genkey.stdout)
        .lines()
        .find(|l| l.starts_with("s1._domainkey"))
        .expect("genkey's record")
        .replace("s1._domainkey.good.test.", "s1._domainkey");
    let includes: String = (b'a'..=b'k')
        .map(|c| format!(" include:{}.lookups.test", c as char))
        .collect();
    let include_records: String = (b'a'..=b'k')
        .map(|c| format!("{} TXT \"v=spf1 -all\"\n", c as char))
        .collect();
    let zones = vec![
        zone("test", ""),
        zone(
            "good.test",
            &format!(
                "@ TXT \"v=spf1 ip4:192.0.2.0/24 include:_spf.good.test -all\"\n\
                 _spf TXT \"v=spf1 ip4:198.51.100.0/24 -all\"\n\
                 _dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@good.test,mailto:r@auth.test\"\n\
                 _mta-sts TXT \"v=STSv1; id=20261203\"\n\
                 _smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tls@good.test\"\n{record}"
            ),
        ),
        zone("auth.test", "good.test._report._dmarc TXT \"v=DMARC1\""),
        zone("elsewhere.test", ""),
        zone(
            "lookups.test",
            &format!("@ TXT \"v=spf1{includes} -all\"\n{include_records}"),
        ),
        zone(
            "void.test",
            "@ TXT \"v=spf1 include:missing.void.test a:gone1.void.test a:gone2.void.test -all\"",
        ),
        zone(
            "twospf.test",
            "@ TXT \"v=spf1 -all\"\n@ TXT \"v=spf1 ip4:192.0.2.1 -all\"",
        ),
        zone("plusall.test", "@ TXT \"v=spf1 +all\""),
        zone(
            "weak.test",
            &format!("{SPF_OK}\n_dmarc TXT \"v=DMARC1; p=none; t=y; rua=mailto:d@elsewhere.test\""),
        ),
        zone("nodmarc.test", SPF_OK),
        zone(
            "nospf.test",
            "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@nospf.test\"",
        ),
        zone(
            "badsts.test",
            &format!(
                "{SPF_OK}\n_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:d@badsts.test\"\n_mta-sts TXT \"v=STSv1\""
            ),
        ),
    ];
    let knot = common::knot::Knot::start_zones(dir.path(), &zones);
    let config = dir.path().join("mailwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
             [[signing.keys]]\ndomain = \"good.test\"\nselector = \"s1\"\nkey_file = \"{}\"\n\n\
             [[signing.keys]]\ndomain = \"weak.test\"\nselector = \"s1\"\nkey_file = \"{}\"\n",
            knot.address(),
            keys.join("good.test.s1.pem").display(),
            keys.join("good.test.s1.pem").display(),
        ),
    )
    .unwrap();
    let audit = |domain: &str, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
        cmd.args(["dns-audit", "-c"]).arg(&config).arg(domain);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    let (code, out) = audit("good.test", true);
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(out.trim()).expect(&out);
    assert_eq!(doc["result"], "ok", "{out}");
    let said = |check: &str, level: &str, needle: &str| {
        doc["findings"].as_array().unwrap().iter().any(|f| {
            f["check"] == check
                && f["level"] == level
                && f["message"].as_str().unwrap_or("").contains(needle)
        })
    };
    assert!(
        said(
            "spf",
            "ok",
            "1 of 10 DNS lookups, includes resolved: _spf.good.test"
        ),
        "{out}"
    );
    assert!(
        said(
            "dkim",
            "ok",
            "s1._domainkey.good.test: published key matches"
        ),
        "{out}"
    );
    assert!(said("dmarc", "ok", "policy reject"), "{out}");
    assert!(said("mta-sts", "ok", "id=20261203"), "{out}");
    assert!(said("tls-rpt", "ok", "rua=mailto:tls@good.test"), "{out}");

    for (domain, code_wanted, needles) in [
        (
            "lookups.test",
            2,
            &["11 DNS lookups with includes resolved, over the limit of 10"][..],
        ),
        (
            "void.test",
            2,
            &[
                "missing.void.test has no SPF record",
                "a:gone1.void.test finds nothing",
                "3 void lookups, over the limit of 2",
            ][..],
        ),
        ("twospf.test", 2, &["publishes 2 SPF records"][..]),
        (
            "plusall.test",
            2,
            &["+all: any host on the Internet passes"][..],
        ),
        (
            "weak.test",
            2,
            &[
                "p=none: monitoring only",
                "t=y: the owner is testing",
                "elsewhere.test does not accept reports about weak.test",
                "s1._domainkey.weak.test: ERROR",
            ][..],
        ),
        ("nodmarc.test", 1, &["no DMARC policy for nodmarc.test"][..]),
        ("nospf.test", 1, &["nospf.test publishes no SPF record"][..]),
        ("badsts.test", 2, &["_mta-sts.badsts.test: no id="][..]),
    ] {
        let (code, out) = audit(domain, false);
        assert_eq!(code, code_wanted, "{domain}:\n{out}");
        if domain == "nospf.test" {
            assert!(
                !out.contains("spf      ok"),
                "no lookup count without a record:\n{out}"
            );
        }
        for needle in needles {
            let needle = needle.replace(
                "s1._domainkey.weak.test: ERROR",
                "ERROR    s1._domainkey.weak.test",
            );
            assert!(
                out.contains(needle.as_str()),
                "{domain}: no {needle:?} in\n{out}"
            );
        }
    }
}
