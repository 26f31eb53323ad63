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
    fleet_of(dir, n, |port, _| config(port, cluster, on_error, "500ms"))
}

/// `n` daemons, each in its own folder `dir/mwI` on its own port, with the
/// config `config(port, folder)`.
fn fleet_of(
    dir: &std::path::Path,
    n: usize,
    config: impl Fn(u16, &std::path::Path) -> String,
) -> Vec<Mailwarden> {
    (0..n)
        .map(|i| {
            let sub = dir.join(format!("mw{i}"));
            std::fs::create_dir_all(&sub).unwrap();
            let port = free_port();
            Mailwarden::start_with_config(&sub, port, &config(port, &sub))
        })
        .collect()
}

/// Sends `n` messages from `sender` to the daemon at `addr` (a trusted client,
/// so no DNS is asked), one at a time, and says what each got.
fn send(addr: &str, sender: &str, n: usize) -> Vec<Got> {
    send_as(addr, "127.0.0.1", sender, None, n)
}

/// The same from client `ip` (outside trusted_networks: inbound, verified).
fn send_from(addr: &str, ip: &str, sender: &str, n: usize) -> Vec<Got> {
    send_as(addr, ip, sender, None, n)
}

/// From client `ip`, SMTP-authenticated as `auth_user` when given.
fn send_as(addr: &str, ip: &str, sender: &str, auth_user: Option<&str>, n: usize) -> Vec<Got> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr: ListenAddr = addr.parse().unwrap();
    let ip: IpAddr = ip.parse().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..n {
            let mut mta = MtaClient::open_session(&addr, ip, "app.fleet.test")
                .await
                .expect("milter session")
                .with_reply_timeout(Duration::from_secs(30));
            if let Some(user) = auth_user {
                mta.macros(b'M', &[("auth_authen", user), ("auth_type", "PLAIN")]);
            }
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

/// Messages decided at the same time by one daemon share script calls: the
/// counts stay exact and each message gets its own windows' answer (a sender
/// under its limit is never refused for one over it in the same batch).
#[test]
fn concurrent_messages_share_script_calls_and_keep_their_own_answers() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-batch");
    let redis = Redis::start(dir.path());
    let mws = daemons(
        dir.path(),
        1,
        &format!("redis = \"{}\"", redis.url()),
        "tempfail",
    );
    let addr = mws[0].addr();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            let (sender, n) = if i % 2 == 0 {
                ("busy@fleet.test", 60)
            } else {
                ("quiet@fleet.test", 10)
            };
            std::thread::spawn(move || (sender, send(&addr, sender, n)))
        })
        .collect();
    let mut busy = Vec::new();
    let mut quiet = Vec::new();
    for h in handles {
        let (sender, got) = h.join().unwrap();
        if sender.starts_with("busy") {
            busy.extend(got);
        } else {
            quiet.extend(got);
        }
    }
    assert_eq!(
        count(&busy, Got::Tempfailed) + count(&quiet, Got::Tempfailed),
        0,
        "{}",
        mws[0].log()
    );
    assert_eq!(
        count(&busy, Got::Accepted),
        100,
        "a 100/minute limit, 240 messages"
    );
    assert_eq!(
        count(&quiet, Got::Accepted),
        40,
        "40 messages under the limit"
    );
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls: usize = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no EVALSHA in {stats}"));
    assert!(
        calls < 280,
        "{calls} script calls for 280 messages: none shared"
    );
}

