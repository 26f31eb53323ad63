//! With `[log] format = "json"` every log line is one JSON object, and the decision
//! line carries the fields a SIEM keys on (scenario `tests/scenarios/json_log`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::mailwarden::Mailwarden;
use common::scenario::Scenario;
use mailwarden::ListenAddr;
use mailwarden::mta::MtaClient;

#[tokio::test]
async fn decision_log_line_is_json_with_the_message_facts() {
    let dir = common::shared_tempdir("mw-json");
    let port = common::free_port();
    let config = Scenario::new("json_log").config(&[("LISTEN", format!("inet:127.0.0.1:{port}"))]);
    let mw = Mailwarden::start_with_config(dir.path(), port, &config);
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], mw.port)));
    let ip = "192.0.2.9".parse().unwrap();
    let mut mta = MtaClient::open_session(&addr, ip, "helo.client.test")
        .await
        .unwrap();
    mta.mail("<a@sender.test>", &[]).await.unwrap();
    mta.rcpt("<b@dest.test>").await.unwrap();
    mta.rcpt("<c@dest.test>").await.unwrap();
    mta.macros(b'T', &[("i", "JSON1")]);
    mta.data().await.unwrap();
    mta.header("Subject", b" hi").await.unwrap();
    mta.eoh().await.unwrap();
    mta.body(b"hi\r\n").await.unwrap();
    mta.eom().await.unwrap();
    mta.quit().await.unwrap();

    assert!(
        mw.wait_for_log("JSON1", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
    let mut decision = None;
    for line in mw.log().lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if value["message"] == "message decided" {
            decision = Some(value);
        }
    }
    let d = decision.expect("a decision line");
    assert_eq!(d["queue_id"], "JSON1");
    assert_eq!(d["client_ip"], "192.0.2.9");
    assert_eq!(d["helo"], "helo.client.test");
    assert_eq!(d["from"], "a@sender.test");
    assert_eq!(d["rcpt"], "b@dest.test,c@dest.test");
    assert_eq!(d["verdict"], "accept");
    // The whole message: "Subject: hi\r\n", the blank line, the 4-byte body.
    assert_eq!(d["size"], 19, "{d}");
    // The audit fields, each on its own.
    assert_eq!(d["action"], "accept");
    // auth is an object, one member per check.
    assert!(d["auth"]["spf"].is_string(), "{d}");
    assert!(
        d["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{d}"
    );
    assert_eq!(d["scan"], "-");
    // A rule that matched without deciding is under matched, not rule.
    assert_eq!(d["rule"], "-");
    assert_eq!(d["matched"], "tag-all");
    assert_eq!(d["level"], "INFO");
    // Integer milliseconds (and microseconds for the fast ones).
    assert!(d["duration_ms"].as_u64().is_some(), "{d}");
    assert!(d["duration_us"].as_u64().is_some(), "{d}");
}
