//! Inbound authentication against a real authoritative DNS server (knot), run
//! through `mailwarden scan --json`: every SPF result, DKIM pass and each way it
//! fails, DMARC alignment and policies, ARC with trusted and untrusted sealers,
//! iprev, and what happens when DNS is gone. Signed fixtures come from dkimpy
//! (see tests/fixtures/auth/make_fixtures.py).

mod common;

use std::path::{Path, PathBuf};

use common::knot::Knot;
use common::{fixture, require, scan_json};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    knot: Knot,
    config: PathBuf,
}

fn env(extra_inbound: &str) -> Option<Env> {
    if !require("knotd", "knot") || !require("kdig", "knot-dnsutils") {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("mw-auth-scan")
        .tempdir()
        .expect("temp dir");
    let knot = Knot::start(dir.path());
    let config = dir.path().join("mailwarden.toml");
    write_config(&config, &knot.address(), extra_inbound);
    Some(Env { dir, knot, config })
}

fn write_config(path: &Path, nameserver: &str, extra_inbound: &str) {
    std::fs::write(
        path,
        format!(
            "[dns]\nnameservers = [\"{nameserver}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
             [inbound]\nauthserv_id = \"mx.harness.test\"\n\
             trusted_arc_sealers = [\"lists.test\"]\n{extra_inbound}\n"
        ),
    )
    .expect("write config");
}

/// Scans `message` (a fixture path or inline text) as if it came from `ip`.
fn scan(env: &Env, ip: &str, helo: &str, from: &str, message: &[u8]) -> Value {
    scan_with(&env.config, env.dir.path(), ip, helo, from, message)
}

/// The env's config with `before` put ahead of it and `extra_inbound` added to its
/// `[inbound]` section, written as `name` in the env's dir.
fn variant(env: &Env, name: &str, before: &str, extra_inbound: &str) -> PathBuf {
    let text = std::fs::read_to_string(&env.config).expect("config");
    let body = text.replace("[inbound]\n", &format!("[inbound]\n{extra_inbound}"));
    let path = env.dir.path().join(name);
    std::fs::write(&path, format!("{before}{body}")).expect("write config");
    path
}

fn scan_with(config: &Path, dir: &Path, ip: &str, helo: &str, from: &str, message: &[u8]) -> Value {
    let file = dir.join("message.eml");
    std::fs::write(&file, message).expect("write message");
    scan_json(config, ip, helo, from, &file)
}

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("fixtures/auth/messages/{name}"))).expect("read fixture")
}

fn plain(from: &str) -> Vec<u8> {
    format!(
        "From: {from}\nTo: bob@dest.test\nSubject: test\nDate: Tue, 24 Nov 2026 08:00:00 +0000\n\
         Message-ID: <plain@harness.test>\n\nHello.\n"
    )
    .into_bytes()
}

/// The results of every entry of `method`, in order (`spf` gives MAIL FROM then HELO).
fn results(v: &Value, method: &str) -> Vec<String> {
    v["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter(|m| m["method"] == method)
        .map(|m| m["result"].as_str().expect("result").to_owned())
        .collect()
}

fn result(v: &Value, method: &str) -> String {
    results(v, method)
        .into_iter()
        .next()
        .expect("method present")
}

fn property<'a>(v: &'a Value, method: &str, name: &str) -> Vec<&'a str> {
    v["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .filter(|m| m["method"] == method)
        .filter_map(|m| m["properties"][name].as_str())
        .collect()
}

const IP: &str = "192.0.2.10";
const HELO: &str = "mail.sender.test";

