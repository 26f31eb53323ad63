//! SIGHUP reloads the configuration without dropping anything: a broken file is
//! refused (the log says why, file and key) and mail keeps flowing on the old
//! configuration; a good file takes effect for the next message.

mod common;

use std::time::Duration;

use common::mailwarden::Mailwarden;
use common::{fixture, postfix_stack};

#[test]
fn broken_reload_keeps_serving_and_good_reload_applies() {
    let Some((_dir, mw, postfix)) = postfix_stack("mw-reload", "") else {
        return;
    };
    let plain = std::fs::read(fixture("postfix_pass/plain.eml")).unwrap();
    let send = |id: &str| {
        let message = String::from_utf8_lossy(&plain).replace("pass-1@", &format!("{id}@"));
        let outcome = postfix.send(message.as_bytes());
        assert!(outcome.accepted(), "{id}: {outcome:?}\n{}", mw.log());
        postfix.wait_delivered(&format!("<{id}@sender.test>"))
    };

    assert!(send("before").header("X-Mailwarden").is_some());

    std::fs::write(
        &mw.config_path,
        "[server]\nlisten = [\"inet:127.0.0.1:1\"]\nmax_sesions = 5\n",
    )
    .unwrap();
    mw.signal("HUP");
    assert!(
        mw.wait_for_log("reload refused", 1, Duration::from_secs(10)),
        "{}",
        mw.log()
    );
    let log = mw.log();
    let refusal = log.lines().find(|l| l.contains("reload refused")).unwrap();
    assert!(
        refusal.contains("mailwarden.toml:3:1") && refusal.contains("max_sesions"),
        "{refusal}"
    );
    assert!(
        send("after-broken").header("X-Mailwarden").is_some(),
        "old configuration still serves"
    );

    let good = Mailwarden::config(mw.port, "trace_header = false", "");
    std::fs::write(&mw.config_path, good).unwrap();
    mw.signal("HUP");
    assert!(
        mw.wait_for_log("configuration reloaded", 1, Duration::from_secs(10)),
        "{}",
        mw.log()
    );
    let after = send("after-good");
    assert_eq!(
        after.header("X-Mailwarden"),
        None,
        "trace_header = false took effect"
    );
    assert!(
        mw.wait_for_log("message decided", 3, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
}
