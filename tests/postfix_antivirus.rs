//! Malware scanning against a real clamd (signatures written by the harness),
//! through a real Postfix: EICAR in every common wrapping is refused at SMTP naming
//! the signature, held or tagged when configured so, clean mail is delivered with
//! our header, and clamd being down, hung or too small never lets mail through
//! unscanned. `mailwarden scan` covers the actions that need no SMTP client.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::clamd::{Clamd, SilentClamd, eicar};
use common::mailwarden::Mailwarden;
use common::postfix::Postfix;
use common::{require, shared_tempdir};

fn have_everything() -> bool {
    require("postfix", "postfix")
        && require("smtp-sink", "postfix")
        && require("clamd", "clamav-daemon")
        && require("python3", "python3")
}

fn b64(data: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    text.as_bytes()
        .chunks(76)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A zip archive holding `name` with `data`, made by Python's zipfile.
fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, io, zipfile\nb = io.BytesIO()\nwith zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:\n    z.writestr(sys.argv[1], sys.stdin.buffer.read())\nsys.stdout.buffer.write(b.getvalue())",
            name,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A multipart/mixed message with a text part and `attachment` (already encoded,
/// with its own MIME headers).
fn with_attachment(id: &str, attachment: &str) -> Vec<u8> {
    format!(
        "From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: invoice {id}\r\n\
         Message-ID: <{id}@sender.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: text/plain\r\n\r\nPlease find the invoice attached.\r\n\
         --outer\r\n{attachment}\r\n--outer--\r\n"
    )
    .into_bytes()
}

fn base64_attachment(file: &str, content_type: &str, data: &[u8]) -> String {
    format!(
        "Content-Type: {content_type}; name=\"{file}\"\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}",
        b64(data)
    )
}

/// EICAR in the wrappings a mailer uses: (name, message).
fn infected_messages() -> Vec<(&'static str, Vec<u8>)> {
    let e = eicar();
    let plain = base64_attachment("eicar.com", "application/octet-stream", &e);
    let zipped = base64_attachment("invoice.zip", "application/zip", &zip("eicar.com", &e));
    let nested = format!(
        "Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n\
         --inner\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --alt\r\nContent-Type: text/html\r\n\r\n<p>see attached</p>\r\n--alt--\r\n\
         --inner\r\n{}\r\n--inner--",
        base64_attachment("report.com", "application/octet-stream", &e)
    );
    let quoted_printable = format!(
        "Content-Type: text/plain; charset=us-ascii\r\n\
         Content-Disposition: attachment; filename=\"notes.txt\"\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n\
         Notes:=0D=0A{}=3D=3D",
        String::from_utf8_lossy(&e).replace('=', "=3D")
    );
    vec![
        ("plain", with_attachment("av-plain", &plain)),
        ("zip", with_attachment("av-zip", &zipped)),
        ("nested", with_attachment("av-nested", &nested)),
        ("qp", with_attachment("av-qp", &quoted_printable)),
    ]
}

fn clean_message(id: &str) -> Vec<u8> {
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let mut m = b"X-Virus-Scanned: clean, says the sender\r\n".to_vec();
    m.extend(with_attachment(
        id,
        &base64_attachment("invoice.pdf", "application/pdf", pdf),
    ));
    m
}

struct Stack {
    mw: Mailwarden,
    postfix: Postfix,
}

/// mailwarden on `tests/scenarios/SCENARIO/mailwarden.toml` with clamd at
/// `clamd`, and Postfix in front of it.
fn stack(dir: &Path, scenario: &str, clamd: &str) -> Stack {
    let port = common::free_port();
    let config = common::scenario::Scenario::new(scenario).config(&[
        ("LISTEN", format!("inet:127.0.0.1:{port}")),
        ("CLAMD", clamd.to_owned()),
    ]);
    let mw = Mailwarden::start_with_config(dir, port, &config);
    let postfix = Postfix::start(dir, &mw.addr(), "tempfail");
    Stack { mw, postfix }
}

#[test]
fn eicar_is_rejected_at_smtp_naming_the_signature_and_clean_mail_is_delivered() {
    if !have_everything() {
        return;
    }
    let dir = shared_tempdir("mw-av-reject");
    let clamd = Clamd::start(dir.path(), "10M");
    let s = stack(dir.path(), "antivirus_reject", &clamd.tcp());
    for (name, message) in infected_messages() {
        let out = s.postfix.send(&message);
        assert_eq!(out.last.code, 554, "{name}: {out:?}\n{}", s.mw.log());
        assert!(
            out.last.text.contains("5.7.1")
                && out
                    .last
                    .text
                    .contains("message contains a virus: Win.Test.EICAR_"),
            "{name}: {out:?}"
        );
    }
    let out = s.postfix.send(&clean_message("av-clean"));
    assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
    let delivered = s.postfix.wait_delivered("<av-clean@sender.test>");
    let scanned = delivered.header_all("X-Virus-Scanned");
    assert_eq!(scanned.len(), 1, "the sender's copy is gone: {scanned:?}");
    assert!(
        scanned[0].starts_with("mailwarden (ClamAV 1."),
        "{scanned:?}"
    );
    // Only the clean message reached the sink.
    assert_eq!(s.postfix.delivered().len(), 1);
    let line = s.mw.decision_line(&out.queue_id().unwrap());
    assert!(line.contains("clamav=clean"), "{line}");
}

#[test]
fn quarantine_holds_and_tag_delivers_with_the_status_header() {
    if !have_everything() {
        return;
    }
    let dir = shared_tempdir("mw-av-hold");
    let clamd = Clamd::start(dir.path(), "10M");
    let messages = infected_messages();

    // Quarantine, over clamd's unix socket.
    let held_dir = dir.path().join("quarantine");
    std::fs::create_dir(&held_dir).unwrap();
    let s = stack(&held_dir, "antivirus_quarantine", &clamd.unix());
    let out = s.postfix.send(&messages[1].1);
    assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
    let queue_id = out.queue_id().unwrap();
    let held = common::wait_for(Duration::from_secs(10), || {
        let h = s.postfix.held();
        h.contains(&queue_id).then_some(h)
    });
    assert!(held.is_some(), "{queue_id} not in the hold queue");
    let line = s.mw.decision_line(&queue_id);
    assert!(
        line.contains("clamav=infected (Win.Test.EICAR_") && line.contains("quarantined"),
        "{line}"
    );
    drop(s);

    // Tag.
    let tag_dir = dir.path().join("tag");
    std::fs::create_dir(&tag_dir).unwrap();
    let s = stack(&tag_dir, "antivirus_tag", &clamd.tcp());
    let out = s.postfix.send(&messages[0].1);
    assert!(out.accepted(), "{out:?}\n{}", s.mw.log());
    let delivered = s.postfix.wait_delivered("<av-plain@sender.test>");
    let status = delivered.header("X-Virus-Status").unwrap_or_default();
    assert!(
        status.starts_with("Infected (Win.Test.EICAR_"),
        "{status:?}"
    );
    assert!(delivered.header("X-Virus-Scanned").is_some());
}

#[test]
fn clamd_down_or_hung_tempfails_and_nothing_is_delivered() {
    if !have_everything() {
        return;
    }
    let dir = shared_tempdir("mw-av-down");
    let mut clamd = Clamd::start(dir.path(), "10M");
    let down_dir = dir.path().join("down");
    std::fs::create_dir(&down_dir).unwrap();
    let s = stack(&down_dir, "antivirus_timeout", &clamd.tcp());
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["check-config", "-c"])
            .arg(&s.mw.config_path)
            .output()
            .unwrap()
    };
    let up = check();
    assert!(up.status.success(), "{up:?}");
    assert!(
        String::from_utf8_lossy(&up.stdout).contains(": OK, ClamAV 1."),
        "{up:?}"
    );

    clamd.stop();
    let out = s.postfix.send(&clean_message("av-down"));
    assert_eq!(out.last.code, 451, "{out:?}");
    assert!(out.last.text.contains("virus scan failed"), "{out:?}");
    let down = check();
    assert!(
        down.status.success(),
        "clamd down is reported, not a config error"
    );
    let said = String::from_utf8_lossy(&down.stderr);
    assert!(
        said.contains("clamd unreachable: cannot connect: Connection refused"),
        "{said}"
    );
    assert!(
        s.mw.wait_for_log("class=\"unreachable\"", 1, Duration::from_secs(5)),
        "{}",
        s.mw.log()
    );

    clamd.restart();
    let out = s.postfix.send(&clean_message("av-back"));
    assert!(out.accepted(), "{out:?}");
    s.postfix.wait_delivered("<av-back@sender.test>");
    drop(s);

    // A clamd that takes the connection and never answers.
    let silent = SilentClamd::start();
    let hung_dir = dir.path().join("hung");
    std::fs::create_dir(&hung_dir).unwrap();
    let s = stack(
        &hung_dir,
        "antivirus_timeout",
        &format!("tcp:127.0.0.1:{}", silent.port),
    );
    let started = Instant::now();
    let out = s.postfix.send(&clean_message("av-hung"));
    let took = started.elapsed();
    assert_eq!(out.last.code, 451, "{out:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(10),
        "answered after {took:?}"
    );
    assert!(
        s.mw.wait_for_log("class=\"timeout\"", 1, Duration::from_secs(5)),
        "{}",
        s.mw.log()
    );
    std::thread::sleep(Duration::from_secs(1));
    s.postfix.flush();
    assert!(
        s.postfix.delivered().is_empty(),
        "nothing delivered while clamd was down or hung"
    );
}

