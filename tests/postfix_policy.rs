//! `[[rules]]` through a real Postfix, one scenario folder each under
//! `tests/scenarios/`: a reject rule's own code and text reach the SMTP client;
//! prefix_subject and add_header are at the sink; add_recipient sends a copy to the
//! security mailbox; a monitor-mode reject delivers and logs what it would have
//! done; a rule can overturn the built-in DMARC refusal for a partner; a rate limit
//! tempfails the fourth message; strip_attachments leaves valid MIME.

mod common;

use common::scenario::{Components, Scenario};

const KNOT: Components = Components {
    knot: true,
    clamd: false,
};

#[test]
fn rules_reject_tag_copy_and_monitor_through_postfix() {
    let Some(stack) = Scenario::new("policy_rules").start(KNOT) else {
        return;
    };
    stack.play("exe");
    stack.play("nested-zip");
    stack.play("invoice");
    stack.play("password");
    stack.play("internal");
}

#[test]
fn a_rule_can_accept_what_dmarc_would_reject() {
    let Some(stack) = Scenario::new("policy_partner_relay").start(KNOT) else {
        return;
    };
    stack.play("partner");
    stack.play("other");
}

#[test]
fn a_rate_limit_of_three_per_minute_tempfails_the_fourth() {
    let Some(stack) = Scenario::new("policy_rate_limit").start(KNOT) else {
        return;
    };
    for i in 0..4 {
        stack.play(&format!("app-{i}"));
    }
    stack.play("other-account");
}

#[test]
fn strip_attachments_delivers_valid_mime_with_a_notice() {
    let Some(stack) = Scenario::new("policy_strip_attachments").start(KNOT) else {
        return;
    };
    stack.play("files");
    let delivered = stack.postfix.wait_delivered("<pol-strip@sender.test>");
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
}

#[test]
fn an_accept_rule_without_skip_leaves_a_dmarc_reject_standing() {
    let Some(stack) = Scenario::new("policy_rule_cannot_lift_dmarc").start(KNOT) else {
        return;
    };
    stack.play("partner");
    assert!(
        stack.mw.wait_for_log(
            "the dmarc verdict stands",
            1,
            std::time::Duration::from_secs(5)
        ),
        "{}",
        stack.mw.log()
    );
}
