//! The admin endpoint against a running mailwarden: after known messages through a
//! real Postfix, `/metrics` (parsed, not grepped) shows exactly those counts; every
//! path refuses a missing or wrong bearer token; `/readyz` names clamd while it is
//! stopped and is ready again when it is back.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::clamd::Clamd;
use common::mailwarden::Mailwarden;
use common::smtp::Peer;
use common::{free_port, require, shared_tempdir, wait_for};

use common::admin::{TOKEN, get, parse_metrics, section as admin_section};

#[test]
fn metrics_count_known_messages_and_need_a_token() {
    if !require("postfix", "postfix")
        || !require("smtp-sink", "postfix")
        || !require("knotd", "knot")
        || !require("kdig", "knot-dnsutils")
    {
        return;
    }
    let dir = shared_tempdir("mw-admin");
    let knot = common::knot::Knot::start(dir.path());
    let (port, admin) = admin_section(dir.path());
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n{admin}\n\
         [[rules]]\nname = \"block-lottery\"\nwhen = {{ subject = {{ regex = \"(?i)lottery\" }} }}\n\
         then = {{ action = \"reject\" }}\n",
        knot.address()
    );
    let mw = Mailwarden::start(dir.path(), "", &extra);
    let postfix = common::postfix::Postfix::start(dir.path(), &mw.addr(), "tempfail");
    assert!(
        wait_for(Duration::from_secs(10), || (get(
            port,
            "/healthz",
            Some(TOKEN)
        )
        .0 == 200)
            .then_some(()))
        .is_some(),
        "{}",
        mw.log()
    );

    let outside = Peer {
        addr: "192.0.2.10",
        name: "mail.sender.test",
        helo: "mail.sender.test",
        login: None,
    };
    let message = |id: &str, subject: &str| {
        format!(
            "From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: {subject}\r\nMessage-ID: <{id}@sender.test>\r\n\r\nhi\r\n"
        )
        .into_bytes()
    };
    for i in 0..2 {
        let out = postfix.send_as(
            outside,
            "alice@sender.test",
            &message(&format!("m{i}"), "hello"),
        );
        assert!(out.accepted(), "{out:?}\n{}", mw.log());
    }
    let out = postfix.send_as(
        outside,
        "alice@sender.test",
        &message("m2", "You won the LOTTERY"),
    );
    assert_eq!(out.last.code, 550, "{out:?}");
    let out = postfix.send(&message("m3", "internal"));
    assert!(out.accepted(), "{out:?}");

    // Credentials first.
    assert_eq!(get(port, "/metrics", None).0, 401);
    assert_eq!(get(port, "/metrics", Some("wrong-token-0123456789")).0, 401);
    assert_eq!(get(port, "/readyz", None).0, 401);
    let (status, body) = get(port, "/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let m = parse_metrics(&body);
    let value = |key: &str| {
        m.get(key)
            .copied()
            .unwrap_or_else(|| panic!("no {key} in\n{body}"))
    };
    assert_eq!(
        value("mailwarden_messages_total{direction=\"inbound\",action=\"accept\"}"),
        2.0
    );
    assert_eq!(
        value("mailwarden_messages_total{direction=\"inbound\",action=\"reject\"}"),
        1.0
    );
    assert_eq!(
        value("mailwarden_messages_total{direction=\"outbound\",action=\"accept\"}"),
        1.0
    );
    assert_eq!(
        value("mailwarden_rule_matches_total{rule=\"block-lottery\",mode=\"enforce\"}"),
        1.0
    );
    assert_eq!(
        value("mailwarden_auth_results_total{method=\"dmarc\",result=\"pass\"}"),
        3.0
    );
    assert_eq!(
        value("mailwarden_latency_seconds_count{step=\"message\"}"),
        4.0
    );
    assert_eq!(value("mailwarden_latency_seconds_count{step=\"dns\"}"), 3.0);
    assert_eq!(
        value("mailwarden_admin_denied_total{class=\"missing\"}"),
        2.0
    );
    assert_eq!(value("mailwarden_admin_denied_total{class=\"wrong\"}"), 1.0);
    assert!(m.contains_key("mailwarden_sessions_active"), "{body}");
    assert_eq!(
        value(&format!(
            "mailwarden_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    let loaded = value("mailwarden_config_last_load_timestamp_seconds");
    assert!(loaded > 1.7e9, "{loaded}");
    // A reload counts, by result: one that applies, one refused.
    std::thread::sleep(Duration::from_millis(1_100));
    mw.signal("HUP");
    assert!(mw.wait_for_log("configuration reloaded", 1, Duration::from_secs(10)));
    let config = std::fs::read_to_string(&mw.config_path).unwrap();
    std::fs::write(&mw.config_path, format!("{config}\nnot toml at all [\n")).unwrap();
    mw.signal("HUP");
    assert!(mw.wait_for_log("reload refused", 1, Duration::from_secs(10)));
    let (_, body) = get(port, "/metrics", Some(TOKEN));
    let m = parse_metrics(&body);
    let value = |key: &str| m.get(key).copied().unwrap_or(0.0);
    assert_eq!(
        value("mailwarden_config_reloads_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        value("mailwarden_config_reloads_total{result=\"failure\"}"),
        1.0
    );
    assert!(value("mailwarden_config_last_load_timestamp_seconds") > loaded);
    assert!(!mw.log().contains(TOKEN), "the token never reaches the log");
}

#[test]
fn readyz_names_clamd_while_it_is_down() {
    if !require("clamd", "clamav-daemon")
        || !require("knotd", "knot")
        || !require("kdig", "knot-dnsutils")
    {
        return;
    }
    let dir = shared_tempdir("mw-admin-ready");
    let knot = common::knot::Knot::start(dir.path());
    let mut clamd = Clamd::start(dir.path(), "10M");
    let (port, admin) = admin_section(dir.path());
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n{admin}\n\
         [antivirus]\nclamd = \"{}\"\n",
        knot.address(),
        clamd.tcp()
    );
    let mw = Mailwarden::start(dir.path(), "", &extra);
    let ready = || get(port, "/readyz", Some(TOKEN));
    let first = wait_for(Duration::from_secs(10), || {
        let r = ready();
        (r.0 == 200).then_some(r)
    });
    let (_, body) = first.unwrap_or_else(|| panic!("never ready: {:?}\n{}", ready(), mw.log()));
    assert!(
        body.starts_with("ready") && body.contains("dns: ok"),
        "{body}"
    );
    clamd.stop();
    let (status, body) = ready();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("clamd {}: not ready", clamd.tcp())) && body.contains("dns: ok"),
        "{body}"
    );
    clamd.restart();
    assert_eq!(ready().0, 200);
    // DNS down is named too.
    drop(knot);
    let (status, body) = ready();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("dns: not ready"), "{body}");
}

