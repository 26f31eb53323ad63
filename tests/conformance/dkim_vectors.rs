//! DKIM vectors nobody here wrote: the cases assembled from mail-auth, dkimpy and
//! OpenDKIM in `tests/fixtures/conformance/dkim-vectors` (see its SOURCE.txt and
//! licenses/), each with exactly its own DNS records (a `TIMEOUT` record is a
//! query the filter never answers), and the one case that pins the clock
//! (`verify_at`: its signature has an x=) played with the daemon's clock set
//! there by libfaketime.

use serde_json::Value;

use crate::common::dns_fault::Drop;
use crate::dkim_perl::overall;
use crate::tally::Tally;
use crate::world::{Envelope, FAKETIME_LIB, World};
use crate::zone::Zone;

#[test]
fn dkim_vectors() {
    if !crate::world::knot_present() {
        return;
    }
    let clock_ok = std::path::Path::new(FAKETIME_LIB).exists();
    assert!(
        clock_ok || std::env::var("CI").as_deref() != Ok("true"),
        "{FAKETIME_LIB} is missing (apt package libfaketime); CI=true never skips a case"
    );
    let dir = crate::common::fixture("fixtures/conformance/dkim-vectors");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    let mut tally = Tally::new("dkim-vectors");
    for case in manifest.as_array().expect("cases") {
        let id = case["id"].as_str().expect("id");
        let clock = case["verify_at"].as_u64();
        if clock.is_some() && !clock_ok {
            tally.skip(id, "pins the clock; libfaketime is not installed");
            continue;
        }
        let mut zone = Zone::default();
        let mut drops = Vec::new();
        for (owner, value) in case["dns_txt"].as_object().expect("dns_txt") {
            match value.as_str().expect("TXT") {
                "TIMEOUT" => drops.push((owner.clone(), 0, Drop::Silent)),
                "NXDOMAIN" => {}
                text => zone.txt(owner, text.as_bytes()),
            }
        }
        let world = World::start_at(id, &zone, drops, "", "", clock);
        let raw =
            std::fs::read(dir.join(case["message"].as_str().expect("message"))).expect("message");
        let played = world.play(&Envelope {
            ip: "192.0.2.1",
            helo: "mail.example.net",
            mail_from: "sender@example.net",
            message: &raw,
        });
        let results: Vec<String> = played.of("dkim").iter().map(|m| m.result.clone()).collect();
        let _ = tally.case(
            id,
            case["expected"].as_str().expect("expected"),
            &overall(&results),
        );
    }
    tally.finish(26);
}
