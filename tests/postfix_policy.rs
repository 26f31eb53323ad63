//! `[[rules]]` through a real Postfix: a reject rule's own code and text reach the
//! SMTP client; prefix_subject and add_header are at the sink; add_recipient sends a
//! copy to the security mailbox; a monitor-mode reject delivers and logs what it
//! would have done; a rule can overturn the built-in DMARC refusal for a partner.

mod common;

use common::smtp::Peer;

const RULES: &str = r#"
[[rules]]
name = "no-executables"
when = { attachment_ext = ["exe", "scr"] }
then = { action = "reject", code = 554, text = ["5.7.1 executable attachments are not accepted", "send a link instead"] }

[[rules]]
name = "watch-invoices"
mode = "monitor"
when = { subject = { regex = "(?i)urgent invoice" } }
then = { action = "reject", text = "5.7.1 looks like invoice fraud" }

[[rules]]
name = "external-tag"
when = { direction = "inbound" }
then = [
  { action = "prefix_subject", prefix = "[EXTERNAL]" },
  { action = "add_header", name = "X-Mailwarden-Rule", value = "external-tag" },
]

[[rules]]
name = "copy-to-security"
when = { subject = { glob = "*password*" } }
then = { action = "add_recipient", address = "security@dest.test" }
"#;

const OUTSIDE: Peer<'static> = Peer {
    addr: "192.0.2.10",
    name: "mail.sender.test",
    helo: "mail.sender.test",
    login: None,
};

fn message(id: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@sender.test>\r\nMIME-Version: 1.0\r\n{extra}\r\nHello.\r\n"
    )
    .into_bytes()
}

#[test]
fn rules_reject_tag_copy_and_monitor_through_postfix() {
    let Some((_dir, _knot, mw, postfix)) = common::auth_stack("mw-policy", RULES) else {
        return;
    };

    // Reject with the rule's own code, enhanced code and both lines.
    let exe = message(
        "pol-exe",
        "tool",
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n\
         --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"setup.EXE\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--",
    );
    let out = postfix.send_as(OUTSIDE, "alice@sender.test", &exe);
    assert_eq!(out.last.code, 554, "{out:?}\n{}", mw.log());
    assert!(
        out.last
            .text
            .contains("554-5.7.1 executable attachments are not accepted")
            && out.last.text.contains("554 5.7.1 send a link instead"),
        "{out:?}"
    );

    // Tagged at the sink; a monitor rule that would reject lets it through.
    let out = postfix.send_as(
        OUTSIDE,
        "alice@sender.test",
        &message("pol-tag", "URGENT invoice overdue", ""),
    );
    assert!(out.accepted(), "{out:?}\n{}", mw.log());
    let delivered = postfix.wait_delivered("<pol-tag@sender.test>");
    assert_eq!(
        delivered.header("Subject").as_deref(),
        Some("[EXTERNAL] URGENT invoice overdue")
    );
    assert_eq!(
        delivered.header("X-Mailwarden-Rule").as_deref(),
        Some("external-tag")
    );
    let line = mw.decision_line(&out.queue_id().unwrap());
    assert!(
        line.contains("monitor watch-invoices: reject 550 5.7.1 looks like invoice fraud"),
        "{line}"
    );
    assert!(line.contains("verdict=\"accept\""), "{line}");

    // A copy to the security mailbox: one more envelope recipient.
    let out = postfix.send_as(
        OUTSIDE,
        "alice@sender.test",
        &message("pol-copy", "Reset your password", ""),
    );
    assert!(out.accepted(), "{out:?}");
    let delivered = postfix.wait_delivered("<pol-copy@sender.test>");
    let raw = String::from_utf8_lossy(&delivered.raw).into_owned();
    assert!(
        raw.contains("security@dest.test") && raw.contains("bob@dest.test"),
        "{raw}"
    );
    // Internal mail is not tagged.
    let out = postfix.send(&message("pol-internal", "lunch", ""));
    assert!(out.accepted(), "{out:?}");
    let delivered = postfix.wait_delivered("<pol-internal@sender.test>");
    assert_eq!(delivered.header("Subject").as_deref(), Some("lunch"));
}