/// A window's count falls by what expires from it, entries that counted several
/// messages of one script call included, while the rest of the window stays
/// counted: with 5/second, 3 messages, then a burst 0.3 s later (2 of it
/// admitted, the window is full), then a burst just after the first 3 expired
/// (3 admitted: the burst's 2 are still in the window).
#[test]
fn a_window_frees_what_expires_from_it() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-expiry");
    let redis = Redis::start(dir.path());
    let mws = fleet_of(dir.path(), 1, |port, _| {
        config(
            port,
            &format!("redis = \"{}\"", redis.url()),
            "tempfail",
            "500ms",
        )
        .replace("100/minute", "5/second")
    });
    let addr = mws[0].addr();
    // `each` messages from `sender` on each of `connections` connections at
    // once (so script calls carry several): how many got in.
    let burst = |sender: &str, connections: usize, each: usize| -> usize {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                let (addr, sender) = (addr.clone(), sender.to_owned());
                std::thread::spawn(move || send(&addr, &sender, each))
            })
            .collect();
        let got: Vec<Got> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(count(&got, Got::Tempfailed), 0, "{}", mws[0].log());
        count(&got, Got::Accepted)
    };
    let until = |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
    // Each attempt has its own sender; one whose steps ran too slowly to say
    // which messages were in the window is tried again.
    for attempt in 0..3 {
        let sender = format!("expiry{attempt}@fleet.test");
        let first = Instant::now();
        assert_eq!(burst(&sender, 3, 1), 3);
        let first_done = Instant::now();
        until(first_done + Duration::from_millis(300));
        let second = Instant::now();
        let admitted = burst(&sender, 6, 3);
        let second_done = Instant::now();
        until(first_done + Duration::from_millis(1050));
        let third = burst(&sender, 6, 3);
        let third_done = Instant::now();
        if second_done > first + Duration::from_millis(950)
            || third_done > second + Duration::from_millis(950)
        {
            continue;
        }
        assert_eq!(admitted, 2, "a burst with 3 of 5 in the window");
        assert_eq!(
            third, 3,
            "a burst after those 3 expired, 2 still in the window"
        );
        return;
    }
    panic!("three attempts too slow to tell what was in the window");
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
    // The time-outs count as Redis not answering (health, metrics, one warning),
    // whichever ends first: the call's own time-out or the message's wait.
    assert!(
        mw.log().contains("WARN Redis does not answer ("),
        "{}",
        mw.log()
    );
}

/// `rediss://`: a Redis that speaks TLS only, its certificate from a private
/// CA. With `ca_file` naming that CA the limit is counted there; without it the
/// certificate is not trusted, nothing is counted in Redis, and the fallback
/// (tempfail here) applies.
#[test]
fn rediss_with_a_private_ca() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-tls");
    let d = dir.path();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fleet test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "redis.fleet.test");
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(d.join("redis.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("redis.key"), key.serialize_pem()).unwrap();
    let redis = Redis::start_tls(
        d,
        &d.join("redis.pem"),
        &d.join("redis.key"),
        &d.join("ca.pem"),
    );
    let url = format!("rediss://127.0.0.1:{}/", redis.port);
    let tls_config = |port: u16, ca: &str| {
        config(
            port,
            &format!("redis = \"{url}\"\n{ca}"),
            "tempfail",
            "500ms",
        )
        .replace("100/minute", "3/minute")
    };
    let trusting = fleet_of(d, 1, |port, _| {
        tls_config(
            port,
            &format!("ca_file = \"{}\"", d.join("ca.pem").display()),
        )
    });
    assert_eq!(
        send(&trusting[0].addr(), "t@fleet.test", 4),
        [Got::Accepted, Got::Accepted, Got::Accepted, Got::Rejected],
        "{}",
        trusting[0].log()
    );
    assert_eq!(redis.cli(&["KEYS", "mailwarden:rate:*"]).lines().count(), 1);
    let untrusting = fleet_of(&d.join("untrusting"), 1, |port, _| tls_config(port, ""));
    assert_eq!(
        send(&untrusting[0].addr(), "u@fleet.test", 1),
        [Got::Tempfailed],
        "{}",
        untrusting[0].log()
    );
    assert!(
        untrusting[0].wait_for_log(
            "rate limits not counted in Redis",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        untrusting[0].log()
    );
}

/// While Redis sleeps, a message no limit counts (here: not authenticated,
/// the only limit is per account) does not wait behind the ones that do: the
/// shared multiplexed connection holds up no one but its own callers.
#[test]
fn a_slow_redis_holds_up_only_the_messages_it_counts() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-slow-others");
    let redis = Redis::start(dir.path());
    let port = free_port();
    let config = format!(
        "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
         [dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"100ms\"\nattempts = 1\n\n\
         [cluster]\nredis = \"{}\"\ntimeout = \"2s\"\n\
         on_redis_error = {{ rate_limits = \"tempfail\" }}\n\n\
         [[rate_limits]]\nname = \"per-account\"\nkey = \"auth_user\"\nrate = \"100/minute\"\n\n\
         [[rules]]\nname = \"limit\"\nwhen = {{ rate_limit = \"per-account\" }}\n\
         then = {{ action = \"reject\", text = \"5.7.1 too many\" }}\n",
        redis.url()
    );
    let mw = Mailwarden::start_with_config(dir.path(), port, &config);
    let addr = mw.addr();
    assert_eq!(
        send_as(&addr, "127.0.0.1", "app@fleet.test", Some("app"), 1),
        [Got::Accepted]
    );
    let redis_port = redis.port;
    let sleeper = std::thread::spawn(move || {
        let _ = std::process::Command::new("redis-cli")
            .args(["-p", &redis_port.to_string(), "DEBUG", "SLEEP", "4"])
            .output();
    });
    std::thread::sleep(Duration::from_millis(200));
    // Two counted messages wait the 2 s time-out, then get the tempfail.
    let counted: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                send_as(&addr, "127.0.0.1", "app@fleet.test", Some("app"), 1)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // Meanwhile 4 × 10 messages no limit counts all pass, well before the
    // time-out.
    let start = Instant::now();
    let others: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || send(&addr, "user@fleet.test", 10))
        })
        .collect();
    let others: Vec<Got> = others.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let took = start.elapsed();
    let counted: Vec<Got> = counted
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    sleeper.join().unwrap();
    assert_eq!(others, [Got::Accepted; 40], "{}", mw.log());
    assert!(
        took < Duration::from_millis(1_500),
        "40 uncounted messages took {took:?} while Redis slept"
    );
    assert_eq!(counted, [Got::Tempfailed; 2], "{}", mw.log());
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