#[test]
fn oversize_and_per_attachment_mode() {
    if !have_everything() {
        return;
    }
    let dir = shared_tempdir("mw-av-size");
    let clamd = Clamd::start(dir.path(), "10M");
    let s = stack(dir.path(), "antivirus_oversize", &clamd.tcp());
    // Per-attachment mode names the file the virus is in.
    let out = s.postfix.send(&infected_messages()[1].1);
    assert_eq!(out.last.code, 554, "{out:?}\n{}", s.mw.log());
    assert!(
        out.last.text.contains("Win.Test.EICAR_") && out.last.text.contains(" in invoice.zip"),
        "{out:?}"
    );
    // Over max_size: on_oversize = "reject".
    let big = base64_attachment("big.bin", "application/octet-stream", &vec![b'x'; 100_000]);
    let out = s.postfix.send(&with_attachment("av-big", &big));
    assert_eq!(out.last.code, 552, "{out:?}");
    assert!(out.last.text.contains("5.3.4") && out.last.text.contains("too large to scan"));
}

/// `mailwarden scan` with an `[antivirus]` section: the actions that do not need an
/// SMTP client, against the same real clamd.
#[test]
fn scan_shows_the_antivirus_actions() {
    if !require("clamd", "clamav-daemon") || !require("python3", "python3") {
        return;
    }
    let dir = shared_tempdir("mw-av-scan");
    let mut clamd = Clamd::start(dir.path(), "40K");
    let run = |antivirus: &str, message: &[u8]| {
        let config = dir.path().join("scan.toml");
        std::fs::write(&config, format!("[antivirus]\n{antivirus}\n")).unwrap();
        let file = dir.path().join("message.eml");
        std::fs::write(&file, message).unwrap();
        common::scan_json(
            &config,
            "127.0.0.1",
            "localhost",
            "alice@sender.test",
            &file,
        )
    };
    let tcp = format!("clamd = \"{}\"", clamd.tcp());
    let infected = &infected_messages()[0].1;

    let v = run(&format!("{tcp}\non_infected = \"discard\""), infected);
    assert_eq!(v["verdict"], "discard", "{v}");

    // clamd's StreamMaxLength (40K) below our max_size: its error is on_error.
    let big = with_attachment(
        "av-big",
        &base64_attachment("big.bin", "application/octet-stream", &vec![b'x'; 60_000]),
    );
    let v = run(&tcp, &big);
    assert_eq!(v["verdict"], "tempfail", "{v}");
    assert!(
        v["antivirus"].as_str().unwrap().contains("size_limit"),
        "{v}"
    );
    let v = run(&format!("{tcp}\non_error = \"accept\""), &big);
    assert_eq!(v["verdict"], "accept", "{v}");
    assert!(
        v["edits"].to_string().contains("X-Virus-Scanned: error"),
        "{v}"
    );
    // Defect 2 of the hardening review: unscanned never means delivered by
    // default. on_oversize is tempfail unless configured.
    let v = run(&format!("{tcp}\nmax_size = \"30KiB\""), &big);
    assert_eq!(v["verdict"], "tempfail", "{v}");
    let v = run(
        &format!("{tcp}\nmax_size = \"30KiB\"\non_oversize = \"accept\""),
        &big,
    );
    assert_eq!(v["verdict"], "accept", "{v}");
    assert!(
        v["edits"]
            .to_string()
            .contains("X-Virus-Scanned: skipped (size)"),
        "{v}"
    );
    let v = run(
        &format!("{tcp}\nmax_size = \"30KiB\"\non_oversize = \"tempfail\""),
        &big,
    );
    assert_eq!(v["verdict"], "tempfail", "{v}");

    let v = run(&format!("{tcp}\nheader = false"), &clean_message("c"));
    assert_eq!(v["verdict"], "accept", "{v}");
    assert!(
        !v["edits"]
            .to_string()
            .contains("add header X-Virus-Scanned"),
        "{v}"
    );
    assert!(v["antivirus"] == "clean", "{v}");

    clamd.stop();
    let v = run(&format!("{tcp}\non_error = \"reject\""), infected);
    assert_eq!(v["verdict"], "reject", "{v}");
    assert_eq!(v["reply_code"], 554, "{v}");
}