#[test]
fn a_rule_can_accept_what_dmarc_would_reject() {
    let rule = "[[rules]]\nname = \"partner-relay\"\n\
                when = { client_ip = \"192.0.2.77\", dmarc = \"fail\" }\n\
                then = [{ action = \"add_header\", name = \"X-Partner\", value = \"dmarc-fail-accepted\" }, { action = \"accept\" }]\n";
    let Some((_dir, _knot, mw, postfix)) = common::auth_stack("mw-policy-dmarc", rule) else {
        return;
    };
    let forged = String::from_utf8(message("pol-dmarc", "hello", ""))
        .unwrap()
        .replace("From: alice@sender.test", "From: ceo@reject.dmarc.test");
    let relay = Peer {
        addr: "192.0.2.77",
        name: "relay.partner.test",
        helo: "relay.partner.test",
        login: None,
    };
    let out = postfix.send_as(relay, "bounce@other.test", forged.as_bytes());
    assert!(out.accepted(), "{out:?}\n{}", mw.log());
    let delivered = postfix.wait_delivered("<pol-dmarc@sender.test>");
    assert_eq!(
        delivered.header("X-Partner").as_deref(),
        Some("dmarc-fail-accepted")
    );
    let line = mw.decision_line(&out.queue_id().unwrap());
    assert!(
        line.contains("dmarc=fail") && line.contains("rule partner-relay decided: accept"),
        "{line}"
    );
    // Without the rule's client, the same message is refused.
    let out = postfix.send_as(OUTSIDE, "bounce@other.test", forged.as_bytes());
    assert_eq!(out.last.code, 550, "{out:?}");
}

#[test]
fn a_rate_limit_of_three_per_minute_tempfails_the_fourth() {
    let rules = "[[rate_limits]]\nname = \"per-user\"\nkey = \"auth_user\"\nrate = \"3/minute\"\n\n\
                 [[rules]]\nname = \"slow-down\"\nwhen = { rate_limit = \"per-user\" }\n\
                 then = { action = \"tempfail\", text = \"4.7.1 too many messages from this account, try later\" }\n";
    let Some((_dir, _knot, mw, postfix)) = common::auth_stack("mw-policy-rate", rules) else {
        return;
    };
    let app = Peer {
        addr: "192.0.2.50",
        name: "app.customer.test",
        helo: "app.customer.test",
        login: Some("app-mailer"),
    };
    for i in 0..3 {
        let out = postfix.send_as(
            app,
            "app@sender.test",
            &message(&format!("rate-{i}"), "code", ""),
        );
        assert!(out.accepted(), "message {i}: {out:?}\n{}", mw.log());
    }
    let out = postfix.send_as(app, "app@sender.test", &message("rate-3", "code", ""));
    assert_eq!(out.last.code, 451, "{out:?}");
    assert!(
        out.last
            .text
            .contains("4.7.1 too many messages from this account"),
        "{out:?}"
    );
    // Another account has its own bucket.
    let other = Peer {
        login: Some("other-app"),
        ..app
    };
    let out = postfix.send_as(
        other,
        "other@sender.test",
        &message("rate-other", "code", ""),
    );
    assert!(out.accepted(), "{out:?}");
}

#[test]
fn strip_attachments_delivers_valid_mime_with_a_notice() {
    let rules = "[[rules]]\nname = \"strip-scripts\"\nwhen = { attachment_ext = [\"js\", \"vbs\"] }\n\
                 then = { action = \"strip_attachments\", ext = [\"js\", \"vbs\"] }\n";
    let Some((_dir, _knot, mw, postfix)) = common::auth_stack("mw-policy-strip", rules) else {
        return;
    };
    let attachment = |name: &str, ct: &str, data: &str| {
        format!(
            "--b\r\nContent-Type: {ct}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{data}\r\n"
        )
    };
    let body = format!(
        "--b\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n{}{}--b--\r\n",
        attachment(
            "invoice.js",
            "application/javascript",
            "d2luZG93cy5sb2NhdGlvbj0iZXZpbCI7"
        ),
        attachment("terms.pdf", "application/pdf", "JVBERi0xLjQKJSVFT0YK"),
    );
    let message = message(
        "pol-strip",
        "files",
        &format!("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n{body}"),
    );
    let out = postfix.send_as(OUTSIDE, "alice@sender.test", &message);
    assert!(out.accepted(), "{out:?}\n{}", mw.log());
    let delivered = postfix.wait_delivered("<pol-strip@sender.test>");
    let parsed = mail_parser::MessageParser::default()
        .parse(&delivered.raw)
        .expect("mail-parser parses the rebuilt message");
    let names: Vec<&str> = parsed
        .attachments()
        .filter_map(|p| mail_parser::MimeHeaders::attachment_name(p))
        .collect();
    assert_eq!(
        names,
        ["terms.pdf"],
        "{}",
        String::from_utf8_lossy(&delivered.raw)
    );
    let texts: Vec<String> = (0..parsed.text_body_count())
        .filter_map(|i| parsed.body_text(i).map(|t| t.into_owned()))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("removed the attachment \"invoice.js\"")),
        "{texts:?}"
    );
    let line = mw.decision_line(&out.queue_id().unwrap());
    assert!(line.contains("stripped attachments: invoice.js"), "{line}");
}
