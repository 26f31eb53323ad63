//! ValiMail's ARC validation suite (171 tests in 10 scenarios, MIT), each scenario's
//! `txt-records` served by knot, the chain validation status (`cv`) compared with
//! our `arc=` result. Three tests have an empty `cv`; RFC 8617 §5.2 makes those
//! chains fail, so that is what they are held to.

use serde_json::Value;

use crate::tally::Tally;
use crate::world::{Envelope, World};
use crate::zone::Zone;

#[test]
fn arc_valimail() {
    if !crate::world::knot_present() {
        return;
    }
    let path = crate::common::fixture("fixtures/conformance/arc-valimail/validation-tests.json");
    let suite: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("suite")).expect("JSON");
    let mut tally = Tally::new("arc-valimail");
    for (n, scenario) in suite.as_array().expect("scenarios").iter().enumerate() {
        let mut zone = Zone::default();
        for (owner, value) in scenario["txt-records"].as_object().expect("txt-records") {
            zone.txt(owner, value.as_str().expect("TXT").as_bytes());
        }
        let world = World::start(&format!("arc{n}"), &zone, Vec::new(), "", "");
        for (id, test) in scenario["tests"].as_object().expect("tests") {
            let message = test["message"]
                .as_str()
                .expect("message")
                .replace("\r\n", "\n")
                .replace('\n', "\r\n");
            let played = world.play(&Envelope {
                ip: "192.0.2.1",
                helo: "test.example",
                mail_from: "sender@example.org",
                message: message.as_bytes(),
            });
            let ours = played
                .of("arc")
                .first()
                .map_or("(none)".to_owned(), |m| m.result.clone());
            let expected = match test["cv"].as_str().map(str::trim) {
                Some("") | None => "fail".to_owned(),
                Some(cv) => cv.to_ascii_lowercase(),
            };
            let _ = tally.case(id, &expected, &ours);
        }
    }
    tally.finish(169);
}