#[test]
fn spf_reports_every_result_kind_for_mail_from_and_helo() {
    let Some(env) = env("") else { return };
    let cases = [
        ("pass", "pass"),
        ("fail", "fail"),
        ("softfail", "softfail"),
        ("neutral", "neutral"),
        ("none", "none"),
        ("syntax", "permerror"),
        ("many", "permerror"),
        ("void", "permerror"),
    ];
    for (sub, expected) in cases {
        let from = format!("user@{sub}.spf.test");
        let v = scan(&env, IP, HELO, &from, &plain(&from));
        assert_eq!(results(&v, "spf"), vec![expected, "pass"], "{from}: {v:#}");
        assert_eq!(property(&v, "spf", "smtp.mailfrom"), vec![from.as_str()]);
        assert_eq!(property(&v, "spf", "smtp.helo"), vec![HELO]);
        if sub == "void" {
            let reason = v["methods"][1]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("3 void lookups"), "{reason}");
        }
    }
    // A null sender is judged by its HELO identity.
    let v = scan(&env, IP, HELO, "", &plain("alice@sender.test"));
    assert_eq!(results(&v, "spf"), vec!["pass", "pass"], "{v:#}");
    assert_eq!(
        property(&v, "spf", "smtp.mailfrom"),
        vec!["postmaster@mail.sender.test"]
    );
    // A HELO that is not a domain name gets no SPF check of its own.
    let v = scan(
        &env,
        IP,
        "[192.0.2.10]",
        "alice@sender.test",
        &plain("alice@sender.test"),
    );
    assert_eq!(results(&v, "spf"), vec!["pass", "none"], "{v:#}");
}

#[test]
fn dkim_verifies_rsa_and_ed25519_and_reports_each_failure() {
    let Some(env) = env("") else { return };
    let from = "alice@sender.test";
    let cases: [(&str, &[&str]); 10] = [
        ("signed-rsa.eml", &["pass"]),
        ("signed-ed25519.eml", &["pass"]),
        ("signed-dual.eml", &["pass", "pass"]),
        ("signed-body-changed.eml", &["fail"]),
        ("signed-header-changed.eml", &["fail"]),
        ("signed-missing-key.eml", &["permerror"]),
        ("signed-revoked.eml", &["fail"]),
        ("signed-sha1.eml", &["permerror"]),
        ("signed-length-appended.eml", &["policy"]),
        ("signed-other.eml", &["pass"]),
    ];
    for (name, expected) in cases {
        let v = scan(&env, IP, HELO, from, &signed(name));
        let mut got = results(&v, "dkim");
        got.sort();
        assert_eq!(got, expected.to_vec(), "{name}: {v:#}");
    }
    let v = scan(&env, IP, HELO, from, &signed("signed-dual.eml"));
    let mut algorithms = property(&v, "dkim", "header.a");
    algorithms.sort();
    assert_eq!(algorithms, vec!["ed25519-sha256", "rsa-sha256"]);
    assert_eq!(property(&v, "dkim", "header.d"), vec!["sender.test"; 2]);
    let mut selectors = property(&v, "dkim", "header.s");
    selectors.sort();
    assert_eq!(selectors, vec!["ed", "rsa2048"]);
    let v = scan(&env, IP, HELO, from, &signed("signed-sha1.eml"));
    assert_eq!(property(&v, "dkim", "header.a"), vec!["rsa-sha1"]);
    let v = scan(&env, IP, HELO, from, &plain(from));
    assert_eq!(result(&v, "dkim"), "none");
}

