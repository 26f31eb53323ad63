//! Fleet mode against real redis-server processes started here: three mailwarden
//! daemons share one rate limit through one Redis, and through a Redis Cluster
//! of three masters; Redis stopped in the middle of the load, then started
//! again; Redis answering slowly (DEBUG SLEEP).

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::mailwarden::Mailwarden;
use common::redis::Redis;
use common::{free_port, require, shared_tempdir};
use mailwarden::ListenAddr;
use mailwarden::mta::{MtaClient, Response};

/// What one message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Got {
    Accepted,
    Rejected,
    Tempfailed,
}

fn config(port: u16, cluster: &str, on_error: &str, timeout: &str) -> String {
    format!(
        "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
         [dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"100ms\"\nattempts = 1\n\n\
         [inbound]\nauthserv_id = \"mx.fleet.test\"\n\n\
         [cluster]\n{cluster}\ntimeout = \"{timeout}\"\n\
         on_redis_error = {{ rate_limits = \"{on_error}\" }}\n\n\
         [[rate_limits]]\nname = \"per-sender\"\nkey = \"sender\"\nrate = \"100/minute\"\n\n\
         [[rules]]\nname = \"limit\"\nwhen = {{ rate_limit = \"per-sender\" }}\n\
         then = {{ action = \"reject\", text = \"5.7.1 too many\" }}\n"
    )
}

fn daemons(dir: &std::path::Path, n: usize, cluster: &str, on_error: &str) -> Vec<Mailwarden> {
    (0..n)
        .map(|i| {
            let sub = dir.join(format!("mw{i}"));
            std::fs::create_dir_all(&sub).unwrap();
            let port = free_port();
            Mailwarden::start_with_config(&sub, port, &config(port, cluster, on_error, "500ms"))
        })
        .collect()
}

/// Sends `n` messages from `sender` to the daemon at `addr` (a trusted client,
/// so no DNS is asked), one at a time, and says what each got.
fn send(addr: &str, sender: &str, n: usize) -> Vec<Got> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr: ListenAddr = addr.parse().unwrap();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..n {
            let mut mta = MtaClient::open_session(&addr, ip, "app.fleet.test")
                .await
                .expect("milter session")
                .with_reply_timeout(Duration::from_secs(30));
            mta.mail(&format!("<{sender}>"), &[]).await.expect("mail");
            mta.rcpt("<bob@dest.test>").await.expect("rcpt");
            mta.data().await.expect("data");
            mta.header("From", format!(" {sender}").as_bytes())
                .await
                .expect("header");
            mta.header("Subject", format!(" {i}").as_bytes())
                .await
                .expect("header");
            mta.eoh().await.expect("eoh");
            mta.body(b"hello\r\n").await.expect("body");
            let reply = mta.eom().await.expect("eom");
            mta.abort();
            out.push(match reply.decision {
                Response::Continue | Response::Accept => Got::Accepted,
                Response::Reject => Got::Rejected,
                Response::Tempfail => Got::Tempfailed,
                Response::ReplyCode(r) if r.code() >= 500 => Got::Rejected,
                Response::ReplyCode(_) => Got::Tempfailed,
                other => panic!("unexpected reply {other:?}"),
            });
        }
        out
    })
}

