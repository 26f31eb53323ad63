//! The cost the rules add per message: 100 rules of mixed conditions (regexes and
//! globs compiled once at load) over a 50 KB message with two attachments, with the
//! facts gathered from the message (MIME parsed, links and zip names read) and
//! without (the evaluation alone).

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use mailwarden::bench::Direction;
use mailwarden::bench::{Content, Facts, Limiter, Rates, evaluate};
use mailwarden::bench::{EnvelopeAddress, HeaderField, Transaction};
use mailwarden::config::parse_str;
use mailwarden::mta::SplitMessage;

fn message() -> Vec<u8> {
    let b64 = |data: &[u8]| {
        let text = base64::engine::general_purpose::STANDARD.encode(data);
        text.as_bytes()
            .chunks(76)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let mut html = String::from("<html><body><p>Dear customer,</p>");
    while html.len() < 15_000 {
        html.push_str("<p>Your statement is ready. See <a href=\"https://portal.bank.example/statements\">portal.bank.example</a> or call us.</p>\n");
    }
    html.push_str("</body></html>");
    let text = "Your statement is ready: https://portal.bank.example/statements\r\n".repeat(150);
    let pdf: Vec<u8> = (0..14_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut pdf_file = b"%PDF-1.4\n".to_vec();
    pdf_file.extend(pdf);
    let zip_like: Vec<u8> = (0..4_000u32).map(|i| (i * 13 % 256) as u8).collect();
    format!(
        "From: Bank Statements <statements@bank.example>\r\nTo: alice@ours.example\r\n\
         Subject: Your November statement\r\nDate: Tue, 24 Nov 2026 08:00:00 +0000\r\n\
         Message-ID: <bench@bank.example>\r\nX-Mailer: StatementMailer 4.2\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
         --outer\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--\r\n\
         --outer\r\nContent-Type: application/pdf; name=\"statement.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"statement.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --outer\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n\
         Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--outer--\r\n",
        b64(&pdf_file),
        b64(&zip_like)
    )
    .into_bytes()
}

/// 100 rules, ten each of ten kinds; none matches this message, so every rule and
/// every condition is evaluated (the most work the engine can do).
fn rules() -> String {
    let mut out = String::new();
    for i in 0..10 {
        let kinds = [
            format!(
                "{{ sender_domain = [\"spam{i}.example\", \"junk{i}.example\", \"bulk{i}.example\"] }}"
            ),
            format!("{{ subject = {{ regex = \"(?i)(lottery|winner|prize) {i}\" }} }}"),
            format!("{{ header = {{ name = \"X-Mailer\", regex = \"^Mass(Mail|Sender) {i}\" }} }}"),
            format!(
                "{{ attachment_ext = [\"exe\", \"scr\", \"js{i}\"], direction = \"inbound\" }}"
            ),
            format!("{{ url_host = {{ glob = \"*.phish{i}.example\" }} }}"),
            format!("{{ client_ip = [\"198.51.{i}.0/24\", \"203.0.{i}.0/24\"] }}"),
            format!(
                "{{ spf = \"fail\", dmarc = \"fail\", from_address = {{ glob = \"*@fake{i}.example\" }} }}"
            ),
            format!("{{ body = {{ regex = \"(?i)wire transfer to account {i}[0-9]+\" }} }}"),
            format!(
                "{{ any = [{{ url_ip_literal = true, size_over = \"{i}MiB\" }}, {{ virus = true }}], not = {{ recipient_domain = \"ours.example\" }} }}"
            ),
            format!(
                "{{ impersonates = {{ names = [\"CEO {i}\", \"Payroll {i}\"], domains = [\"ours.example\"] }}, url_text_mismatch = true }}"
            ),
        ];
        for (k, when) in kinds.iter().enumerate() {
            out.push_str(&format!(
                "[[rules]]\nname = \"r{i}-{k}\"\nwhen = {when}\nthen = {{ action = \"reject\" }}\n\n"
            ));
        }
    }
    out
}

fn transaction(raw: &[u8]) -> Transaction {
    let split = SplitMessage::parse(raw);
    Transaction {
        client: mailwarden::bench::Client {
            hostname: "mail.bank.example".into(),
            ip: Some("192.0.2.10".parse().unwrap()),
            port: Some(40000),
            helo: Some("mail.bank.example".into()),
        },
        sender: EnvelopeAddress {
            raw: "<bounces@bank.example>".into(),
            params: Vec::new(),
        },
        recipients: vec![EnvelopeAddress {
            raw: "<alice@ours.example>".into(),
            params: Vec::new(),
        }],
        headers: split
            .headers
            .iter()
            .map(|(name, value)| HeaderField {
                name: name.clone(),
                value: Bytes::from(value.clone()),
            })
            .collect(),
        headers_exact: true,
        body_size: split.body.len() as u64,
        body: Bytes::from(split.body),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let loaded = Instant::now();
    let config = parse_str(&rules(), None).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{} rules checked and compiled in {:?}",
        config.rules.len(),
        loaded.elapsed()
    );
    let raw = message();
    let tx = transaction(&raw);
    println!("message: {} bytes", raw.len());
    let direction = Direction::Inbound("192.0.2.10".parse().unwrap());
    let limiter = Limiter::new(100_000);
    let rates = Rates {
        limits: &config.rate_limits,
        limiter: &limiter,
        now: Instant::now(),
        counted: None,
    };
    let facts = Facts::gather(
        &tx,
        &direction,
        None,
        None,
        Some(Content {
            message: &tx.message(),
            archive_depth: 2,
        }),
    );
    assert_eq!(facts.attachments.len(), 2);
    let e = evaluate(&config.rules, &facts, false, &rates, false);
    assert!(e.decision.is_none() && e.trace.iter().all(|t| t.check.is_some()));

    c.bench_function("100 rules: gather facts (parse 50 KB) + evaluate", |b| {
        b.iter(|| {
            let facts = Facts::gather(
                black_box(&tx),
                &direction,
                None,
                None,
                Some(Content {
                    message: &tx.message(),
                    archive_depth: 2,
                }),
            );
            evaluate(&config.rules, &facts, false, &rates, false)
        })
    });
    c.bench_function("100 rules: evaluate only", |b| {
        b.iter(|| evaluate(&config.rules, black_box(&facts), false, &rates, false))
    });
    c.bench_function("mail-parser alone (parse 50 KB)", |b| {
        b.iter(|| mailwarden::bench::parse_mime(black_box(&raw)).map(|m| m.parts.len()))
    });
    c.bench_function("gather facts only (parse 50 KB)", |b| {
        b.iter(|| {
            Facts::gather(
                black_box(&tx),
                &direction,
                None,
                None,
                Some(Content {
                    message: &tx.message(),
                    archive_depth: 2,
                }),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
