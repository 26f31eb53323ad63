//! With mailwarden stopped, Postfix applies `milter_default_action = tempfail`: the
//! client gets a 4xx, nothing is delivered, and the client will retry later.

mod common;

use std::time::Duration;

use common::{fixture, postfix_stack};

#[test]
fn stopped_milter_means_tempfail_not_delivery() {
    let Some((_dir, mut mw, postfix)) = postfix_stack("mw-down", "") else {
        return;
    };
    let message = std::fs::read(fixture("postfix_pass/plain.eml")).unwrap();

    let before = postfix.send(&message);
    assert!(before.accepted(), "with mailwarden up: {before:?}");
    postfix.wait_delivered("<pass-1@sender.test>");

    let status = mw.stop().expect("mailwarden exits on SIGTERM");
    assert!(
        status.success(),
        "clean exit after SIGTERM: {status:?}\n{}",
        mw.log()
    );

    let down = postfix.send(&message);
    assert_eq!(down.last.code, 451, "{down:?}");
    assert!(down.last.text.contains("4.7.1"), "{down:?}");

    std::thread::sleep(Duration::from_secs(2));
    postfix.flush();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        postfix.delivered().len(),
        1,
        "nothing was delivered while the milter was down"
    );
    assert!(
        postfix.maillog().contains("milter"),
        "Postfix logged the milter failure"
    );
}