#[test]
fn dmarc_alignment_and_policies() {
    let Some(env) = env("") else { return };
    // (MAIL FROM, message, expected dmarc, expected verdict, applied policy)
    let signed_rsa = signed("signed-rsa.eml");
    type Case<'a> = (&'a str, Vec<u8>, &'a str, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        // SPF alignment only (unsigned).
        (
            "alice@sender.test",
            plain("alice@sender.test"),
            "pass",
            "accept",
            Some("none"),
        ),
        // DKIM alignment only (the envelope is another domain's, SPF fails).
        (
            "bounce@other.test",
            signed_rsa.clone(),
            "pass",
            "accept",
            Some("none"),
        ),
        // Signed by a domain that does not align, SPF not aligned: fail, p=reject.
        (
            "bounce@other.test",
            signed("signed-other.eml"),
            "fail",
            "reject",
            Some("reject"),
        ),
        (
            "x@reject.dmarc.test",
            plain("x@reject.dmarc.test"),
            "fail",
            "reject",
            Some("reject"),
        ),
        (
            "x@quarantine.dmarc.test",
            plain("x@quarantine.dmarc.test"),
            "fail",
            "accept",
            Some("quarantine"),
        ),
        (
            "x@none.dmarc.test",
            plain("x@none.dmarc.test"),
            "fail",
            "accept",
            Some("none"),
        ),
        // pct=0 means nothing to RFC 9989 (pct is gone): reject applies.
        (
            "x@pct.dmarc.test",
            plain("x@pct.dmarc.test"),
            "fail",
            "reject",
            Some("reject"),
        ),
        // t=y (testing): the next weaker policy, quarantine, applies.
        (
            "x@testing.dmarc.test",
            plain("x@testing.dmarc.test"),
            "fail",
            "accept",
            Some("quarantine"),
        ),
        // No record of its own: the organizational domain's sp=reject applies.
        (
            "x@sub.dmarc.test",
            plain("x@sub.dmarc.test"),
            "fail",
            "reject",
            Some("reject"),
        ),
        // SPF passes for a subdomain: relaxed aligns, strict does not.
        (
            "x@bounce.relaxed.dmarc.test",
            plain("x@relaxed.dmarc.test"),
            "pass",
            "accept",
            Some("none"),
        ),
        (
            "x@bounce.strict.dmarc.test",
            plain("x@strict.dmarc.test"),
            "fail",
            "reject",
            Some("reject"),
        ),
        // No DMARC record anywhere.
        (
            "user@pass.spf.test",
            plain("user@pass.spf.test"),
            "none",
            "accept",
            None,
        ),
    ];
    for (mail_from, message, dmarc, verdict, applied) in cases {
        let v = scan(&env, IP, HELO, mail_from, &message);
        assert_eq!(result(&v, "dmarc"), dmarc, "{mail_from}: {v:#}");
        assert_eq!(v["verdict"], verdict, "{mail_from}: {v:#}");
        assert_eq!(
            v["dmarc_policy"]["applied"].as_str(),
            applied,
            "{mail_from}: {v:#}"
        );
        if verdict == "reject" {
            assert_eq!(v["reply_code"], 550);
            let reply = v["reply"].as_str().unwrap();
            assert!(
                reply.contains("5.7.1") && reply.contains("DMARC"),
                "{reply}"
            );
        }
        if applied == Some("quarantine") {
            assert!(
                v["edits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().starts_with("quarantine:")),
                "{v:#}"
            );
        }
    }
}

/// `dmarc.discovery = "psl"` keeps RFC 7489's answers: pct=0 puts a failure
/// outside the sample (reject becomes quarantine), and t= means nothing.
#[test]
fn psl_discovery_keeps_pct_and_ignores_t() {
    let Some(env) = env("") else { return };
    let psl = variant(&env, "psl.toml", "[dmarc]\ndiscovery = \"psl\"\n", "");
    for (domain, applied) in [("pct", "quarantine"), ("testing", "reject")] {
        let from = format!("x@{domain}.dmarc.test");
        let v = scan_with(&psl, env.dir.path(), IP, HELO, &from, &plain(&from));
        assert_eq!(result(&v, "dmarc"), "fail", "{v:#}");
        assert_eq!(v["dmarc_policy"]["applied"], applied, "{from}: {v:#}");
        assert!(
            v["authentication_results"]
                .as_str()
                .unwrap()
                .contains("psl"),
            "the header names the method: {v:#}"
        );
    }
}

