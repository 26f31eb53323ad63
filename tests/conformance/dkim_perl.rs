//! Mail::DKIM's verifier corpus (79 messages, 2006–2010 era) with its FAKE_DNS.dat,
//! against `cases.json`'s RFC 6376 + RFC 8301 expectations (most of these use
//! rsa-sha1 or short keys, which must not pass today; 17 are DomainKeys, which a
//! DKIM verifier ignores).

use serde_json::Value;

use crate::common::dns_fault::Drop;
use crate::tally::Tally;
use crate::world::{Envelope, World};
use crate::zone::Zone;

/// The message's DKIM outcome: its best result over all signatures.
pub fn overall(results: &[String]) -> String {
    const ORDER: [&str; 8] = [
        "pass",
        "policy",
        "fail",
        "temperror",
        "permerror",
        "neutral",
        "softfail",
        "none",
    ];
    ORDER
        .iter()
        .find(|r| results.iter().any(|x| x == *r))
        .map_or("none", |r| r)
        .to_owned()
}

#[test]
fn dkim_perl_mail_dkim() {
    if !crate::world::knot_present() {
        return;
    }
    let dir = crate::common::fixture("fixtures/conformance/dkim-perl-mail-dkim");
    let mut zone = Zone::default();
    let mut drops = Vec::new();
    let dns = std::fs::read_to_string(dir.join("FAKE_DNS.dat")).expect("FAKE_DNS.dat");
    for line in dns
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (owner, value) = line.split_once(' ').unwrap_or((line, ""));
        match value.trim() {
            "NXDOMAIN" => {}
            "~~Query timed out~~" => drops.push((owner.to_owned(), 0, Drop::Silent)),
            "~~SERVFAIL~~" => drops.push((owner.to_owned(), 0, Drop::ServFail)),
            "\"\"" => zone.txt(owner, b""),
            value => zone.txt(owner, value.as_bytes()),
        }
    }
    let world = World::start("dkimperl", &zone, drops, "", "");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases"))
            .expect("JSON");
    let mut tally = Tally::new("dkim-perl-mail-dkim");
    for case in cases.as_array().expect("cases") {
        let file = case["file"].as_str().expect("file");
        let raw = std::fs::read(dir.join(file)).expect("message");
        let played = world.play(&Envelope {
            ip: "192.0.2.1",
            helo: "test.example",
            mail_from: "",
            message: &raw,
        });
        let results: Vec<String> = played.of("dkim").iter().map(|m| m.result.clone()).collect();
        let expected = case["rfc6376_8301_expected"].as_str().expect("expected");
        let _ = tally.case(file, expected, &overall(&results));
    }
    tally.finish(74);
}