/// A GET over TLS with the given roots and optional client certificate; `Err` when
/// the connection or handshake fails.
fn get_tls(
    port: u16,
    roots: &rustls::RootCertStore,
    client: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
) -> Result<String, String> {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone());
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    };
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .map_err(|e| e.to_string())?;
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // Some servers close without close_notify; what arrived still counts.
        Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn https_and_mutual_tls() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };
    let dir = shared_tempdir("mw-admin-tls");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["monitoring".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    // A client certificate from a CA the endpoint does not trust.
    let other_ca = CertifiedIssuer::self_signed(
        {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        },
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    let stranger_key = KeyPair::generate().unwrap();
    let stranger = client_params.signed_by(&stranger_key, &other_ca).unwrap();

    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let cert = write("server.pem", server.pem());
    let key = write("server.key", server_key.serialize_pem());
    let ca_file = write("ca.pem", ca.pem());
    let (port, admin) = admin_section(dir.path());
    let extra = format!(
        "{admin}tls_cert = \"{}\"\ntls_key = \"{}\"\nclient_ca = \"{}\"\n",
        cert.display(),
        key.display(),
        ca_file.display()
    );
    let mw = Mailwarden::start(dir.path(), "", &extra);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();

    let served = wait_for(Duration::from_secs(10), || {
        get_tls(port, &roots, Some((&client, &client_key))).ok()
    });
    let served = served.unwrap_or_else(|| panic!("no HTTPS answer\n{}", mw.log()));
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    assert!(served.ends_with("ok\n"), "{served}");
    // No client certificate, or one from another CA: refused in the handshake.
    let none = get_tls(port, &roots, None);
    assert!(
        none.as_ref().map_or(true, |r| !r.contains("200 OK")),
        "{none:?}"
    );
    let wrong = get_tls(port, &roots, Some((&stranger, &stranger_key)));
    assert!(
        wrong.as_ref().map_or(true, |r| !r.contains("200 OK")),
        "{wrong:?}"
    );
    // Plain HTTP to a TLS port gets nothing useful.
    let plain = std::panic::catch_unwind(|| get(port, "/healthz", Some(TOKEN)));
    assert!(plain.map_or(true, |(status, _)| status != 200));
    assert!(
        mw.wait_for_log("TLS handshake refused", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
}

/// An HTTPS webhook receiver on a loopback port: records each request body and
/// answers 200.
struct Webhook {
    port: u16,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn webhook(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Webhook {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::{Arc, Mutex};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then Content-Length bytes of body.
            let body = loop {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(format!("{head}\r\n\r\n{body}"));
                    }
                }
            };
            if let Some(request) = body {
                seen.lock().unwrap().push(request);
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    Webhook { port, bodies }
}

#[test]
fn a_burst_from_one_account_gives_one_webhook_call_and_one_email() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    if !require("postfix", "postfix") || !require("smtp-sink", "postfix") {
        return;
    }
    let dir = shared_tempdir("mw-alerts");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let hook_key = KeyPair::generate().unwrap();
    let hook_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&hook_key, &ca)
        .unwrap();
    let hook = webhook(&hook_cert, &hook_key);
    let ca_file = dir.path().join("webhook-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let hook_token = dir.path().join("webhook-token");
    std::fs::write(&hook_token, "hook-secret-123\n").unwrap();
    std::fs::set_permissions(&hook_token, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mw_port = free_port();
    let postfix = common::postfix::Postfix::start(
        dir.path(),
        &format!("inet:127.0.0.1:{mw_port}"),
        "tempfail",
    );
    let alerts = format!(
        "[alerts]\nmin_messages = 5\nwindow = \"10m\"\ncooldown = \"1h\"\n\
         webhook = \"https://localhost:{}/hook\"\nwebhook_ca = \"{}\"\nwebhook_token_file = \"{}\"\n\
         email_to = \"security@dest.test\"\nemail_from = \"mailwarden@mx.harness.test\"\n\
         smtp_relay = \"127.0.0.1:{}\"\n",
        hook.port,
        ca_file.display(),
        hook_token.display(),
        postfix.smtp_port
    );
    let mw = Mailwarden::start_on(dir.path(), mw_port, "", &alerts);
    let app = Peer {
        addr: "192.0.2.50",
        name: "app.customer.test",
        helo: "app.customer.test",
        login: Some("compromised-app"),
    };
    for i in 0..12 {
        let message = format!(
            "From: app@customer.test\r\nTo: bob@dest.test\r\nSubject: offer {i}\r\nMessage-ID: <burst-{i}@customer.test>\r\n\r\nbuy now\r\n"
        );
        let out = postfix.send_as(app, "app@customer.test", message.as_bytes());
        assert!(out.accepted(), "{out:?}\n{}", mw.log());
    }
    let calls = wait_for(Duration::from_secs(15), || {
        let b = hook.bodies.lock().unwrap().clone();
        (!b.is_empty()).then_some(b)
    })
    .unwrap_or_else(|| panic!("no webhook call\n{}", mw.log()));
    std::thread::sleep(Duration::from_secs(2));
    let calls_now = hook.bodies.lock().unwrap().clone();
    let rate_calls: Vec<&String> = calls_now
        .iter()
        .filter(|c| c.contains("\"key\":\"auth_user compromised-app\""))
        .collect();
    assert_eq!(rate_calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls_now.len(),
        1,
        "one alert for the whole burst: {calls_now:?}"
    );
    assert!(
        rate_calls[0].contains("Authorization: Bearer hook-secret-123"),
        "{}",
        rate_calls[0]
    );
    assert!(
        rate_calls[0].contains("\"alert\":\"message_rate\""),
        "{}",
        rate_calls[0]
    );
    let mail = postfix.wait_delivered("message_rate auth_user compromised-app");
    let raw = String::from_utf8_lossy(&mail.raw).into_owned();
    assert!(raw.contains("security@dest.test"), "{raw}");
    std::thread::sleep(Duration::from_secs(1));
    postfix.flush();
    let alert_mails = postfix
        .delivered()
        .iter()
        .filter(|d| {
            d.headers()
                .contains("message_rate auth_user compromised-app")
        })
        .count();
    assert_eq!(alert_mails, 1, "one email for the burst");
    let all_alert_mails = postfix
        .delivered()
        .iter()
        .filter(|d| d.headers().contains("mailwarden alert:"))
        .count();
    assert_eq!(all_alert_mails, 1, "and no other alert mail");
    assert!(
        mw.wait_for_log("anomaly", 1, Duration::from_secs(5)),
        "{}",
        mw.log()
    );
    assert!(
        !mw.log().contains("hook-secret-123"),
        "the webhook token is not logged"
    );
}

#[test]
fn a_webhook_that_is_down_delays_no_message() {
    if !require("postfix", "postfix") || !require("smtp-sink", "postfix") {
        return;
    }
    let dir = shared_tempdir("mw-alerts-down");
    let dead = free_port();
    let alerts = format!(
        "[alerts]\nmin_messages = 2\nwebhook = \"https://localhost:{dead}/hook\"\nwebhook_timeout = \"5s\"\n"
    );
    let mw = Mailwarden::start(dir.path(), "", &alerts);
    let postfix = common::postfix::Postfix::start(dir.path(), &mw.addr(), "tempfail");
    for i in 0..6 {
        let started = std::time::Instant::now();
        let message = format!(
            "From: a@sender.test\r\nTo: bob@dest.test\r\nSubject: s{i}\r\nMessage-ID: <down-{i}@sender.test>\r\n\r\nx\r\n"
        );
        let out = postfix.send(message.as_bytes());
        assert!(out.accepted(), "{out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "message {i} took {:?}",
            started.elapsed()
        );
    }
    assert!(
        mw.wait_for_log("webhook failed", 1, Duration::from_secs(10)),
        "{}",
        mw.log()
    );
}