/// Defect 2 of the hardening review: a body over `server.max_message_size` was
/// never DMARC-enforced. Now DMARC is decided from what is known, and only a failure
/// that a DKIM signature over the missing part might have turned into a pass gets
/// `inbound.on_oversize` (tempfail unless configured).
#[test]
fn a_body_cut_at_max_message_size_is_judged_on_what_is_known() {
    let Some(env) = env("") else { return };
    let config = |name: &str, extra_inbound: &str| {
        variant(
            &env,
            name,
            "[server]\nmax_message_size = \"20B\"\n",
            extra_inbound,
        )
    };
    let small = config("small.toml", "");
    // Aligned only through DKIM, whose body hash cannot be checked on 20 bytes.
    let v = scan_with(
        &small,
        env.dir.path(),
        IP,
        HELO,
        "bounce@other.test",
        &signed("signed-rsa.eml"),
    );
    assert_eq!(result(&v, "dkim"), "neutral", "{v:#}");
    assert_eq!(result(&v, "dmarc"), "fail");
    assert_eq!(v["verdict"], "tempfail", "undecided is not a pass: {v:#}");
    assert_eq!(v["reply_code"], 452, "{v:#}");
    assert!(
        v["reason"].as_str().unwrap().contains("DMARC undecided"),
        "{v:#}"
    );
    let lenient = config("lenient.toml", "on_oversize = \"accept\"\n");
    let v = scan_with(
        &lenient,
        env.dir.path(),
        IP,
        HELO,
        "bounce@other.test",
        &signed("signed-rsa.eml"),
    );
    assert_eq!(v["verdict"], "accept", "configured to accept: {v:#}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("inbound.on_oversize = accept"),
        "{v:#}"
    );
    // No signature at all: nothing depends on the body, DMARC p=reject applies.
    let forged = format!(
        "From: ceo@reject.dmarc.test\nTo: bob@dest.test\nSubject: pay now\n\n{}\n",
        "a long body well past twenty bytes ".repeat(4)
    );
    let v = scan_with(
        &small,
        env.dir.path(),
        IP,
        HELO,
        "bounce@other.test",
        forged.as_bytes(),
    );
    assert_eq!(result(&v, "dmarc"), "fail", "{v:#}");
    assert_eq!(v["verdict"], "reject", "{v:#}");
    assert_eq!(v["reply_code"], 550, "{v:#}");
}

#[test]
fn from_header_edge_cases_are_reported_not_crashed_on() {
    let Some(env) = env("") else { return };
    let config = |name: &str, extra_inbound: &str| variant(&env, name, "", extra_inbound);
    // No From, or one without an address: DMARC cannot be evaluated, and by
    // default (inbound.on_bad_from = "reject") that is a refusal, not a pass.
    let no_from = b"To: bob@dest.test\nSubject: no from\n\nHi.\n".to_vec();
    let garbage = b"From: \"Dear Customer\n Happy new year\nTo: bob@dest.test\n\nHi.\n".to_vec();
    for (message, why) in [
        (&no_from, "no From field"),
        (&garbage, "From does not parse"),
    ] {
        let v = scan(&env, IP, HELO, "alice@sender.test", message);
        assert_eq!(result(&v, "dmarc"), "permerror", "{v:#}");
        assert_eq!(v["verdict"], "reject", "{v:#}");
        assert_eq!(v["reply_code"], 550, "{v:#}");
        assert!(
            v["reason"].as_str().unwrap_or_default().contains(why),
            "{v:#}"
        );
    }
    let lenient = config("from-accept.toml", "on_bad_from = \"accept\"\n");
    let v = scan_with(
        &lenient,
        env.dir.path(),
        IP,
        HELO,
        "alice@sender.test",
        &no_from,
    );
    assert_eq!(result(&v, "dmarc"), "permerror", "{v:#}");
    assert_eq!(v["verdict"], "accept", "configured to accept: {v:#}");
    // Two From domains: each is evaluated and shown, the failing one decides, so
    // an extra address cannot hide it (RFC 7489 §6.6.1).
    let two =
        b"From: alice@sender.test, x@reject.dmarc.test\nTo: bob@dest.test\nSubject: two\n\nHi.\n"
            .to_vec();
    let v = scan(&env, IP, HELO, "alice@sender.test", &two);
    assert_eq!(result(&v, "dmarc"), "fail", "{v:#}");
    assert_eq!(
        property(&v, "dmarc", "header.from"),
        vec!["reject.dmarc.test", "sender.test"]
    );
    assert_eq!(v["verdict"], "reject");
    // Two From fields count the same way; with on_multiple_from = "reject" even a
    // passing pair is refused.
    let fields =
        b"From: alice@sender.test\nFrom : bob@sender.test\nTo: bob@dest.test\n\nHi.\n".to_vec();
    let strict = config("multi-reject.toml", "on_multiple_from = \"reject\"\n");
    let v = scan_with(&strict, env.dir.path(), IP, HELO, "alice@sender.test", &two);
    assert_eq!(v["verdict"], "reject", "{v:#}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("2 author domains"),
        "{v:#}"
    );
    let v = scan_with(
        &strict,
        env.dir.path(),
        IP,
        HELO,
        "alice@sender.test",
        &fields,
    );
    assert_ne!(
        v["verdict"], "reject",
        "one author domain in two fields: {v:#}"
    );
}

