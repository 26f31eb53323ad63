//! A body with 8-bit data, 990-byte lines, lines that need dot-stuffing and no final
//! line end crosses Postfix and mailwarden unchanged: mailwarden never touches a body.

mod common;

use common::{fixture, postfix_stack, smtp};

#[test]
fn body_arrives_byte_for_byte() {
    let Some((_dir, _mw, postfix)) = postfix_stack("mw-body", "") else {
        return;
    };

    let message = std::fs::read(fixture("postfix_body_intact/eightbit.eml")).unwrap();
    let outcome = postfix.send(&message);
    assert!(outcome.accepted(), "{outcome:?}");

    let delivered = postfix.wait_delivered("<intact-1@sender.test>");
    assert!(
        delivered.header("X-Mailwarden").is_some(),
        "the milter saw this message"
    );

    // What we sent, as lines: SMTP ends the last line, the sink stores LF line ends
    // and ends its file with one more LF.
    let sent_body = &message[message.windows(2).position(|w| w == b"\n\n").unwrap() + 2..];
    let mut expected = Vec::new();
    for line in smtp::lines(sent_body) {
        expected.extend_from_slice(line);
        expected.push(b'\n');
    }
    expected.push(b'\n');
    let got = delivered.body();
    if got != expected.as_slice() {
        let at = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "body differs at byte {at} (got {} bytes, expected {}):\n got: {:?}\nwant: {:?}",
            got.len(),
            expected.len(),
            String::from_utf8_lossy(&got[at.saturating_sub(40)..(at + 40).min(got.len())]),
            String::from_utf8_lossy(
                &expected[at.saturating_sub(40)..(at + 40).min(expected.len())]
            ),
        );
    }
}
