//! DMARC aggregate reports end to end through a real Postfix: mail from three
//! domains and several source IPs (knot serving their records: a local `rua`, an
//! external one its owner authorizes, an external one nobody authorized) →
//! `mailwarden reports send` → Postfix delivers the report mails to the sink,
//! signed by this daemon (dkimpy verifies), and parsedmarc (a parser we did not
//! write) reads the counts per source IP and disposition. A run killed between
//! building the reports and the SMTP transaction loses nothing, and the rerun
//! sends each report exactly once.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::scenario::{Components, Scenario, Stack};
use common::smtp::Peer;
use common::{require, wait_for};

fn zone(name: &str, records: &str) -> (String, String) {
    (
        name.to_owned(),
        format!(
            "$ORIGIN {name}.\n$TTL 300\n@ SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
             @ NS ns.harness.test.\n{records}\n"
        ),
    )
}

fn stack() -> Option<Stack> {
    stack_for("dmarc_reports", Vec::new())
}

/// The scenario with the report domains' zones, `extra` zones and reporter.test's
/// signing key (made by `mailwarden genkey`, published in knot).
fn stack_for(scenario: &str, extra: Vec<(String, String)>) -> Option<Stack> {
    if !require("python3", "python3") {
        return None;
    }
    let with = Components {
        knot: true,
        clamd: false,
    };
    Scenario::new(scenario).start_prepared(with, |dir| {
        let keys = dir.join("keys");
        std::fs::create_dir(&keys).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args([
                "genkey",
                "--domain",
                "reporter.test",
                "--selector",
                "rpt",
                "--out",
            ])
            .arg(&keys)
            .output()
            .expect("genkey");
        assert!(out.status.success());
        let key: String = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with(';'))
            .collect::<Vec<_>>()
            .join("\n");
        let spf = "@ TXT \"v=spf1 ip4:192.0.2.0/24 -all\"";
        vec![
            zone(
                "rpt-a.test",
                &format!("{spf}\n_dmarc TXT \"v=DMARC1; p=none; rua=mailto:dmarc@rpt-a.test\""),
            ),
            zone(
                "rpt-b.test",
                &format!(
                    "{spf}\n_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:agg@reports.example.test\""
                ),
            ),
            zone(
                "rpt-c.test",
                &format!(
                    "{spf}\n_dmarc TXT \"v=DMARC1; p=quarantine; rua=mailto:agg@evil.example.test\""
                ),
            ),
            zone(
                "reports.example.test",
                "rpt-b.test._report._dmarc TXT \"v=DMARC1\"",
            ),
            zone("evil.example.test", "@ TXT \"nothing here\""),
            zone("reporter.test", &key),
        ]
        .into_iter()
        .chain(extra)
        .collect()
    })
}

