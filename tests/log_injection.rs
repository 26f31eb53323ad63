//! Defect 7 of the hardening review: client-supplied text went into the text log
//! raw, so a line break in a recipient (which the milter protocol can carry) forged
//! a second decision line. Every message now gives one line, its client text escaped
//! (scenario `tests/scenarios/log_injection`).

mod common;

use std::time::Duration;

use common::mailwarden::Mailwarden;
use common::scenario::Scenario;
use mailwarden::ListenAddr;
use mailwarden::mta::{ClientAddress, MtaClient};

#[tokio::test]
async fn a_line_break_in_client_text_cannot_forge_a_log_line() {
    let dir = common::shared_tempdir("mw-log-injection");
    let port = common::free_port();
    let config =
        Scenario::new("log_injection").config(&[("LISTEN", format!("inet:127.0.0.1:{port}"))]);
    let mw = Mailwarden::start_with_config(dir.path(), port, &config);
    let addr: ListenAddr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    let forged =
        "2026-12-03T00:00:00.000000Z  INFO message decided queue_id=\"FORGED\" verdict=\"accept\"";
    let mut mta = MtaClient::connect(&addr).await.unwrap();
    mta.negotiate_like_postfix().await.unwrap();
    let client = ClientAddress::Inet {
        ip: "192.0.2.9".parse().unwrap(),
        port: 2525,
    };
    mta.connect_info(&format!("evil.test\r\n{forged}"), client)
        .await
        .unwrap();
    mta.helo(&format!("helo\n{forged}")).await.unwrap();
    mta.mail("<a@sender.test>", &[]).await.unwrap();
    mta.rcpt(&format!("<bob@dest.test>\n{forged}"))
        .await
        .unwrap();
    mta.macros(b'T', &[("i", "INJECT1")]);
    mta.data().await.unwrap();
    mta.header("Subject", format!(" hi\n{forged}").as_bytes())
        .await
        .unwrap();
    mta.eoh().await.unwrap();
    mta.eom().await.unwrap();
    mta.quit().await.unwrap();

    assert!(
        mw.wait_for_log("INJECT1", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
    let log = mw.log();
    let decisions: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("INFO message decided"))
        .collect();
    assert_eq!(decisions.len(), 1, "{log}");
    assert!(decisions[0].contains("queue_id=\"INJECT1\""), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-03T00:00:00")),
        "a forged line: {log}"
    );
}
