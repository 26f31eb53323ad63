//! DKIM verification against test vectors nobody here wrote: the cases assembled
//! from mail-auth, dkimpy and OpenDKIM in `tests/fixtures/conformance/dkim-vectors`
//! (see its SOURCE.txt and licenses/), with their DNS records served by knot as one root zone, run through
//! `mailwarden scan`. Each case's expected result may list acceptable alternatives
//! (`fail|permerror`). Cases that pin the clock (`verify_at`) or that need DNS the
//! shared zone cannot express (per-case overrides, a server that never answers) are
//! counted and named, not silently dropped.

mod common;

use std::path::PathBuf;

use common::knot::Knot;
use common::{require, scan_json};
use serde_json::Value;

/// A copy of `../shared/conformance/dkim-vectors` with the upstream licences, kept
/// in the repository so a clean clone has it.
fn vectors() -> PathBuf {
    common::fixture("fixtures/conformance/dkim-vectors")
}

/// Our overall DKIM outcome for a message: the best result over its signatures.
fn overall(results: &[String]) -> String {
    const ORDER: [&str; 8] = [
        "pass",
        "policy",
        "fail",
        "temperror",
        "permerror",
        "neutral",
        "softfail",
        "none",
    ];
    ORDER
        .iter()
        .find(|r| results.iter().any(|x| x == *r))
        .map_or("none", |r| r)
        .to_owned()
}

#[test]
fn dkim_vectors_from_mail_auth_dkimpy_and_opendkim() {
    let dir = vectors();
    if !require("knotd", "knot") || !require("kdig", "knot-dnsutils") {
        return;
    }
    let base = std::fs::read_to_string(dir.join("zone-base.db")).expect("zone-base.db");
    // knot wants '=' in owner names (an ATPS record's base32 label) escaped.
    let zone: String = base
        .lines()
        .map(|line| match line.split_once(' ') {
            Some((owner, rest)) if !line.starts_with([';', '$']) => {
                format!("{} {rest}\n", owner.replace('=', "\\="))
            }
            _ => format!("{line}\n"),
        })
        .collect();
    let root = format!(
        "$ORIGIN .\n$TTL 300\n. SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
         . NS ns.harness.test.\n{zone}"
    );
    let tmp = tempfile::Builder::new()
        .prefix("mw-dkim-vectors")
        .tempdir()
        .expect("temp dir");
    let knot = Knot::start_zones(tmp.path(), &[(".".to_owned(), root)]);
    let config = tmp.path().join("mailwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n[inbound]\nauthserv_id = \"mx.harness.test\"\n",
            knot.address()
        ),
    )
    .expect("write config");

    // owner -> the TXT value (its quoted strings joined), as the shared zone has it.
    let base_txt: std::collections::HashMap<&str, String> = base
        .lines()
        .filter(|l| !l.starts_with([';', '$']))
        .filter_map(|l| {
            let (owner, rest) = l.split_once(" IN TXT ")?;
            let value: String = rest.split('"').skip(1).step_by(2).collect();
            Some((owner.trim_end_matches('.'), value))
        })
        .collect();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut ran = Vec::new();
    let mut not_run = Vec::new();
    let mut mismatches = Vec::new();
    for case in manifest.as_array().expect("cases") {
        let id = case["id"].as_str().unwrap();
        if !case["verify_at"].is_null() {
            not_run.push(format!("{id} (pins the clock)"));
            continue;
        }
        // Every record the case needs must be in the shared zone with the same value,
        // and every signature's key must be among the case's records.
        let records = case["dns_txt"].as_object().unwrap();
        let needs_own_dns = records.iter().any(|(owner, value)| {
            base_txt.get(owner.as_str()).map(String::as_str) != value.as_str()
        }) || case["expected_signatures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| {
                let owner = format!(
                    "{}._domainkey.{}",
                    s["s"].as_str().unwrap(),
                    s["d"].as_str().unwrap()
                );
                !records.contains_key(&owner) && base_txt.contains_key(owner.as_str())
            });
        if needs_own_dns {
            not_run.push(format!("{id} (needs its own DNS)"));
            continue;
        }
        let v = scan_json(
            &config,
            "192.0.2.1",
            "mail.example.net",
            "sender@example.net",
            &dir.join(case["message"].as_str().unwrap()),
        );
        let results: Vec<String> = v["methods"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["method"] == "dkim")
            .map(|m| m["result"].as_str().unwrap().to_owned())
            .collect();
        let got = overall(&results);
        let expected = case["expected"].as_str().unwrap();
        if !expected.split('|').any(|e| e == got) {
            mismatches.push(format!("{id}: expected {expected}, got {got} {results:?}"));
        }
        ran.push(id.to_owned());
    }
    eprintln!(
        "dkim-vectors: ran {} cases; not run: {}",
        ran.len(),
        not_run.join(", ")
    );
    assert!(ran.len() >= 15, "too few cases ran: {ran:?}");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