#[test]
fn arc_from_a_trusted_sealer_overrides_a_dmarc_failure() {
    let Some(env) = env("") else { return };
    let v = scan(
        &env,
        "198.51.100.7",
        "mail.lists.test",
        "bounce@lists.test",
        &signed("arc-trusted.eml"),
    );
    assert_eq!(result(&v, "arc"), "pass", "{v:#}");
    assert_eq!(
        result(&v, "dkim"),
        "fail",
        "the list broke the signature: {v:#}"
    );
    assert_eq!(result(&v, "dmarc"), "fail");
    assert_eq!(v["dmarc_policy"]["override_by"], "lists.test");
    assert_eq!(v["verdict"], "accept");
    let header = v["authentication_results"].as_str().unwrap();
    assert!(
        header.contains("policy.override=trusted_forwarder"),
        "{header}"
    );

    let v = scan(
        &env,
        "198.51.100.7",
        "mail.evil.test",
        "bounce@evil.test",
        &signed("arc-untrusted.eml"),
    );
    assert_eq!(result(&v, "arc"), "pass", "{v:#}");
    assert_eq!(v["dmarc_policy"]["override_by"], Value::Null);
    assert_eq!(v["verdict"], "reject");
}

#[test]
fn iprev_checks_that_the_ptr_name_resolves_back() {
    let Some(env) = env("") else { return };
    let from = "user@pass.spf.test";
    let v = scan(&env, "192.0.2.10", HELO, from, &plain(from));
    assert_eq!(result(&v, "iprev"), "pass", "{v:#}");
    let v = scan(&env, "192.0.2.20", HELO, from, &plain(from));
    assert_eq!(result(&v, "iprev"), "fail", "{v:#}");
    let v = scan(&env, "192.0.2.30", HELO, from, &plain(from));
    assert_eq!(result(&v, "iprev"), "permerror", "{v:#}");
}

