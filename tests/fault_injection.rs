//! Fault injection through a real Postfix with fail-closed antivirus: a clamd that
//! hangs, answers garbage or resets the connection, SIGHUP storms that alternate a
//! broken and a good config, SMTP clients that vanish mid-message, SIGTERM while
//! mail flows (DNS faults are in `auth_scan.rs`). For every
//! message the test counts what Postfix did with it (delivered, 4xx, 5xx) and
//! asserts that none was lost and none was delivered unscanned
//! (scenario `tests/scenarios/fault_injection`).

mod common;

use std::time::Duration;

use common::clamd::{Clamd, Fault, SilentClamd, eicar};
use common::mailwarden::Mailwarden;
use common::postfix::Postfix;
use common::scenario::Scenario;
use common::{require, shared_tempdir};

fn have_everything() -> bool {
    require("postfix", "postfix")
        && require("smtp-sink", "postfix")
        && require("clamd", "clamav-daemon")
}

fn message(id: &str, infected: bool) -> Vec<u8> {
    use base64::Engine as _;
    let mut m = format!(
        "From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: {id}\r\n\
         Message-ID: <{id}@sender.test>\r\nMIME-Version: 1.0\r\n"
    );
    if infected {
        let data = base64::engine::general_purpose::STANDARD.encode(eicar());
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\r\nhi\r\n--b\r\n\
             Content-Type: application/octet-stream; name=\"x.com\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{data}\r\n--b--\r\n"
        ));
    } else {
        m.push_str("\r\nJust text.\r\n");
    }
    m.into_bytes()
}

/// What happened to the messages sent: (id, infected, SMTP code at end of DATA).
struct Tally(Vec<(String, bool, u16)>);

impl Tally {
    fn send(&mut self, postfix: &Postfix, id: &str, infected: bool) {
        let out = postfix.send(&message(id, infected));
        self.0.push((id.to_owned(), infected, out.last.code));
    }