/// DMARC report rows in fleet mode: each host moves its rows to the fleet's
/// stream (keeping them while Redis is away, here stopped and restarted with its
/// append-only file), and `reports send` on one host (one retired while Redis
/// was away, its rows left in its store) reports every host's messages, once;
/// another host then has nothing to send.
#[test]
fn one_host_reports_for_the_fleet() {
    if !redis_present() || !require("knotd", "knot") {
        return;
    }
    let dir = shared_tempdir("mw-fleet-reports");
    let knot = common::knot::Knot::start_with(
        dir.path(),
        &[(
            "fleet-rpt.test".to_owned(),
            "$ORIGIN fleet-rpt.test.\n$TTL 300\n@ SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
             @ NS ns.harness.test.\n_dmarc TXT \"v=DMARC1; p=none; rua=mailto:d@fleet-rpt.test\"\n"
                .to_owned(),
        )],
    );
    let mut redis = Redis::start_persistent(dir.path());
    let mut mws = fleet_of(dir.path(), 3, |port, sub| {
        format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
             [inbound]\nauthserv_id = \"mx.fleet.test\"\non_dns_error = \"accept\"\n\n\
             [reports]\nstore = \"{}/reports.db\"\nfrom = \"dmarc@fleet.test\"\n\n\
             [cluster]\nredis = \"{}\"\ntimeout = \"500ms\"\n",
            knot.address(),
            sub.display(),
            redis.url()
        )
    });
    let stream_len = |redis: &Redis| {
        redis
            .cli(&["XLEN", "mailwarden:dmarc-rows"])
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    for (i, mw) in mws.iter().enumerate() {
        let got = send_from(
            &mw.addr(),
            &format!("192.0.2.{}", 10 + i),
            "x@fleet-rpt.test",
            5,
        );
        assert_eq!(got, [Got::Accepted; 5], "{}", mw.log());
    }
    assert!(
        common::wait_for(Duration::from_secs(10), || (stream_len(&redis) == 15)
            .then_some(()))
        .is_some(),
        "{} rows on the stream\n{}",
        stream_len(&redis),
        mws[0].log()
    );
    // Redis away: host 1's rows wait in its own store, and move when it is back.
    // Host 2 is retired meanwhile: its daemon stops with 3 rows in its store.
    redis.stop();
    let got = send_from(&mws[1].addr(), "192.0.2.11", "x@fleet-rpt.test", 4);
    assert_eq!(got, [Got::Accepted; 4]);
    let got = send_from(&mws[2].addr(), "192.0.2.12", "x@fleet-rpt.test", 3);
    assert_eq!(got, [Got::Accepted; 3]);
    assert!(
        mws[2].stop().is_some_and(|s| s.success()),
        "{}",
        mws[2].log()
    );
    let list = |config: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["reports", "list", "-c"])
            .arg(config)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        common::wait_for(Duration::from_secs(5), || list(&mws[1].config_path)
            .contains("fleet-rpt.test  4 records")
            .then_some(()))
        .is_some(),
        "{}",
        list(&mws[1].config_path)
    );
    redis.restart();
    assert!(
        common::wait_for(Duration::from_secs(10), || (stream_len(&redis) == 19)
            .then_some(()))
        .is_some(),
        "the spooled rows did not reach the restarted Redis ({} on the stream)",
        stream_len(&redis)
    );
    let report = |config: &std::path::Path, out: &std::path::Path| {
        std::fs::create_dir_all(out).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["reports", "send", "--all", "--out"])
            .arg(out)
            .arg("-c")
            .arg(config)
            .output()
            .unwrap()
    };
    // The retired host reports: its own 3 rows go to the stream first.
    let out0 = dir.path().join("out0");
    let run = report(&mws[2].config_path, &out0);
    let summary = String::from_utf8_lossy(&run.stdout).into_owned();
    let notes = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        run.status.success()
            && notes.contains("3 of this host's rows moved")
            && summary.contains("1 built")
            && summary.contains("1 written"),
        "{summary}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let file = std::fs::read_dir(&out0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (domain, counts, _) = common::parsedmarc::read(&std::fs::read(&file).unwrap());
    assert_eq!(domain, "fleet-rpt.test");
    let mut want = std::collections::BTreeMap::new();
    for (ip, n) in [("192.0.2.10", 5), ("192.0.2.11", 9), ("192.0.2.12", 8)] {
        want.insert((ip.to_owned(), "none".to_owned()), n);
    }
    assert_eq!(counts, want);
    assert_eq!(stream_len(&redis), 0);
    // Another host: the fleet's rows are reported; nothing is left to build.
    let run = report(&mws[0].config_path, &dir.path().join("out2"));
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("0 built"),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
}

