//! The RFC 7208 test suite (pyspf's `rfc7208-tests.yml`, openspf.org's format, as
//! JSON) through the milter. Its DNS conventions, as pyspf's test driver applies
//! them: an `SPF` entry is also served as TXT unless the name has TXT entries of
//! its own (`TXT: NONE` means "no TXT"); `TIMEOUT` makes every query for a type
//! the name has no records of time out.

use serde_json::Value;

use crate::common::dns_fault::Drop;
use crate::tally::Tally;
use crate::world::{Envelope, World};
use crate::zone::Zone;

fn strings(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::String(s) => vec![latin1(s)],
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(latin1).collect(),
        _ => Vec::new(),
    }
}

/// The YAML held bytes; the JSON copy keeps them as Latin-1 code points.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

fn build(zonedata: &serde_json::Map<String, Value>) -> (Zone, Vec<(String, u16, Drop)>) {
    let mut zone = Zone::default();
    let mut drops = Vec::new();
    for (name, records) in zonedata {
        let records = records.as_array().expect("records");
        let has_txt = records.iter().any(|r| r.get("TXT").is_some());
        let mut kinds = Vec::new();
        let mut timeout = false;
        for record in records {
            if record.as_str() == Some("TIMEOUT") {
                timeout = true;
                continue;
            }
            let Some((kind, value)) = record.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            match kind.as_str() {
                "TXT" | "SPF" => {
                    if value.as_str() == Some("NONE") {
                        continue;
                    }
                    if kind == "SPF" && has_txt {
                        continue;
                    }
                    let parts = strings(value);
                    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                    zone.txt_strings(name, &refs);
                    kinds.push(16);
                }
                "A" => {
                    zone.add(name, "A", value.as_str().expect("A"));
                    kinds.push(1);
                }
                "AAAA" => {
                    zone.add(name, "AAAA", value.as_str().expect("AAAA"));
                    kinds.push(28);
                }
                "MX" => {
                    let pref = value[0].as_u64().expect("MX preference");
                    let host = value[1].as_str().expect("MX host");
                    let host = if host.is_empty() {
                        ".".to_owned()
                    } else {
                        crate::zone::owner_name(host)
                    };
                    zone.add(name, "MX", &format!("{pref} {host}"));
                    kinds.push(15);
                }
                "PTR" => {
                    zone.add(
                        name,
                        "PTR",
                        &crate::zone::owner_name(value.as_str().expect("PTR")),
                    );
                    kinds.push(12);
                }
                "CNAME" => {
                    zone.add(
                        name,
                        "CNAME",
                        &crate::zone::owner_name(value.as_str().expect("CNAME")),
                    );
                    kinds.push(5);
                }
                other => panic!("record type {other} in the SPF suite"),
            }
        }
        if timeout {
            for qtype in [1u16, 12, 15, 16, 28] {
                if !kinds.contains(&qtype) && !kinds.contains(&5) {
                    drops.push((name.clone(), qtype, Drop::Silent));
                }
            }
        }
    }
    (zone, drops)
}

#[test]
fn spf_rfc7208() {
    if !crate::world::knot_present() {
        return;
    }
    let path = crate::common::fixture("fixtures/conformance/spf-rfc7208/rfc7208-tests.json");
    let suite: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("suite")).expect("JSON");
    let mut tally = Tally::new("spf-rfc7208");
    for (n, scenario) in suite.as_array().expect("scenarios").iter().enumerate() {
        let (zone, drops) = build(scenario["zonedata"].as_object().expect("zonedata"));
        let world = World::start(
            &format!("spf{n}"),
            &zone,
            drops,
            "dmarc_enforce = false",
            "",
        );
        for (id, test) in scenario["tests"].as_object().expect("tests") {
            let helo = test["helo"].as_str().unwrap_or_default();
            let mail_from = test["mailfrom"].as_str().unwrap_or_default();
            let message = format!(
                "From: <{}>\r\nTo: <postmaster@harness.test>\r\nSubject: {id}\r\n\r\nSPF test.\r\n",
                if mail_from.contains('@') {
                    mail_from.to_owned()
                } else {
                    format!("postmaster@{helo}")
                }
            );
            let played = world.play(&Envelope {
                ip: test["host"].as_str().expect("host"),
                helo,
                mail_from,
                message: message.as_bytes(),
            });
            let expected = match &test["result"] {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("|"),
                _ => panic!("{id}: result"),
            };
            let ours = played.spf_mailfrom();
            let spf = played.of("spf");
            let reason = spf
                .iter()
                .find(|m| m.prop("smtp.mailfrom").is_some())
                .map_or("", |m| m.reason.as_str());
            // The explanation (§6.2) rides in our comment: "explanation: TEXT".
            let explained = reason.split_once("explanation: ").map(|(_, e)| e);
            let exp_ok = match test["explanation"].as_str() {
                None => true,
                Some("DEFAULT") => explained.is_none(),
                Some(text) => explained == Some(text),
            };
            let ours = if exp_ok {
                ours
            } else {
                format!("{ours} with explanation {explained:?}")
            };
            let _ = tally.case(id, &expected, &ours);
        }
    }
    tally.finish(202);
}
