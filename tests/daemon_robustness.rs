//! The daemon under hostile or careless MTAs: garbage bytes, a 2 GiB length prefix,
//! a client that connects and never speaks, too many connections. Each bad session
//! ends within its time-out with one log line, and a good session opened before and
//! after keeps being served. Also: unix sockets (stale file replaced, live one not
//! stolen) and a SIGTERM drain that finishes the message in flight.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::mailwarden::Mailwarden;
use common::shared_tempdir;
use mailwarden::ListenAddr;
use mailwarden::Stream;
use mailwarden::mta::Response;
use mailwarden::mta::{ClientAddress, Command};
use mailwarden::mta::{ClientError, MtaClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// These sessions send messages without a From field (they test the daemon, not
/// DMARC), which `inbound.on_bad_from`'s default would refuse.
const NO_FROM_OK: &str = "[inbound]\nauthserv_id = \"mx.harness.test\"\non_bad_from = \"accept\"\n";

async fn try_client(addr: &ListenAddr) -> Result<MtaClient<Stream>, ClientError> {
    let ip = "192.0.2.1".parse().unwrap();
    let mta = MtaClient::open_session(addr, ip, "client.test").await?;
    Ok(mta.with_reply_timeout(Duration::from_secs(10)))
}

async fn client(addr: &ListenAddr) -> MtaClient<Stream> {
    try_client(addr).await.expect("open a milter session")
}

async fn one_message(mta: &mut MtaClient<Stream>, queue_id: &str) -> Response {
    mta.mail("<a@sender.test>", &[]).await.expect("mail");
    mta.rcpt("<b@dest.test>").await.expect("rcpt");
    mta.macros(b'T', &[("i", queue_id)]);
    mta.data().await.expect("data");
    mta.header("Subject", b" hi").await.expect("header");
    mta.eoh().await.expect("eoh");
    mta.body(b"hello\r\n").await.expect("body");
    let reply = mta.eom().await.expect("eom");
    mta.abort();
    // The leading space is ours to send only when the MTA keeps header whitespace.
    let trace = reply.added_header("X-Mailwarden").map(str::trim_start);
    assert_eq!(
        trace,
        Some(format!("{} {queue_id}", env!("CARGO_PKG_VERSION")).as_str())
    );
    reply.decision
}

/// Reads until the daemon closes the connection; returns how long that took.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Err(_) => panic!("the daemon kept the connection open for more than {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sessions_end_alone_and_good_ones_keep_working() {
    let dir = shared_tempdir("mw-robust");
    let mw = Mailwarden::start(dir.path(), "negotiate_timeout = \"1s\"", NO_FROM_OK);
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], mw.port)));
    let mut good = client(&addr).await;
    assert_eq!(one_message(&mut good, "GOOD1").await, Response::Continue);

    // Garbage: an HTTP request is a length of 0x47455420 bytes, far over the limit.
    let mut garbage = TcpStream::connect(("127.0.0.1", mw.port)).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(time_until_closed(&mut garbage, Duration::from_secs(5)).await < Duration::from_secs(2));

    // A 2 GiB length prefix is refused before anything is allocated for it.
    let mut huge = TcpStream::connect(("127.0.0.1", mw.port)).await.unwrap();
    huge.write_all(&[0x80, 0, 0, 0, b'O']).await.unwrap();
    assert!(time_until_closed(&mut huge, Duration::from_secs(5)).await < Duration::from_secs(2));

    // An unknown command after a valid negotiation.
    let mut unknown = TcpStream::connect(("127.0.0.1", mw.port)).await.unwrap();
    let mut packets = BytesMut::new();
    Command::OptNeg {
        version: 6,
        actions: 0x1ff,
        protocol: 0x1f_ffff,
    }
    .encode(&mut packets);
    packets.extend_from_slice(b"\0\0\0\x03Zzz");
    unknown.write_all(&packets).await.unwrap();
    time_until_closed(&mut unknown, Duration::from_secs(5)).await;

    // Connects and never speaks: closed after negotiate_timeout (1s).
    let mut silent = TcpStream::connect(("127.0.0.1", mw.port)).await.unwrap();
    let waited = time_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // The session opened before all that still works, and so does a new one.
    assert_eq!(one_message(&mut good, "GOOD2").await, Response::Continue);
    let mut fresh = client(&addr).await;
    assert_eq!(one_message(&mut fresh, "GOOD3").await, Response::Continue);
    fresh.quit().await.unwrap();

    let expected = [
        "packet length 1195725856 exceeds the limit of 1048576 bytes",
        "packet length 2147483648 exceeds the limit",
        "unknown command byte 0x5a",
        "no option negotiation from the MTA within 1s",
    ];
    for needle in expected {
        // Log lines are written in batches, a few milliseconds after the event.
        mw.wait_for_log(needle, 1, Duration::from_secs(5));
    }
    let log = mw.log();
    for expected in expected {
        assert_eq!(
            log.matches(expected).count(),
            1,
            "{expected:?} once in:\n{log}"
        );
    }
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_sessions_are_closed_at_once() {
    let dir = shared_tempdir("mw-max");
    let mw = Mailwarden::start(dir.path(), "max_sessions = 2", NO_FROM_OK);
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], mw.port)));
    // The harness's readiness probe was a connection too: on a busy machine the
    // daemon may not have seen it close yet, and it holds a slot until then.
    let first = client_within(&addr, Duration::from_secs(5)).await;
    let _second = client_within(&addr, Duration::from_secs(5)).await;
    let mut third = TcpStream::connect(("127.0.0.1", mw.port)).await.unwrap();
    assert!(time_until_closed(&mut third, Duration::from_secs(5)).await < Duration::from_secs(1));
    assert!(
        mw.wait_for_log("max_sessions reached", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );

    first.quit().await.unwrap();
    // The slot is free once the daemon has finished the first session, which a busy
    // machine may take a moment to do.
    let mut again = client_within(&addr, Duration::from_secs(5)).await;
    assert_eq!(one_message(&mut again, "AFTER").await, Response::Continue);
}

