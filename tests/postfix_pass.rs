//! Mail through a real Postfix with mailwarden as its milter arrives at the sink with
//! the trace header, over SMTP (smtpd_milters) and by local submission
//! (non_smtpd_milters), and each decision is logged with the queue id.

mod common;

use common::{fixture, postfix_stack, require};

#[test]
fn smtp_mail_passes_with_the_trace_header_and_a_decision_log_line() {
    let Some((_dir, mw, postfix)) = postfix_stack("mw-pass", "") else {
        return;
    };

    let message = std::fs::read(fixture("postfix_pass/plain.eml")).unwrap();
    let outcome = postfix.send(&message);
    assert!(outcome.accepted(), "{outcome:?}\n{}", postfix.maillog());
    let queue_id = outcome.queue_id().expect("queue id");

    let delivered = postfix.wait_delivered("<pass-1@sender.test>");
    assert_eq!(
        delivered.header("X-Mailwarden"),
        Some(format!("{} {queue_id}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        delivered.header("Subject").as_deref(),
        Some("Your account is ready")
    );

    let line = mw.decision_line(&queue_id);
    for field in [
        "message decided",
        "client_ip=\"127.0.0.1\"",
        "from=\"alice@sender.test\"",
        "rcpt=\"bob@dest.test\"",
        "verdict=\"accept\"",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field:?} missing from {line}");
    }
}

#[test]
fn locally_submitted_mail_goes_through_non_smtpd_milters() {
    if !require("sendmail", "postfix") {
        return;
    }
    let Some((_dir, mw, postfix)) = postfix_stack("mw-local", "") else {
        return;
    };

    let message = std::fs::read(fixture("postfix_pass/local.eml")).unwrap();
    postfix.sendmail("alice@sender.test", "bob@dest.test", &message);

    let delivered = postfix.wait_delivered("<local-1@sender.test>");
    let trace = delivered
        .header("X-Mailwarden")
        .expect("trace header on locally submitted mail");
    assert!(trace.starts_with(env!("CARGO_PKG_VERSION")), "{trace}");
    let queue_id = trace.split(' ').nth(1).unwrap_or_default().to_owned();
    assert!(!queue_id.is_empty() && queue_id != "unknown", "{trace}");
    assert!(mw.decision_line(&queue_id).contains("verdict=\"accept\""));
}