/// Defect 1 of the hardening review: an `accept` rule lifted fail-closed antivirus.
/// Now a rule's accept leaves a virus refused and an unscanned message tempfailed
/// (scenario `tests/scenarios/antivirus_rule_cannot_lift`).
#[test]
fn an_accept_rule_delivers_neither_a_virus_nor_an_unscanned_message() {
    use common::scenario::{Components, Scenario};
    if !have_everything() {
        return;
    }
    let with = Components {
        knot: false,
        clamd: true,
    };
    let Some(mut stack) = Scenario::new("antivirus_rule_cannot_lift").start(with) else {
        return;
    };
    let (_, infected) = infected_messages().remove(0);
    let out = stack.postfix.send_as_from("ceo@partner.test", &infected);
    assert_eq!(out.last.code, 554, "{out:?}\n{}", stack.mw.log());
    assert!(out.last.text.contains("virus"), "{out:?}");

    stack.clamd.as_mut().unwrap().stop();
    let out = stack
        .postfix
        .send_as_from("ceo@partner.test", &clean_message("av-rule-down"));
    assert_eq!(out.last.code, 451, "{out:?}\n{}", stack.mw.log());
    assert!(
        stack
            .mw
            .wait_for_log("the antivirus verdict stands", 2, Duration::from_secs(5)),
        "{}",
        stack.mw.log()
    );
    stack.postfix.flush();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        stack.postfix.delivered().is_empty(),
        "nothing from the partner was delivered"
    );
}