/// An anomaly that every host sees is one alert for the fleet: each host logs
/// it, the first takes the fleet's alert key for the cool-down and mails it, the
/// others say it was raised already.
#[test]
fn an_alert_goes_out_once_per_fleet() {
    if !redis_present() || !require("postfix", "postfix") {
        return;
    }
    let dir = shared_tempdir("mw-fleet-alerts");
    let redis = Redis::start(dir.path());
    // Postfix only relays the alert mail to its sink here.
    let postfix = common::postfix::Postfix::start(dir.path(), "inet:127.0.0.1:1", "accept");
    let mws = fleet_of(dir.path(), 2, |port, _| {
        format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [cluster]\nredis = \"{}\"\ntimeout = \"500ms\"\n\n\
             [alerts]\nmin_messages = 5\nwindow = \"10m\"\ncooldown = \"1h\"\n\
             email_to = \"security@dest.test\"\nemail_from = \"mailwarden@fleet.test\"\n\
             smtp_relay = \"127.0.0.1:{}\"\n",
            redis.url(),
            postfix.smtp_port
        )
    });
    for mw in &mws {
        assert_eq!(send(&mw.addr(), "burst@fleet.test", 6), [Got::Accepted; 6]);
        assert!(
            mw.wait_for_log("anomaly", 1, Duration::from_secs(10)),
            "{}",
            mw.log()
        );
    }
    let said_raised = |mw: &Mailwarden| mw.log().contains("already raised by another host");
    assert!(
        common::wait_for(Duration::from_secs(10), || mws
            .iter()
            .any(said_raised)
            .then_some(()))
        .is_some()
    );
    let alerts = || {
        postfix
            .delivered_with_subject("mailwarden alert: message_rate")
            .len()
    };
    assert!(common::wait_for(Duration::from_secs(30), || (alerts() >= 1).then_some(())).is_some());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(alerts(), 1, "one alert mail for the fleet");
    assert_eq!(mws.iter().filter(|m| said_raised(m)).count(), 1);
}

