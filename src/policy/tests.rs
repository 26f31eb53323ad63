use super::*;
use crate::config::{Action, Rule, parse_str};
use crate::decision::Edit;
use crate::decision::header::fold;
use crate::policy::facts::{Attachment, Content};
use crate::transaction::HeaderField;
use bytes::Bytes;

/// Rules from TOML, through the real config checker.
fn rules(toml: &str) -> Vec<Rule> {
    match parse_str(toml, None) {
        Ok(c) => c.rules,
        Err(e) => panic!("{e}"),
    }
}

fn facts() -> Facts {
    Facts {
        client_ip: Some("203.0.113.9".parse().unwrap()),
        reverse_name: "mail.partner.example".into(),
        helo: "mail.partner.example".into(),
        auth_user: None,
        inbound: true,
        sender: "billing@partner.example".into(),
        recipients: vec!["alice@ours.example".into(), "bob@other.example".into()],
        headers: vec![
            ("Subject".into(), "Invoice 42".into()),
            ("X-Mailer".into(), "BulkMailer 9.1".into()),
        ],
        size: 48_000,
        auth: vec![
            ("spf", "softfail".into()),
            ("dkim", "fail".into()),
            ("dkim", "pass".into()),
            ("dmarc", "fail".into()),
        ],
        dmarc_policy: Some("quarantine".into()),
        viruses: Some(vec!["Win.Test.EICAR_HDB-1".into()]),
        subject: "Invoice 42".into(),
        from_name: vec!["Partner Billing".into()],
        from_address: vec!["billing@partner.example".into()],
        body: "Please pay at https://pay.partner.example/now".into(),
        attachments: vec![Attachment {
            name: "Invoice.PDF.exe".into(),
            ext: "exe".into(),
            mime: "application/octet-stream".into(),
            detected: Some("application/x-msdownload".into()),
            inside: None,
        }],
        links: crate::content::urls::links(
            "see https://pay.partner.example/now",
            r#"<a href="http://198.51.100.4/x">https://www.bank.example/login</a>"#,
        ),
    }
}

fn eval(rules: &[Rule], facts: &Facts, monitor: bool) -> Evaluation {
    let limiter = Limiter::new(100_000);
    let rates = Rates {
        limits: &[],
        limiter: &limiter,
        now: std::time::Instant::now(),
        counted: None,
    };
    evaluate(rules, facts, monitor, &rates, true)
}

fn matches(when: &str) -> bool {
    let r = rules(&format!(
        "[[rules]]\nname = \"r\"\nwhen = {when}\nthen = {{ action = \"log\" }}\n"
    ));
    check(&r[0].when, &facts()).matched
}

#[test]
fn every_condition_kind() {
    assert!(matches("{ client_ip = \"203.0.113.0/24\" }"));
    assert!(!matches(
        "{ client_ip = [\"198.51.100.0/24\", \"10.0.0.1\"] }"
    ));
    assert!(matches(
        "{ reverse_name = { glob = \"*.partner.example\" } }"
    ));
    assert!(matches("{ helo = \"MAIL.PARTNER.EXAMPLE\" }"));
    assert!(!matches("{ auth_user = { regex = \".\" } }"));
    assert!(matches("{ direction = \"inbound\" }"));
    assert!(!matches("{ direction = \"outbound\" }"));
    assert!(matches("{ sender = \"billing@partner.example\" }"));
    assert!(matches(
        "{ sender_domain = [\"a.example\", \"partner.example\"] }"
    ));
    assert!(matches("{ recipient = { regex = \"^bob@\" } }"));
    assert!(matches("{ recipient_domain = \"ours.example\" }"));
    assert!(matches(
        "{ header = { name = \"x-mailer\", regex = \"^Bulk\" } }"
    ));
    assert!(matches(
        "{ header = { name = \"X-Mailer\", value = \"BulkMailer 9.1\" } }"
    ));
    assert!(!matches(
        "{ header = { name = \"X-Absent\", glob = \"*\" } }"
    ));
    assert!(matches("{ subject = { glob = \"invoice *\" } }"));
    assert!(matches("{ from_name = { regex = \"(?i)billing\" } }"));
    assert!(matches("{ from_address = \"billing@partner.example\" }"));
    assert!(matches("{ body = { regex = \"https://pay\\\\.\" } }"));
    assert!(matches("{ size_over = \"40KiB\" }"));
    assert!(!matches("{ size_under = 1000 }"));
    assert!(matches("{ spf = [\"fail\", \"softfail\"] }"));
    assert!(
        matches("{ dkim = \"pass\" }"),
        "any signature's result counts"
    );
    assert!(matches(
        "{ dmarc = \"fail\", dmarc_policy = \"quarantine\" }"
    ));
    assert!(!matches("{ arc = \"pass\" }"), "not in the facts");
    assert!(matches("{ virus = true }"));
    assert!(matches("{ virus_name = { glob = \"*EICAR*\" } }"));
    assert!(matches("{ attachment_ext = [\".EXE\"] }"));
    assert!(matches("{ attachment_name = { glob = \"*.pdf.exe\" } }"));
    assert!(matches(
        "{ attachment_type = \"application/octet-stream\" }"
    ));
    assert!(matches(
        "{ any = [{ sender_domain = \"x.example\" }, { virus = true }] }"
    ));
    assert!(!matches(
        "{ any = [{ sender_domain = \"x.example\" }, { virus = false }] }"
    ));
    assert!(matches("{ not = { sender_domain = \"x.example\" } }"));
    assert!(!matches(
        "{ direction = \"inbound\", not = { virus = true } }"
    ));
}