/// Defect 3 of the hardening review: with `scan = "attachments"` an attachment was
/// missed when its base64 held junk characters, when the closing boundary never
/// came, or when the boundary parameter appeared twice. Each is refused now.
#[test]
fn attachments_a_client_would_show_are_scanned_however_malformed() {
    use common::scenario::{Components, Scenario};
    if !have_everything() {
        return;
    }
    let with = Components {
        knot: false,
        clamd: true,
    };
    let Some(stack) = Scenario::new("antivirus_attachments").start(with) else {
        return;
    };
    let encoded = b64(&eicar()).replace("\r\n", "");
    let junk: String = encoded.chars().flat_map(|c| [c, '!']).collect();
    let part = |body: &str| {
        format!(
            "Content-Type: application/octet-stream; name=\"tool.com\"\r\n\
             Content-Disposition: attachment; filename=\"tool.com\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{body}"
        )
    };
    let message = |id: &str, content_type: &str, body: &str, close: bool| {
        format!(
            "From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: {id}\r\n\
             Message-ID: <{id}@sender.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: {content_type}\r\n\r\n\
             --outer\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
             --outer\r\n{}\r\n{}",
            part(body),
            if close { "--outer--\r\n" } else { "" }
        )
        .into_bytes()
    };
    let one = "multipart/mixed; boundary=\"outer\"";
    let twice = "multipart/mixed; boundary=\"decoy\"; boundary=\"outer\"";
    for (case, m) in [
        ("junk", message("av-junk", one, &junk, true)),
        ("unclosed", message("av-unclosed", one, &encoded, false)),
        ("boundary-twice", message("av-twice", twice, &encoded, true)),
    ] {
        let out = stack.postfix.send(&m);
        assert_eq!(out.last.code, 554, "{case}: {out:?}\n{}", stack.mw.log());
        assert!(out.last.text.contains("virus"), "{case}: {out:?}");
    }
}