fn peer(addr: &'static str) -> Peer<'static> {
    Peer {
        addr,
        name: "mail.outside.test",
        helo: "mail.outside.test",
        login: None,
    }
}

fn send(s: &Stack, ip: &'static str, domain: &str, n: usize) {
    let id = format!("<{domain}.{ip}.{n}@harness.test>");
    let message = format!(
        "From: someone@{domain}\r\nTo: bob@dest.test\r\nSubject: report me\r\nMessage-ID: {id}\r\n\r\nhello\r\n"
    );
    s.postfix
        .send_as(peer(ip), &format!("bounce@{domain}"), message.as_bytes());
}

/// A copy of the daemon's config whose `[reports] smtp` is `port`.
fn config_with_smtp(s: &Stack, port: u16) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&s.mw.config_path).unwrap();
    let start = text.find("smtp = ").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!(
        "{}smtp = \"127.0.0.1:{port}\"{}",
        &text[..start],
        &text[end..]
    );
    let path = s.dir.path().join(format!("reports-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn reports(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .arg("reports")
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run mailwarden reports")
}

#[test]
fn aggregate_reports_go_through_postfix_signed_once_each_and_parsedmarc_counts_them() {
    let Some(s) = stack() else { return };
    for n in 0..3 {
        send(&s, "192.0.2.10", "rpt-a.test", n); // SPF pass: DMARC pass
    }
    for n in 0..2 {
        send(&s, "198.51.100.7", "rpt-a.test", n); // fail, p=none
        send(&s, "203.0.113.5", "rpt-b.test", n); // fail, p=reject: refused
        send(&s, "198.51.100.7", "rpt-c.test", n); // fail, p=quarantine: held
    }
    send(&s, "192.0.2.10", "rpt-b.test", 9);
    assert!(
        s.mw.wait_for_log("message decided", 10, Duration::from_secs(20)),
        "{}",
        s.mw.log()
    );
    // The rows reach the store through the writer thread.
    let list = wait_for(Duration::from_secs(10), || {
        let out = reports(&["list"], &s.mw.config_path);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains("rpt-a.test  5 records")
            && text.contains("rpt-b.test  3 records")
            && text.contains("rpt-c.test  2 records"))
        .then_some(text)
    });
    assert!(
        list.is_some(),
        "{:?}\n{}",
        reports(&["list"], &s.mw.config_path),
        s.mw.log()
    );

    // A run killed while its first SMTP transaction waits: the reports are built
    // (the rows aggregated, the mails stored), nothing is sent.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = config_with_smtp(&s, silent.local_addr().unwrap().port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["reports", "send", "--all", "-c"])
        .arg(&hanging)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_connection, _) = silent.accept().expect("reports send connects");
    child.kill().unwrap();
    child.wait().unwrap();
    let listed = String::from_utf8_lossy(&reports(&["list"], &hanging).stdout).into_owned();
    assert!(
        listed.contains("(none)") && listed.contains("sending"),
        "{listed}"
    );

    // The rerun sends each report once; the unauthorized destination gets none.
    let through_postfix = config_with_smtp(&s, s.postfix.smtp_port);
    let out = reports(&["send"], &through_postfix);
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success()
            && summary.contains("0 built, 2 sent")
            && summary.contains("1 unauthorized"),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = reports(&["send", "--all"], &through_postfix);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 built, 0 sent"),
        "{again:?}"
    );
    let listed = String::from_utf8_lossy(&reports(&["list"], &hanging).stdout).into_owned();
    assert!(
        listed.contains("unauthorized") && listed.contains("agg@evil.example.test"),
        "{listed}"
    );

    let delivered = wait_for(Duration::from_secs(30), || {
        let found = s.postfix.delivered_with_subject("Report Domain:");
        (found.len() >= 2).then_some(found)
    })
    .expect("two report mails at the sink");
    std::thread::sleep(Duration::from_secs(1));
    let all = s.postfix.delivered_with_subject("Report Domain:");
    assert_eq!(all.len(), 2, "each report exactly once");
    let mut seen = BTreeMap::new();
    for mail in &delivered {
        let to = mail.header("To").unwrap();
        assert!(!to.contains("evil.example.test"));
        // Signed on its way out by this daemon, and dkimpy agrees.
        let sigs = common::dkimpy::verify(&mail.raw, s.knot.as_ref().unwrap().port);
        assert!(
            sigs.iter()
                .any(|(d, sel, _, ok)| d == "reporter.test" && sel == "rpt" && *ok),
            "{sigs:?}"
        );
        let subject = mail.header("Subject").unwrap();
        let (domain, counts, policy) = common::parsedmarc::read(&mail.raw);
        assert!(subject.contains(&format!("Report Domain: {domain} Submitter: reporter.test")));
        seen.insert(domain.clone(), (to.trim().to_owned(), counts, policy));
    }
    let count = |v: &[(&str, &str, u64)]| -> BTreeMap<(String, String), u64> {
        v.iter()
            .map(|(ip, d, n)| (((*ip).to_owned(), (*d).to_owned()), *n))
            .collect()
    };
    let (to, counts, policy) = &seen["rpt-a.test"];
    assert_eq!(to, "dmarc@rpt-a.test");
    assert_eq!(
        *counts,
        count(&[("192.0.2.10", "pass", 3), ("198.51.100.7", "none", 2)])
    );
    assert_eq!(policy["p"], "none");
    let (to, counts, policy) = &seen["rpt-b.test"];
    assert_eq!(to, "agg@reports.example.test");
    assert_eq!(
        *counts,
        count(&[("192.0.2.10", "pass", 1), ("203.0.113.5", "reject", 2)])
    );
    assert_eq!(policy["p"], "reject");
}

