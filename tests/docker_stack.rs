//! The docker-compose stack for real: images from scripts/images.sh (a debootstrap
//! root, no registry), `docker-compose up`, mail through the containerized Postfix
//! from this host's side of the published port. Fails under CI when Docker is
//! missing.

mod common;

use std::time::{Duration, Instant};

use common::compose::{Stack, docker};
use common::postfix::Delivered;
use common::{authres_parse, clamd::eicar, dkimpy, smtp};

fn message(from: &str, to: &str, id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {id}\r\nMessage-ID: <{id}@stack.test>\r\n\
         Date: Thu, 03 Dec 2026 12:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Sends one message from the host through the published port, to bob@example.test.
fn send(stack: &Stack, from: &str, id: &str, extra: &str, body: &str) -> smtp::Outcome {
    let to = "bob@example.test";
    smtp::send(
        stack.smtp_port,
        from,
        &[to],
        &message(from, to, id, extra, body),
    )
}

#[test]
fn the_stack_checks_signs_scans_and_keeps_mail_while_mailwarden_is_down() {
    if !common::compose::available() {
        return;
    }
    let stack = Stack::up("mwtest-stack", &["docker-compose.yml"], &[]);

    // Inbound from outside (the host, through the published port): checked, and
    // a forged header in our name does not survive.
    let forged = "Authentication-Results: mx.example.test; dmarc=pass header.from=sender.test\r\n";
    let sent = send(&stack, "alice@sender.test", "inbound-1", forged, "hello");
    assert!(sent.accepted(), "inbound mail refused: {sent:?}");
    let raw = stack.wait_delivered("inbound-1@stack.test", Duration::from_secs(60));
    let delivered = Delivered { raw };
    let ours = delivered.header_all("Authentication-Results");
    assert_eq!(
        ours.len(),
        1,
        "one A-R header, ours:\n{}",
        delivered.headers()
    );
    let ar = authres_parse(&ours[0]);
    assert_eq!(ar["authserv_id"], "mx.example.test", "{ar}");
    let result = |method: &str| {
        ar["results"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["method"] == method))
            .map(|x| x["result"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(result("spf").as_deref(), Some("pass"), "{ar}");
    assert_eq!(result("dmarc").as_deref(), Some("pass"), "{ar}");
    assert!(
        delivered
            .header("X-Virus-Scanned")
            .is_some_and(|v| v.contains("ClamAV")),
        "scanned by the clamd container:\n{}",
        delivered.headers()
    );

    // EICAR, scanned by the clamd container.
    let mut body = String::from_utf8(eicar()).expect("EICAR is ASCII");
    body.push_str("\r\n");
    let sent = send(&stack, "alice@sender.test", "virus-1", "", &body);
    assert_eq!(sent.last.code, 554, "EICAR: {sent:?}");
    assert!(sent.last.text.contains("EICAR"), "{sent:?}");

    // A spoof of a p=reject domain.
    let sent = send(&stack, "ceo@bank.test", "spoof-1", "", "pay now");
    assert_eq!(sent.last.code, 550, "DMARC p=reject spoof: {sent:?}");
    assert!(sent.last.text.contains("5.7.1"), "{sent:?}");

    // Outbound: an application on the compose network sends as example.test;
    // dkimpy verifies the signature with the key knot publishes.
    let out = message(
        "app@example.test",
        "user@example.net",
        "outbound-1",
        "",
        "your code is 1234",
    );
    stack.exec(
        "mailbox",
        "swaks --silent 2 --server 172.28.0.25 --from app@example.test --to user@example.net --data -",
        &out,
    );
    let raw = stack.wait_delivered("outbound-1@stack.test", Duration::from_secs(60));
    let signatures = dkimpy::verify(&raw, stack.dns_port);
    assert_eq!(
        signatures,
        vec![(
            "example.test".into(),
            "s1".into(),
            "rsa-sha256".into(),
            true
        )],
        "{}",
        String::from_utf8_lossy(&raw)
    );

    // mailwarden stopped: Postfix answers 4xx (milter_default_action = tempfail)
    // and takes local submissions into its queue; after mailwarden is back, the
    // client's retry and the queued message are both delivered.
    let stopped = stack.compose(&["stop", "-t", "5", "mailwarden"]);
    assert!(stopped.status.success(), "stop mailwarden");
    let sent = send(&stack, "alice@sender.test", "retry-1", "", "later");
    assert!(
        (400..500).contains(&sent.last.code),
        "mailwarden down: want 4xx, got {sent:?}"
    );
    let local = message(
        "app@example.test",
        "user@example.net",
        "queued-1",
        "",
        "queued",
    );
    stack.exec(
        "mx",
        "sendmail -f app@example.test user@example.net",
        &local,
    );
    let started = stack.compose(&["start", "mailwarden"]);
    assert!(started.status.success(), "start mailwarden");
    stack.wait_healthy(Duration::from_secs(60));
    let sent = send(&stack, "alice@sender.test", "retry-1", "", "later");
    assert!(sent.accepted(), "after mailwarden is back: {sent:?}");
    stack.exec("mx", "postqueue -f; postkick public pickup W", b"");
    stack.wait_delivered("retry-1@stack.test", Duration::from_secs(60));
    let queued = stack.wait_delivered("queued-1@stack.test", Duration::from_secs(90));
    assert_eq!(
        dkimpy::verify(&queued, stack.dns_port).first().map(|s| s.3),
        Some(true),
        "the queued local submission went through mailwarden (signed)"
    );
    assert_eq!(
        stack.delivered("retry-1@stack.test").len(),
        1,
        "delivered once"
    );
}

#[test]
fn a_fleet_counts_across_replicas_and_tempfails_while_redis_is_cut_off() {
    if !common::compose::available() {
        return;
    }
    let stack = Stack::up(
        "mwtest-fleet",
        &["docker-compose.yml", "docker-compose.fleet.yml"],
        &["--scale", "mailwarden=2"],
    );
    let replicas = stack.containers("mailwarden");
    assert_eq!(replicas.len(), 2, "two mailwarden replicas");

    // 6/minute per sender, counted in Redis: exactly 6 of 10 pass, whichever
    // replica each SMTP session reaches.
    let mut codes = Vec::new();
    for i in 0..10 {
        let id = format!("burst-{i}");
        let sent = send(&stack, "burst@sender.test", &id, "", "burst");
        codes.push(sent.last.code);
    }
    assert_eq!(codes.iter().filter(|c| **c == 250).count(), 6, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 550).count(), 4, "{codes:?}");
    for id in &replicas {
        assert!(
            stack.container_log(id).contains("burst@sender.test"),
            "replica {id} decided none of the burst (Postfix reaches both by DNS)"
        );
    }

    // Redis cut off the network: a message the limit counts is tempfailed.
    let redis = stack
        .containers("redis")
        .pop()
        .expect("the redis container");
    let network = stack.network();
    docker(&["network", "disconnect", "-f", &network, &redis]);
    let sent = send(&stack, "cut@sender.test", "cut-1", "", "cut");
    assert_eq!(
        sent.last.code, 451,
        "Redis unreachable: want tempfail, got {sent:?}"
    );

    // Reconnected: counting resumes within seconds.
    docker(&["network", "connect", "--alias", "redis", &network, &redis]);
    let back = Instant::now();
    let mut attempt = 0;
    let recovered = common::wait_for(Duration::from_secs(30), || {
        attempt += 1;
        let id = format!("back-{attempt}");
        let sent = send(
            &stack,
            &format!("back{attempt}@sender.test"),
            &id,
            "",
            "back",
        );
        sent.accepted().then(|| back.elapsed())
    });
    let took = recovered.unwrap_or_else(|| panic!("no recovery in 30 s:\n{}", stack.logs()));
    eprintln!("fleet: accepted again {took:?} after Redis was reconnected");
    assert!(took < Duration::from_secs(10), "recovery took {took:?}");
    // Both replicas count in Redis again: the burst sender is still over its limit.
    for i in 0..4 {
        let sent = send(&stack, "burst@sender.test", &format!("again-{i}"), "", "x");
        assert_eq!(
            sent.last.code, 550,
            "still limited after recovery: {sent:?}"
        );
    }
}