#[test]
fn dns_failure_is_temperror_and_the_configured_action() {
    let Some(mut env) = env("") else { return };
    env.knot.stop();
    let from = "alice@sender.test";
    let started = std::time::Instant::now();
    let v = scan(&env, IP, HELO, from, &signed("signed-rsa.eml"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(result(&v, "spf"), "temperror", "{v:#}");
    assert_eq!(result(&v, "dkim"), "temperror");
    assert_eq!(result(&v, "dmarc"), "temperror");
    assert_eq!(v["verdict"], "tempfail");
    assert_eq!(v["reply_code"], 451);

    let accept = env.dir.path().join("accept.toml");
    write_config(&accept, &env.knot.address(), "on_dns_error = \"accept\"");
    let v = scan_with(
        &accept,
        env.dir.path(),
        IP,
        HELO,
        from,
        &signed("signed-rsa.eml"),
    );
    assert_eq!(v["verdict"], "accept", "{v:#}");
    assert!(
        v["authentication_results"]
            .as_str()
            .unwrap()
            .contains("dmarc=temperror")
    );

    // DNS back: the same message passes.
    env.knot.restart();
    let v = scan(&env, IP, HELO, from, &signed("signed-rsa.eml"));
    assert_eq!(result(&v, "dmarc"), "pass", "{v:#}");
}

/// Defect 9 of the hardening review: the resolver answered from `/etc/hosts` even
/// with `[dns] nameservers` set, so a hosts entry changed SPF `a` results. Run in a
/// mount namespace whose `/etc/hosts` names v1.spf.test (which has no A record in
/// DNS): only `hosts_file = true` lets that entry count.
#[test]
fn etc_hosts_is_not_read_unless_configured() {
    if !require("unshare", "util-linux") || !require("mount", "mount") {
        return;
    }
    let Some(env) = env("") else { return };
    let hosts = env.dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n192.0.2.99 v1.spf.test\n").unwrap();
    let message = env.dir.path().join("message.eml");
    std::fs::write(
        &message,
        b"From: user@void.spf.test\nTo: bob@dest.test\nSubject: x\n\nHi.\n",
    )
    .unwrap();
    let scan = |config: &Path| -> Value {
        let out = std::process::Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(&hosts)
            .arg(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["scan", "--json", "-c"])
            .arg(config)
            .args(["--ip", "192.0.2.99", "--helo", "mail.void.spf.test"])
            .args(["--from", "user@void.spf.test", "--rcpt", "bob@dest.test"])
            .arg(&message)
            .output()
            .expect("run unshare");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("scan prints JSON")
    };
    let v = scan(&env.config);
    assert_eq!(
        result(&v, "spf"),
        "permerror",
        "hosts ignored, three void lookups: {v:#}"
    );
    let with_hosts = env.dir.path().join("hosts.toml");
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &with_hosts,
        text.replace("[dns]\n", "[dns]\nhosts_file = true\n"),
    )
    .unwrap();
    let v = scan(&with_hosts);
    assert_eq!(
        result(&v, "spf"),
        "pass",
        "configured to read /etc/hosts: {v:#}"
    );
}

/// Defect 9 of the hardening review: a From domain with a 64-octet label, or a
/// domain literal, gave DMARC `temperror`, which the default `on_dns_error`
/// tempfails: the sender retried forever. No DNS answer can change such a name, so
/// it is `permerror`, never tempfailed; since issue 17 it is a From DMARC cannot
/// check, refused by the default `on_bad_from = "reject"`.
#[test]
fn a_from_domain_dns_cannot_hold_is_a_permerror_not_a_temperror() {
    let Some(env) = env("") else { return };
    let long = format!("user@{}.sender.test", "a".repeat(64));
    for from in [long.as_str(), "user@[192.0.2.10]"] {
        let message = format!("From: {from}\nTo: bob@dest.test\nSubject: x\n\nHi.\n");
        let v = scan(&env, IP, HELO, "alice@sender.test", message.as_bytes());
        assert_eq!(result(&v, "dmarc"), "permerror", "{from}: {v:#}");
        assert_eq!(v["verdict"], "reject", "{from}: {v:#}");
        assert!(
            v["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("no domain DMARC can check"),
            "{from}: {v:#}"
        );
    }
}

/// Fault injection: a name server that never answers, one that answers SERVFAIL,
/// and one whose answers are truncated with no TCP behind them. Each is a DNS
/// failure: temperror within `timeout × attempts`, then `on_dns_error` (tempfail).
#[test]
fn a_broken_name_server_is_temperror_and_tempfail_never_a_pass_or_fail() {
    use common::dns_fault::{BrokenDns, DnsFault};
    let Some(env) = env("") else { return };
    for fault in [DnsFault::Silent, DnsFault::ServFail, DnsFault::Truncated] {
        let dns = BrokenDns::start(fault);
        let config = env.dir.path().join(format!("{fault:?}.toml"));
        write_config(&config, &dns.address(), "");
        let started = std::time::Instant::now();
        let v = scan_with(
            &config,
            env.dir.path(),
            IP,
            HELO,
            "alice@sender.test",
            &signed("signed-rsa.eml"),
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(result(&v, "dmarc"), "temperror", "{fault:?}: {v:#}");
        assert_eq!(v["verdict"], "tempfail", "{fault:?}: {v:#}");
    }
}