/// A store that cannot be opened is a warning at start; mail flows through
/// Postfix as before, and the rows beyond `[reports] backlog` are counted lost.
#[test]
fn an_unwritable_store_is_a_warning_mail_flows_and_the_loss_is_counted() {
    if !require("postfix", "postfix") || !require("knotd", "knot") {
        return;
    }
    let dir = common::shared_tempdir("mw-reports-unwritable");
    let knot = common::knot::Knot::start_with(
        dir.path(),
        &[zone(
            "lost.test",
            "_dmarc TXT \"v=DMARC1; p=none; rua=mailto:d@lost.test\"",
        )],
    );
    // A regular file where the store's directory should be: nothing opens under it.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let (admin_port, admin) = common::admin::section(dir.path());
    let port = common::free_port();
    let config = format!(
        "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
         [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
         [inbound]\nauthserv_id = \"mx.harness.test\"\n\n\
         [reports]\nstore = \"{}/not-a-dir/reports.db\"\nbacklog = 2\n\n{admin}",
        knot.address(),
        dir.path().display()
    );
    let mw = common::mailwarden::Mailwarden::start_with_config(dir.path(), port, &config);
    assert!(
        mw.wait_for_log("DMARC report store unavailable", 1, Duration::from_secs(10)),
        "{}",
        mw.log()
    );
    let postfix = common::postfix::Postfix::start(dir.path(), &mw.addr(), "tempfail");
    for n in 0..5 {
        let message = format!(
            "From: a@lost.test\r\nTo: bob@dest.test\r\nSubject: s\r\nMessage-ID: <unwritable-{n}@harness.test>\r\n\r\nhi\r\n"
        );
        let outcome = postfix.send_as(peer("198.51.100.7"), "a@lost.test", message.as_bytes());
        assert!(outcome.accepted(), "{outcome:?}");
    }
    postfix.wait_delivered("unwritable-4@harness.test");
    // Five rows, two kept in memory for when the store comes back, three lost.
    let lost = wait_for(Duration::from_secs(15), || {
        let (_, body) = common::admin::get(admin_port, "/metrics", Some(common::admin::TOKEN));
        let m = common::admin::parse_metrics(&body);
        let lost = m
            .get("mailwarden_dmarc_report_records_total{class=\"lost\"}")
            .copied();
        (lost == Some(3.0)).then_some(m)
    });
    let m = lost.unwrap_or_else(|| {
        panic!(
            "{}\n{}",
            common::admin::get(admin_port, "/metrics", Some(common::admin::TOKEN)).1,
            mw.log()
        )
    });
    assert!(m["mailwarden_dmarc_report_store_errors_total"] >= 1.0);
    assert!(
        mw.log().contains("DMARC report records dropped"),
        "{}",
        mw.log()
    );
}

/// Failure reports (RFC 9991): made for a domain whose `fo=` asks, capped per
/// domain and hour, never for a `psd=y` record; delivered by the daemon's own
/// round through Postfix, signed, in the Abuse Reporting Format with the local
/// parts redacted. Python's email package reads the report.
#[test]
fn failure_reports_are_afrf_redacted_capped_and_never_for_a_psd() {
    let extra = vec![
        zone(
            "fail-a.test",
            "@ TXT \"v=spf1 -all\"\n_dmarc TXT \"v=DMARC1; p=none; fo=1; ruf=mailto:forensic@fail-a.test\"",
        ),
        zone(
            "psdzone.test",
            "_dmarc TXT \"v=DMARC1; p=none; psd=y; ruf=mailto:psd@psdzone.test\"\nmember TXT \"v=spf1 -all\"",
        ),
    ];
    let Some(s) = stack_for("dmarc_failure_reports", extra) else {
        return;
    };
    // Point the daemon's failure round at Postfix and reload.
    let text = std::fs::read_to_string(&s.mw.config_path).unwrap();
    let start = text.find("smtp = ").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    let text = format!(
        "{}smtp = \"127.0.0.1:{}\"{}",
        &text[..start],
        s.postfix.smtp_port,
        &text[end..]
    );
    std::fs::write(&s.mw.config_path, text).unwrap();
    s.mw.signal("HUP");
    assert!(s.mw.wait_for_log("configuration reloaded", 1, Duration::from_secs(10)));
    for n in 0..3 {
        let message = format!(
            "From: Secret Person <secret.person@fail-a.test>\r\nTo: bob@dest.test\r\n\
             Subject: fail {n}\r\nMessage-ID: <fail-{n}@harness.test>\r\n\r\nconfidential body\r\n"
        );
        s.postfix.send_as(
            peer("198.51.100.7"),
            "secret.person@fail-a.test",
            message.as_bytes(),
        );
    }
    let message = "From: x@member.psdzone.test\r\nTo: bob@dest.test\r\nSubject: psd\r\n\
                   Message-ID: <psd@harness.test>\r\n\r\nhi\r\n";
    s.postfix.send_as(
        peer("198.51.100.7"),
        "x@member.psdzone.test",
        message.as_bytes(),
    );
    let reports = wait_for(Duration::from_secs(40), || {
        let found = s.postfix.delivered_with_subject("DMARC failure report");
        (found.len() >= 2).then_some(found)
    })
    .unwrap_or_else(|| panic!("no failure reports at the sink\n{}", s.mw.log()));
    // The cap (2 per hour) held, and the PSD got nothing.
    std::thread::sleep(Duration::from_secs(12));
    let all = s.postfix.delivered_with_subject("failure report");
    assert_eq!(all.len(), 2, "{all:?}");
    for report in &reports {
        assert_eq!(report.header("To").unwrap().trim(), "forensic@fail-a.test");
        let sigs = common::dkimpy::verify(&report.raw, s.knot.as_ref().unwrap().port);
        assert!(
            sigs.iter().any(|(d, _, _, ok)| d == "reporter.test" && *ok),
            "{sigs:?}"
        );
        let fields = afrf(&report.raw);
        assert_eq!(fields["content_type"], "multipart/report");
        assert_eq!(fields["report_type"], "feedback-report");
        assert_eq!(fields["Feedback-Type"], "auth-failure");
        assert_eq!(fields["Auth-Failure"], "dmarc");
        assert_eq!(fields["Reported-Domain"], "fail-a.test");
        assert_eq!(fields["Source-IP"], "198.51.100.7");
        assert_eq!(fields["Original-Mail-From"], "redacted@fail-a.test");
        let headers = fields["headers_part"].as_str().unwrap();
        assert_eq!(fields["headers_type"], "text/rfc822-headers");
        assert!(headers.contains("redacted@fail-a.test"), "{headers}");
        let raw = String::from_utf8_lossy(&report.raw);
        assert!(
            !raw.contains("secret.person") && !raw.contains("confidential body"),
            "{raw}"
        );
    }
}

/// The parts of an RFC 5965 report as Python's email package reads them.
fn afrf(raw: &[u8]) -> serde_json::Value {
    let script = r#"
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
out = {"content_type": m.get_content_type(), "report_type": m.get_param("report-type")}
for part in m.walk():
    t = part.get_content_type()
    if t == "message/feedback-report":
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) else email.message_from_string(payload)
        for k, v in fields.items():
            out[k] = " ".join(v.split())
    elif t in ("text/rfc822-headers", "message/rfc822"):
        out["headers_type"] = t
        out["headers_part"] = part.get_payload() if isinstance(part.get_payload(), str) else str(part.get_payload()[0])
print(json.dumps(out))
"#;
    common::python_json("Python's email package", script, &[], raw)
}