#[test]
fn reasons_say_what_matched_and_what_did_not() {
    let r = rules(
        "[[rules]]\nname = \"r\"\nwhen = { sender_domain = { glob = \"*.example\" }, size_over = \"1MiB\" }\nthen = { action = \"log\" }\n",
    );
    let c = check(&r[0].when, &facts());
    assert!(!c.matched);
    assert_eq!(
        c.children[0].why,
        "sender_domain \"partner.example\" matches /(?i)^.*\\.example$/"
    );
    assert_eq!(c.children[1].why, "size 48000 bytes <= 1048576");
}

#[test]
fn order_stop_and_monitor() {
    let r = rules(
        r#"
[[rules]]
name = "tag"
when = { direction = "inbound" }
then = { action = "add_header", name = "X-Tag", value = "external" }

[[rules]]
name = "would-reject"
mode = "monitor"
when = { virus = true }
then = { action = "reject" }

[[rules]]
name = "hold"
when = { dmarc = "fail" }
then = { action = "quarantine", reason = "dmarc" }

[[rules]]
name = "never-reached"
when = {}
then = { action = "reject" }
"#,
    );
    let e = eval(&r, &facts(), false);
    assert!(matches!(&e.decision, Some((Action::Quarantine(_), rule)) if rule == "hold"));
    assert_eq!(e.changes.len(), 1);
    assert_eq!(
        e.monitored,
        vec!["would-reject: reject 550 5.7.1 rejected by policy rule would-reject"]
    );
    assert!(e.trace[3].check.is_none(), "stop after the final rule");
    assert_eq!(e.matched(), ["tag", "would-reject", "hold"]);

    // Globally in monitor mode nothing is decided or changed, and nothing stops.
    let e = eval(&r, &facts(), true);
    assert!(e.decision.is_none() && e.changes.is_empty());
    assert_eq!(e.monitored.len(), 4);

    // A non-final rule does not stop unless asked to.
    let r = rules(
        "[[rules]]\nname = \"a\"\nwhen = {}\nstop = true\nthen = { action = \"log\" }\n[[rules]]\nname = \"b\"\nwhen = {}\nthen = { action = \"discard\" }\n",
    );
    let e = eval(&r, &facts(), false);
    assert!(e.decision.is_none() && e.trace[1].check.is_none());
}