/// A burst spread over the fleet is seen: three hosts each get fewer messages
/// from one sender domain than the alert threshold, the fleet more; the
/// detector compares the fleet's count (added up in Redis every second).
#[test]
fn a_burst_spread_over_the_fleet_raises_an_alert() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-burst");
    let redis = Redis::start(dir.path());
    let mws = fleet_of(dir.path(), 3, |port, _| {
        format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [cluster]\nredis = \"{}\"\ntimeout = \"500ms\"\n\n\
             [alerts]\nmin_messages = 12\nwindow = \"10m\"\ncooldown = \"1h\"\n",
            redis.url()
        )
    });
    for mw in &mws {
        assert_eq!(send(&mw.addr(), "burst@spread.test", 5), [Got::Accepted; 5]);
    }
    // Each host alone is under 12: no alert yet anywhere.
    std::thread::sleep(Duration::from_millis(1_500));
    let alerted = || mws.iter().filter(|m| m.log().contains("anomaly")).count();
    assert_eq!(alerted(), 0);
    // Host 0 learns the fleet's count with its next exchange with Redis (its
    // counts go up each second with the fleet's total coming back): the message
    // after that sees 15 and more.
    assert_eq!(
        send(&mws[0].addr(), "burst@spread.test", 1),
        [Got::Accepted]
    );
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        send(&mws[0].addr(), "burst@spread.test", 1),
        [Got::Accepted]
    );
    assert!(
        mws[0].wait_for_log("anomaly", 1, Duration::from_secs(5)),
        "{}",
        mws[0].log()
    );
    assert!(
        mws[0].log().contains("sender_domain spread.test"),
        "{}",
        mws[0].log()
    );
}

/// The global windows are the fleet's too: three hosts each reject fewer
/// messages than `alerts.rejects`, the fleet more, and the rejects alert fires.
#[test]
fn rejects_spread_over_the_fleet_raise_the_rejects_alert() {
    if !redis_present() {
        return;
    }
    let dir = shared_tempdir("mw-fleet-rejects");
    let redis = Redis::start(dir.path());
    let mws = fleet_of(dir.path(), 3, |port, _| {
        format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [cluster]\nredis = \"{}\"\ntimeout = \"500ms\"\n\n\
             [alerts]\nmin_messages = 1000\nrejects = 8\nwindow = \"10m\"\ncooldown = \"1h\"\n\n\
             [[rules]]\nname = \"no-spam\"\nwhen = {{ sender_domain = \"spam.test\" }}\n\
             then = {{ action = \"reject\", text = \"5.7.1 no\" }}\n",
            redis.url()
        )
    });
    for mw in &mws {
        assert_eq!(send(&mw.addr(), "x@spam.test", 3), [Got::Rejected; 3]);
    }
    std::thread::sleep(Duration::from_millis(1_500));
    let alerted = || mws.iter().filter(|m| m.log().contains("anomaly")).count();
    assert_eq!(alerted(), 0, "each host alone is under 8");
    // Host 0's next exchange with Redis brings back the fleet's 9.
    assert_eq!(send(&mws[0].addr(), "x@spam.test", 1), [Got::Rejected]);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(send(&mws[0].addr(), "x@spam.test", 1), [Got::Rejected]);
    assert!(
        mws[0].wait_for_log("anomaly", 1, Duration::from_secs(5)),
        "{}",
        mws[0].log()
    );
    let log = mws[0].log();
    let anomaly = log.lines().find(|l| l.contains("anomaly")).unwrap_or("");
    assert!(anomaly.contains("rejects"), "{anomaly}");
}