    /// Every message has an answer; accepted ones reached the sink, and no
    /// infected one did. Returns (delivered, 4xx, 5xx).
    fn check(&self, postfix: &Postfix) -> (usize, usize, usize) {
        postfix.flush();
        let mut counts = (0, 0, 0);
        for (id, infected, code) in &self.0 {
            match code {
                250 => {
                    assert!(!infected, "{id}: an infected message was accepted");
                    postfix.wait_delivered(&format!("<{id}@sender.test>"));
                    counts.0 += 1;
                }
                400..=499 => counts.1 += 1,
                500..=599 => counts.2 += 1,
                other => panic!("{id}: no answer, or an odd one ({other}): lost?"),
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        let delivered = postfix.delivered();
        for (id, infected, code) in &self.0 {
            let seen = delivered
                .iter()
                .any(|d| d.headers().contains(&format!("<{id}@sender.test>")));
            assert_eq!(seen, *code == 250, "{id} ({code}) delivered: {seen}");
            assert!(!(seen && *infected), "{id}: delivered unscanned");
        }
        counts
    }
}

fn stack(dir: &std::path::Path, clamd: &str) -> (Mailwarden, Postfix) {
    let port = common::free_port();
    let config = Scenario::new("fault_injection").config(&[
        ("LISTEN", format!("inet:127.0.0.1:{port}")),
        ("CLAMD", clamd.to_owned()),
    ]);
    let mw = Mailwarden::start_with_config(dir, port, &config);
    let postfix = Postfix::start(dir, &mw.addr(), "tempfail");
    (mw, postfix)
}

/// A temp dir with a real clamd, mailwarden and Postfix; `None` (outside CI) when
/// one of them is not installed.
fn with_clamd(prefix: &str) -> Option<(tempfile::TempDir, Clamd, Mailwarden, Postfix)> {
    if !have_everything() {
        return None;
    }
    let dir = shared_tempdir(prefix);
    let clamd = Clamd::start(dir.path(), "30M");
    let (mw, postfix) = stack(dir.path(), &clamd.tcp());
    Some((dir, clamd, mw, postfix))
}

#[test]
fn a_broken_clamd_tempfails_everything_and_delivers_nothing_unscanned() {
    if !have_everything() {
        return;
    }
    for fault in [Fault::Silent, Fault::Garbage, Fault::Reset] {
        let dir = shared_tempdir("mw-fault-clamd");
        let broken = SilentClamd::with(fault);
        let (mw, postfix) = stack(dir.path(), &format!("tcp:127.0.0.1:{}", broken.port));
        let mut tally = Tally(Vec::new());
        for i in 0..4 {
            tally.send(&postfix, &format!("fault-{fault:?}-{i}"), i % 2 == 0);
        }
        let (delivered, temp, perm) = tally.check(&postfix);
        assert_eq!(
            (delivered, temp, perm),
            (0, 4, 0),
            "{fault:?}: every message tempfailed\n{}",
            mw.log()
        );
    }
}

#[test]
fn sighup_storms_with_a_broken_config_lose_nothing() {
    let Some((_dir, _clamd, mw, postfix)) = with_clamd("mw-fault-hup") else {
        return;
    };
    let good = std::fs::read_to_string(&mw.config_path).unwrap();
    let broken = good.replace("on_error = \"tempfail\"", "on_error = \"maybe\"");
    let mut tally = Tally(Vec::new());
    for i in 0..12 {
        let text = if i % 2 == 0 { &broken } else { &good };
        std::fs::write(&mw.config_path, text).unwrap();
        mw.signal("HUP");
        tally.send(&postfix, &format!("hup-{i}"), i % 3 == 0);
    }
    std::fs::write(&mw.config_path, &good).unwrap();
    let (delivered, temp, perm) = tally.check(&postfix);
    assert_eq!(temp, 0, "{}", mw.log());
    assert_eq!((delivered, perm), (8, 4), "clean delivered, EICAR refused");
    assert!(mw.log().contains("reload refused"), "{}", mw.log());
}

#[test]
fn smtp_clients_vanishing_mid_message_lose_nothing_else() {
    let Some((_dir, _clamd, mw, postfix)) = with_clamd("mw-fault-vanish") else {
        return;
    };
    let mut tally = Tally(Vec::new());
    for i in 0..5 {
        // A client that starts DATA, sends half a message and hangs up.
        use std::io::{BufRead, BufReader, Write};
        let s = std::net::TcpStream::connect(("127.0.0.1", postfix.smtp_port)).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        for cmd in [
            "EHLO vanish.test",
            "MAIL FROM:<v@sender.test>",
            "RCPT TO:<bob@dest.test>",
            "DATA",
        ] {
            writeln!(w, "{cmd}\r").unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.len() < 4 || line.as_bytes()[3] == b' ' {
                    break;
                }
            }
        }
        w.write_all(b"Subject: gone\r\nMessage-ID: <vanished@sender.test>\r\n\r\nhalf")
            .unwrap();
        drop(w);
        drop(r);
        tally.send(&postfix, &format!("after-vanish-{i}"), i == 2);
    }
    let (delivered, temp, perm) = tally.check(&postfix);
    assert_eq!((delivered, temp, perm), (4, 0, 1), "{}", mw.log());
    assert!(
        !postfix
            .delivered()
            .iter()
            .any(|d| d.headers().contains("<vanished@sender.test>")),
        "half a message was delivered"
    );
}

#[test]
fn sigterm_under_load_loses_nothing() {
    let Some((_dir, _clamd, mut mw, postfix)) = with_clamd("mw-fault-term") else {
        return;
    };
    let postfix = std::sync::Arc::new(postfix);
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let postfix = postfix.clone();
            std::thread::spawn(move || {
                let mut tally = Tally(Vec::new());
                for i in 0..6 {
                    tally.send(&postfix, &format!("term-{t}-{i}"), i == 3);
                    std::thread::sleep(Duration::from_millis(100));
                }
                tally
            })
        })
        .collect();
    // SIGTERM once mail is flowing.
    common::wait_for(Duration::from_secs(10), || {
        postfix.flush();
        (postfix.delivered().len() >= 2).then_some(())
    });
    mw.signal("TERM");
    let mut all = Tally(Vec::new());
    for s in senders {
        all.0.extend(s.join().unwrap().0);
    }
    let (delivered, temp, perm) = all.check(&postfix);
    assert_eq!(delivered + temp + perm, 24);
    assert!(delivered >= 2, "{delivered} delivered");
    assert!(mw.stop().is_some(), "the daemon exited after the drain");
}