fn header(name: &str, value: &str) -> HeaderField {
    HeaderField {
        name: name.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

#[test]
fn header_actions_become_edits() {
    let headers = vec![
        header("Subject", " Invoice 42"),
        header("X-Spam", " yes"),
        header("X-Spam", " also"),
    ];
    let change = |a: Action| vec![(a, "r".to_owned())];
    assert_eq!(
        edits_for(
            &change(Action::PrefixSubject("[EXTERNAL]".into())),
            &headers
        ),
        vec![Edit::ChangeHeader {
            name: "Subject".into(),
            occurrence: 1,
            value: "[EXTERNAL] Invoice 42".into()
        }]
    );
    // Not doubled.
    let tagged = vec![header("Subject", " [EXTERNAL] Invoice 42")];
    assert!(edits_for(&change(Action::PrefixSubject("[EXTERNAL]".into())), &tagged).is_empty());
    assert_eq!(
        edits_for(&change(Action::RemoveHeader("x-spam".into())), &headers),
        vec![
            Edit::DeleteHeader {
                name: "x-spam".into(),
                occurrence: 2
            },
            Edit::DeleteHeader {
                name: "x-spam".into(),
                occurrence: 1
            }
        ]
    );
    assert_eq!(
        edits_for(
            &change(Action::SetHeader("X-Spam".into(), "no".into())),
            &headers
        ),
        vec![
            Edit::DeleteHeader {
                name: "X-Spam".into(),
                occurrence: 2
            },
            Edit::ChangeHeader {
                name: "X-Spam".into(),
                occurrence: 1,
                value: "no".into()
            }
        ]
    );
    assert_eq!(
        edits_for(
            &change(Action::AddRecipient("sec@ours.example".into())),
            &headers
        ),
        vec![Edit::AddRecipient {
            address: "<sec@ours.example>".into(),
            params: None
        }]
    );
}

#[test]
fn nothing_from_the_message_can_start_a_header_line() {
    // A Subject whose value carries a bare line break that is not folding.
    let headers = vec![header("Subject", " hi\nBcc: victim@example.com")];
    let edits = edits_for(
        &[(Action::PrefixSubject("[EXT]".into()), "r".into())],
        &headers,
    );
    let Edit::ChangeHeader { value, .. } = &edits[0] else {
        panic!("{edits:?}")
    };
    assert_eq!(value, "[EXT] hi Bcc: victim@example.com");
    // Folding is kept.
    let headers = vec![header("Subject", " a\n\tb")];
    let edits = edits_for(
        &[(Action::PrefixSubject("[EXT]".into()), "r".into())],
        &headers,
    );
    assert!(matches!(&edits[0], Edit::ChangeHeader { value, .. } if value == "[EXT] a\n\tb"));
}

#[test]
fn long_values_are_folded() {
    let value = "word ".repeat(40);
    let folded = fold("X-Long", value.trim());
    assert!(folded.lines().all(|l| l.len() <= 78), "{folded}");
    assert!(folded.contains("\n\t"));
    assert_eq!(folded.replace("\n\t", " "), value.trim());
}

#[test]
fn a_rate_limit_passes_its_burst_then_matches() {
    let config = parse_str(
        r#"
[[rate_limits]]
name = "per-sender"
key = "sender"
rate = "2/minute"

[[rules]]
name = "slow-down"
when = { rate_limit = "per-sender" }
then = { action = "tempfail", text = "4.7.1 too many messages" }
"#,
        None,
    )
    .unwrap();
    assert_eq!(config.rate_limits[0].burst, 2);
    let limiter = Limiter::new(100_000);
    let now = std::time::Instant::now();
    let rates = Rates {
        limits: &config.rate_limits,
        limiter: &limiter,
        now,
        counted: None,
    };
    let decided = |f: &Facts| {
        evaluate(&config.rules, f, false, &rates, false)
            .decision
            .is_some()
    };
    let f = facts();
    assert!(!decided(&f));
    assert!(!decided(&f));
    assert!(decided(&f), "the third within the minute");
    let mut other = facts();
    other.sender = "someone@else.example".into();
    assert!(!decided(&other));
    let e = evaluate(&config.rules, &f, false, &rates, true);
    let why = &e.trace[0].check.as_ref().unwrap().children[0].why;
    assert!(
        why.starts_with("rate limit per-sender exceeded for sender \"billing@partner.example\""),
        "{why}"
    );
}

#[test]
fn facts_come_from_the_parsed_message() {
    use crate::transaction::Transaction;
    let body = "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<p>Verify at <a href=\"https://login.evil.test/\">paypal.com</a></p>\r\n\
--b\r\nContent-Type: application/zip; name=\"docs.zip\"\r\n\
Content-Disposition: attachment; filename=\"docs.zip\"\r\n\r\nPK\r\n--b--\r\n";
    let tx = Transaction {
        headers: vec![
            header("From", " =?utf-8?q?Jos=C3=A9_from_IT?= <jose@it-help.test>"),
            header("Subject", " =?utf-8?b?UGFzc3dvcmQgZXhwaXJ5?="),
            header("MIME-Version", " 1.0"),
            header("Content-Type", " multipart/mixed; boundary=\"b\""),
        ],
        headers_exact: true,
        body: Bytes::from(body),
        body_size: body.len() as u64,
        ..Default::default()
    };
    let direction = crate::direction::Direction::Inbound("192.0.2.1".parse().unwrap());
    let f = Facts::gather(
        &tx,
        &direction,
        None,
        None,
        Some(Content {
            message: &tx.message(),
            archive_depth: 2,
        }),
    );
    assert_eq!(f.subject, "Password expiry");
    assert_eq!(f.from_name, ["José from IT"]);
    assert_eq!(f.from_address, ["jose@it-help.test"]);
    assert_eq!(f.attachments.len(), 1);
    assert_eq!(
        (
            f.attachments[0].ext.as_str(),
            f.attachments[0].mime.as_str()
        ),
        ("zip", "application/zip")
    );
    assert!(
        f.links
            .iter()
            .any(|l| l.text_mismatch() && l.host == "login.evil.test")
    );
    assert!(f.body.contains("Verify at"));
}

#[test]
fn display_name_impersonation_from_outside() {
    let when =
        "{ impersonates = { names = [\"Jane Doe\", \"Payroll\"], domains = [\"ours.example\"] } }";
    let r = rules(&format!(
        "[[rules]]\nname = \"r\"\nwhen = {when}\nthen = {{ action = \"log\" }}\n"
    ));
    let from = |name: &str, addr: &str| {
        let mut f = facts();
        f.from_name = vec![name.into()];
        f.from_address = vec![addr.into()];
        check(&r[0].when, &f)
    };
    let c = from("JANE  DOE (CEO)", "jane.doe.ceo@gmail.example");
    assert!(c.matched, "{c:?}");
    assert!(
        c.children[0].why.contains("protected name \"janedoe\""),
        "{c:?}"
    );
    assert!(from("ours.example IT desk", "it@helpdesk.test").matched);
    assert!(from("Payroll-Team", "x@payroll.test").matched);
    assert!(
        !from("Jane Doe", "jane@ours.example").matched,
        "the real one"
    );
    assert!(
        !from("Jane Doe", "jane@mail.ours.example").matched,
        "our subdomain"
    );
    assert!(!from("John Smith", "john@partner.example").matched);
}

#[test]
fn names_inside_a_zip_attachment_are_attachment_facts() {
    use crate::transaction::Transaction;
    use base64::Engine as _;
    let zip = crate::content::archive::test_zip(&[("report.pdf.exe", b"MZ\x90\x00")]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let body = format!(
        "--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"docs.zip\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let tx = Transaction {
        headers: vec![
            header("MIME-Version", " 1.0"),
            header("Content-Type", " multipart/mixed; boundary=\"b\""),
        ],
        headers_exact: true,
        body_size: body.len() as u64,
        body: Bytes::from(body),
        ..Default::default()
    };
    let direction = crate::direction::Direction::Inbound("192.0.2.1".parse().unwrap());
    let f = Facts::gather(
        &tx,
        &direction,
        None,
        None,
        Some(Content {
            message: &tx.message(),
            archive_depth: 2,
        }),
    );
    let zip_fact = f.attachments.iter().find(|a| a.name == "docs.zip").unwrap();
    assert_eq!(
        zip_fact.detected.as_deref(),
        Some("application/zip"),
        "sniffed, though declared octet-stream"
    );
    let inner = f.attachments.iter().find(|a| a.inside.is_some()).unwrap();
    assert_eq!(
        (inner.name.as_str(), inner.ext.as_str()),
        ("report.pdf.exe", "exe")
    );
    assert_eq!(inner.inside.as_deref(), Some("docs.zip"));
    let r = rules(
        "[[rules]]\nname = \"r\"\nwhen = { attachment_ext = \"exe\" }\nthen = { action = \"log\" }\n",
    );
    assert!(check(&r[0].when, &f).matched);
}