/// A session, retried every 100 ms while the daemon still counts a session
/// that ended as open.
async fn client_within(addr: &ListenAddr, limit: Duration) -> MtaClient<Stream> {
    let start = std::time::Instant::now();
    loop {
        match try_client(addr).await {
            Ok(mta) => return mta,
            Err(e) if start.elapsed() > limit => panic!("no session within {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_replaces_a_stale_file_and_never_steals_a_live_one() {
    let dir = shared_tempdir("mw-unix");
    let path = dir.path().join("milter.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // stale, as after a crash
    let listen = format!(
        "listen = [\"unix:{}\"]\nsocket_mode = \"0600\"",
        path.display()
    );
    let config = format!("{listen}\n\n{NO_FROM_OK}");
    let config_path = dir.path().join("unix.toml");
    std::fs::write(&config_path, format!("[server]\n{config}")).unwrap();
    let log_path = dir.path().join("unix.log");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["serve", "-c"])
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // Stopped even when an assertion below fails, so no daemon outlives the test.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .arg(self.0.to_string())
                .status();
        }
    }
    let _stop = Stop(first.id());
    let addr = ListenAddr::Unix(path.clone());
    let up = common::wait_for(Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&path).ok()
    });
    assert!(up.is_some(), "{}", common::read_text(&log_path));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let second = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["serve", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another process is accepting connections on that socket"),
        "{stderr}"
    );

    let mut mta = client(&addr).await;
    assert_eq!(one_message(&mut mta, "UNIX1").await, Response::Continue);
    mta.quit().await.unwrap();
    let _ = std::process::Command::new("kill")
        .arg(first.id().to_string())
        .status();
    assert!(first.wait().unwrap().success());
    assert!(!path.exists(), "socket file removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_message_in_flight_then_exits() {
    let dir = shared_tempdir("mw-drain");
    let mut mw = Mailwarden::start(dir.path(), "shutdown_timeout = \"20s\"", NO_FROM_OK);
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], mw.port)));
    let idle = client(&addr).await;
    let mut busy = client(&addr).await;
    busy.mail("<a@sender.test>", &[]).await.unwrap();
    busy.rcpt("<b@dest.test>").await.unwrap();
    busy.macros(b'T', &[("i", "DRAIN1")]);
    busy.data().await.unwrap();
    busy.header("Subject", b" mid-flight").await.unwrap();
    busy.eoh().await.unwrap();
    busy.body(b"half of it\r\n").await.unwrap();
    busy.send_raw(&[]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    mw.signal("TERM");
    assert!(
        mw.wait_for_log(
            "closed idle milter session for shutdown",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        mw.log()
    );
    assert!(mw.is_running(), "still draining the busy session");
    drop(idle);

    // Defect 9 of the hardening review: a connection that came during the drain
    // was neither served nor closed (it sat in the listen queue). Now the listening
    // socket is closed at once: Postfix is refused and applies its default action.
    let late = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", mw.port)),
    )
    .await
    .expect("a connection attempt during the drain gets an answer at once");
    assert!(late.is_err(), "refused during the drain: {late:?}");

    let reply = busy
        .eom()
        .await
        .expect("the message in flight gets its decision");
    assert_eq!(reply.decision, Response::Continue);
    busy.abort();
    busy.expect_closed()
        .await
        .expect("then the session is closed");
    let exited = common::wait_for(Duration::from_secs(10), || (!mw.is_running()).then_some(()));
    assert!(exited.is_some(), "daemon exits once drained:\n{}", mw.log());
    assert!(mw.log().contains("all sessions finished"), "{}", mw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtas_speaking_protocol_2_to_6_are_served() {
    let dir = shared_tempdir("mw-versions");
    let mw = Mailwarden::start(dir.path(), "", NO_FROM_OK);
    let addr = ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], mw.port)));
    // (version, actions, protocol bits) as such MTAs offer them; 0 means "v1 defaults".
    let offers = [
        (2, 0, 0),
        (2, 0x0f, 0x7f),
        (3, 0x3f, 0x17f),
        (4, 0x3f, 0x37f),
        (5, 0x3f, 0x37f),
        (6, 0x1ff, 0x1f_ffff),
    ];
    for (version, actions, protocol) in offers {
        let mut mta = MtaClient::connect(&addr)
            .await
            .unwrap()
            .with_reply_timeout(Duration::from_secs(5));
        let Response::OptNeg {
            version: agreed, ..
        } = mta.negotiate(version, actions, protocol).await.unwrap()
        else {
            panic!("no OPTNEG reply for v{version}");
        };
        assert_eq!(agreed, version);
        let expect_replies = version < 6;
        let reply = mta
            .connect_info(
                "old.client.test",
                ClientAddress::Inet {
                    ip: "192.0.2.5".parse().unwrap(),
                    port: 25,
                },
            )
            .await
            .unwrap();
        assert_eq!(reply.is_some(), expect_replies, "v{version}: CONNECT reply");
        let queue_id = format!("V{version}P{protocol:X}");
        assert_eq!(
            one_message(&mut mta, &queue_id).await,
            Response::Continue,
            "v{version}"
        );
        mta.quit().await.unwrap();
    }
    // Both protocol-2 offers lack the header-change and quarantine actions: said once
    // for each of those connections, and nothing else is wrong.
    mw.wait_for_log(
        "does not allow some modifications",
        2,
        Duration::from_secs(5),
    );
    let log = mw.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("does not allow some modifications") && w.contains("missing=0x30")),
        "{log}"
    );
}
