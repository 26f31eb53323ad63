//! Memory per message is bounded (hardening review): a message with 100,000 MIME
//! parts or 5,000 header fields is turned away quickly, with a reply that says
//! why, and without the daemon growing (scenario `tests/scenarios/limits`).

mod common;

use std::time::{Duration, Instant};

use common::mailwarden::Mailwarden;
use common::scenario::Scenario;
use mailwarden::ListenAddr;
use mailwarden::mta::{MtaClient, Response};

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn start() -> (tempfile::TempDir, Mailwarden, ListenAddr) {
    let dir = common::shared_tempdir("mw-limits");
    let port = common::free_port();
    let config = Scenario::new("limits").config(&[("LISTEN", format!("inet:127.0.0.1:{port}"))]);
    let mw = Mailwarden::start_with_config(dir.path(), port, &config);
    let addr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    (dir, mw, addr)
}

fn reply_code(r: &Response) -> Option<u16> {
    match r {
        Response::ReplyCode(reply) => Some(reply.code()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_100k_mime_parts_is_turned_away_fast_and_small() {
    let (_dir, mw, addr) = start();
    let mut body = String::from("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    body.push_str(&"--b\r\n\r\nx\r\n".repeat(100_000));
    body.push_str("--b--\r\n");
    let before = rss_kb(mw.pid());
    let mut mta = MtaClient::open_session(&addr, "192.0.2.9".parse().unwrap(), "app.test")
        .await
        .unwrap();
    mta.mail("<a@app.test>", &[]).await.unwrap();
    mta.rcpt("<b@dest.test>").await.unwrap();
    mta.macros(b'T', &[("i", "PARTS1")]);
    mta.data().await.unwrap();
    mta.header("Content-Type", b" multipart/mixed; boundary=\"b\"")
        .await
        .unwrap();
    mta.eoh().await.unwrap();
    mta.body(body.as_bytes()).await.unwrap();
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(2), mta.eom())
        .await
        .expect("decided within 2 s")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        reply_code(&reply.decision),
        Some(452),
        "{reply:?} after {took:?}"
    );
    let grown = rss_kb(mw.pid()).saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} kB");
    assert!(
        mw.wait_for_log("over server.max_mime_parts", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_5000_header_fields_is_refused_with_a_clear_reply() {
    let (_dir, mw, addr) = start();
    let mut mta = MtaClient::open_session(&addr, "192.0.2.9".parse().unwrap(), "app.test")
        .await
        .unwrap();
    mta.mail("<a@app.test>", &[]).await.unwrap();
    mta.rcpt("<b@dest.test>").await.unwrap();
    mta.data().await.unwrap();
    for i in 0..5000 {
        mta.header("X-Filler", format!(" {i}").as_bytes())
            .await
            .unwrap();
    }
    mta.eoh().await.unwrap();
    mta.body(b"hi\r\n").await.unwrap();
    let reply = mta.eom().await.unwrap();
    match &reply.decision {
        Response::ReplyCode(r) => {
            assert_eq!(r.code(), 552, "{r}");
            assert!(
                r.to_string()
                    .contains("too many or too large header fields"),
                "{r}"
            );
        }
        other => panic!("{other:?}\n{}", mw.log()),
    }
}