/// All three daemons at once, `per` messages each from one sender.
fn flood(mws: &[Mailwarden], sender: &str, per: usize) -> Vec<Got> {
    let addrs: Vec<String> = mws.iter().map(|m| m.addr()).collect();
    let handles: Vec<_> = addrs
        .into_iter()
        .map(|a| {
            let sender = sender.to_owned();
            std::thread::spawn(move || send(&a, &sender, per))
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn count(got: &[Got], what: Got) -> usize {
    got.iter().filter(|g| **g == what).count()
}

fn redis_present() -> bool {
    require("redis-server", "redis-server") && require("redis-cli", "redis-tools")
}

#[test]
fn three_daemons_share_one_limit_through_one_redis() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-one");
    let redis = Redis::start(dir.path());
    let mws = daemons(
        dir.path(),
        3,
        &format!("redis = \"{}\"", redis.url()),
        "tempfail",
    );
    let got = flood(&mws, "flood@fleet.test", 60);
    let accepted = count(&got, Got::Accepted);
    assert_eq!(count(&got, Got::Tempfailed), 0, "{}", mws[0].log());
    assert!(
        (99..=101).contains(&accepted),
        "{accepted} of 180 accepted across three daemons for a 100/minute limit"
    );
    assert_eq!(count(&got, Got::Rejected), 180 - accepted);
    // The limit is per sender: another one starts afresh.
    let other = flood(&mws, "other@fleet.test", 5);
    assert_eq!(count(&other, Got::Accepted), 15);
}

#[test]
fn three_daemons_share_one_limit_through_a_redis_cluster() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-cluster");
    let nodes = Redis::start_cluster(dir.path(), 3);
    let list: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", n.url())).collect();
    let mws = daemons(
        dir.path(),
        3,
        &format!("nodes = [{}]", list.join(", ")),
        "tempfail",
    );
    let got = flood(&mws, "flood@fleet.test", 60);
    let accepted = count(&got, Got::Accepted);
    assert_eq!(count(&got, Got::Tempfailed), 0, "{}", mws[0].log());
    assert!((99..=101).contains(&accepted), "{accepted} accepted");
    // Several senders spread over the cluster's slots, each limited exactly.
    for n in 0..4 {
        let got = flood(&mws, &format!("s{n}@fleet.test"), 40);
        let accepted = count(&got, Got::Accepted);
        assert!((99..=101).contains(&accepted), "s{n}: {accepted} accepted");
    }
}

/// Redis stopped while mail flows, then started again: each on_redis_error mode
/// does what it says, and counting in Redis resumes within 5 s of its return.
#[test]
fn redis_away_then_back_in_each_mode() {
    if !redis_present() {
        return;
    }
    for (mode, expect) in [
        ("tempfail", Got::Tempfailed),
        ("accept", Got::Accepted),
        ("local", Got::Accepted),
    ] {
        let dir = shared_tempdir(&format!("mw-fleet-away-{mode}"));
        let mut redis = Redis::start(dir.path());
        let mws = daemons(dir.path(), 1, &format!("redis = \"{}\"", redis.url()), mode);
        let addr = mws[0].addr();
        let before = send(&addr, "a@fleet.test", 3);
        assert_eq!(count(&before, Got::Accepted), 3, "{mode}");
        redis.stop();
        let away = send(&addr, "a@fleet.test", 3);
        assert!(
            away.iter().all(|g| *g == expect),
            "{mode}: {away:?}\n{}",
            mws[0].log()
        );
        assert!(
            mws[0]
                .log()
                .contains(&format!("cluster.on_redis_error.rate_limits = {mode}")),
            "{mode}: the decision line says which action was taken"
        );
        redis.restart();
        let back = Instant::now();
        let resumed = common::wait_for(Duration::from_secs(5), || {
            let got = send(&addr, "b@fleet.test", 1);
            (got == [Got::Accepted] && redis.cli(&["KEYS", "*"]).contains("b@fleet.test"))
                .then_some(())
        });
        assert!(
            resumed.is_some(),
            "{mode}: not counting in Redis 5 s after it returned"
        );
        assert!(back.elapsed() < Duration::from_secs(5));
    }
}

/// Redis answering slowly: messages get the configured action after the
/// time-out, not after Redis's delay.
#[test]
fn a_slow_redis_costs_at_most_the_timeout() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-slow");
    let redis = Redis::start(dir.path());
    let port = free_port();
    let mw = Mailwarden::start_with_config(
        dir.path(),
        port,
        &config(
            port,
            &format!("redis = \"{}\"", redis.url()),
            "tempfail",
            "50ms",
        ),
    );
    assert_eq!(send(&mw.addr(), "a@fleet.test", 2), [Got::Accepted; 2]);
    let port = redis.port;
    let sleeper = std::thread::spawn(move || {
        let _ = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "DEBUG", "SLEEP", "3"])
            .output();
    });
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    let got = send(&mw.addr(), "a@fleet.test", 3);
    let took = start.elapsed();
    sleeper.join().unwrap();
    assert_eq!(got, [Got::Tempfailed; 3], "{}", mw.log());
    assert!(
        took < Duration::from_secs(2),
        "3 messages took {took:?} against a 3 s sleep"
    );
}

/// The password comes from `password_file`, which the secret rules apply to:
/// Redis that wants it counts, and a world-readable file is refused.
#[test]
fn a_password_file_is_used_and_must_be_private() {
    if !redis_present() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = shared_tempdir("mw-fleet-password");
    let redis = Redis::start_with_password(dir.path(), "fleet-secret-0123");
    let secret = dir.path().join("redis.pass");
    std::fs::write(&secret, "fleet-secret-0123\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let cluster = format!(
        "redis = \"{}\"\npassword_file = \"{}\"",
        redis.url(),
        secret.display()
    );
    let text = config(port, &cluster, "tempfail", "500ms");
    let mw = Mailwarden::start_with_config(dir.path(), port, &text);
    assert_eq!(
        send(&mw.addr(), "p@fleet.test", 2),
        [Got::Accepted; 2],
        "{}",
        mw.log()
    );
    assert!(redis.cli(&["KEYS", "*"]).contains("p@fleet.test"));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = dir.path().join("world-readable.toml");
    std::fs::write(&file, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["check-config", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("redis.pass"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A reload that keeps the limits keeps their counts, in memory as in Redis: a
/// SIGHUP is not a way to refill a sender's limit.
#[test]
fn a_reload_keeps_the_counts() {
    let dir = shared_tempdir("mw-fleet-reload");
    let port = free_port();
    let text = format!(
        "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
         [[rate_limits]]\nname = \"per-sender\"\nkey = \"sender\"\nrate = \"3/minute\"\n\n\
         [[rules]]\nname = \"limit\"\nwhen = {{ rate_limit = \"per-sender\" }}\n\
         then = {{ action = \"reject\", text = \"5.7.1 too many\" }}\n"
    );
    let mw = Mailwarden::start_with_config(dir.path(), port, &text);
    assert_eq!(send(&mw.addr(), "r@fleet.test", 3), [Got::Accepted; 3]);
    // A change elsewhere in the file, then SIGHUP.
    std::fs::write(
        &mw.config_path,
        format!("{text}\n[log]\nlevel = \"info\"\n"),
    )
    .unwrap();
    mw.signal("HUP");
    assert!(mw.wait_for_log("configuration reloaded", 1, Duration::from_secs(10)));
    assert_eq!(
        send(&mw.addr(), "r@fleet.test", 1),
        [Got::Rejected],
        "{}",
        mw.log()
    );
}
