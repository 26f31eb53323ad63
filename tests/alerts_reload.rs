//! `[alerts]` is reloaded like every other section: a lower threshold written to
//! the config and announced with SIGHUP applies to the next messages, without a
//! restart (scenario `tests/scenarios/alerts_reload`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::free_port;
use common::mailwarden::Mailwarden;
use common::scenario::Scenario;
use mailwarden::ListenAddr;
use mailwarden::mta::MtaClient;

/// Eight messages from one client and sender domain, each with its own queue id.
async fn burst(addr: &ListenAddr, tag: &str) {
    let ip = "192.0.2.60".parse().unwrap();
    let mut mta = MtaClient::open_session(addr, ip, "app.customer.test")
        .await
        .unwrap();
    for i in 0..8 {
        mta.mail("<app@burst.test>", &[]).await.unwrap();
        mta.rcpt("<bob@dest.test>").await.unwrap();
        mta.macros(b'T', &[("i", &format!("{tag}{i}"))]);
        mta.data().await.unwrap();
        mta.header("Subject", b" offer").await.unwrap();
        mta.eoh().await.unwrap();
        mta.body(b"buy now\r\n").await.unwrap();
        mta.eom().await.unwrap();
        mta.abort();
    }
    mta.quit().await.unwrap();
}

#[tokio::test]
async fn a_lower_alert_threshold_applies_after_sighup() {
    let scenario = Scenario::new("alerts_reload");
    let dir = common::shared_tempdir("mw-alerts-reload");
    let port = free_port();
    let vars = [("LISTEN", format!("inet:127.0.0.1:{port}"))];
    let mw = Mailwarden::start_with_config(dir.path(), port, &scenario.config(&vars));
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], port)));

    burst(&addr, "BEFORE").await;
    assert!(
        mw.wait_for_log("BEFORE7", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
    assert!(
        !mw.log().contains("anomaly"),
        "eight messages are under min_messages = 1000:\n{}",
        mw.log()
    );

    let reloaded = scenario.config_file("mailwarden-reloaded.toml", &vars);
    std::fs::write(&mw.config_path, reloaded).unwrap();
    mw.signal("HUP");
    assert!(
        mw.wait_for_log("configuration reloaded", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
    assert!(
        !mw.log().contains("only after a restart"),
        "[alerts] needs no restart:\n{}",
        mw.log()
    );

    burst(&addr, "AFTER").await;
    assert!(
        mw.wait_for_log("anomaly", 1, Duration::from_secs(5)),
        "the burst after the reload passes min_messages = 5:\n{}",
        mw.log()
    );
}
