//! Defect 5 of the hardening review: thousands of slowloris connections to the
//! admin endpoint (a partial request line, a byte now and then) left the milter
//! unable to accept Postfix. The endpoint now serves at most `max_connections` at
//! once, closes the rest at once, and cuts a connection after `timeout`
//! (scenario `tests/scenarios/admin_slowloris`).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::mailwarden::Mailwarden;
use common::scenario::Scenario;
use mailwarden::ListenAddr;
use mailwarden::mta::MtaClient;

const TOKEN: &str = "slow-token-0123456789abcdef";

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_flood_neither_holds_descriptors_nor_blocks_the_milter() {
    let dir = common::shared_tempdir("mw-slowloris");
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(&tokens, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = common::free_port();
    let admin = common::free_port();
    let config = Scenario::new("admin_slowloris").config(&[
        ("LISTEN", format!("inet:127.0.0.1:{port}")),
        ("PORT", admin.to_string()),
        ("DIR", dir.path().display().to_string()),
    ]);
    let mw = Mailwarden::start_with_config(dir.path(), port, &config);
    assert!(common::wait_listening(admin, Duration::from_secs(5)));
    let before = open_fds(mw.pid());

    // 300 connections, each with half a request line, kept open by the client.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
        let _ = s.write_all(b"GET /metr");
        slow.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = open_fds(mw.pid());
    assert!(
        during <= before + 8 + 4,
        "{during} descriptors open during the flood, {before} before"
    );

    // The milter still takes a session and decides a message.
    let addr: ListenAddr = format!("inet:127.0.0.1:{port}").parse().unwrap();
    let ip = "192.0.2.9".parse().unwrap();
    let mut mta = MtaClient::open_session(&addr, ip, "app.test")
        .await
        .unwrap();
    mta.mail("<a@app.test>", &[]).await.unwrap();
    mta.rcpt("<b@dest.test>").await.unwrap();
    mta.macros(b'T', &[("i", "SLOW1")]);
    mta.data().await.unwrap();
    mta.eoh().await.unwrap();
    let reply = mta.eom().await.unwrap();
    mta.quit().await.unwrap();
    assert!(
        matches!(reply.decision, mailwarden::mta::Response::Continue),
        "{reply:?}"
    );

    // After the timeout the slow ones are cut, and the endpoint answers again.
    std::thread::sleep(Duration::from_millis(2500));
    let mut cut = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => cut += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => cut += 1,
            _ => {}
        }
    }
    assert_eq!(cut, slow.len(), "every slow connection was closed");
    drop(slow);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", admin)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
