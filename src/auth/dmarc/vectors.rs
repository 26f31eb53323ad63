//! OpenDMARC's unit tables (record parsing, alignment; vendored with their
//! licence in `tests/fixtures/conformance/dmarc-opendmarc/`) against our parser
//! and alignment, under both discovery methods. Where RFC 9989 gives a different
//! answer than OpenDMARC (written to RFC 7489 and its own leniencies), the case
//! is listed below with the rule; an unlisted difference, or a listed one that
//! no longer differs, fails.

use super::*;
use crate::auth::zone::Zone;

const TABLES: &str =
    include_str!("../../../tests/fixtures/conformance/dmarc-opendmarc/opendmarc-unit-tables.json");

/// Records OpenDMARC refuses or accepts where RFC 9989 §4.7 says otherwise.
const PARSE_DEVIATIONS: &[(&str, &str)] = &[
    (
        "v=DMARC1; p=n;",
        "p= must be none/quarantine/reject (§4.8 dmarc-request); no rua, so no record",
    ),
    (
        "v=DMARC1; p=none; adkim=bob;",
        "syntax errors outside p/sp/np are discarded for defaults (§4.7)",
    ),
    (
        "v=DMARC1; p=none; aspf=bob;",
        "syntax errors outside p/sp/np are discarded for defaults (§4.7)",
    ),
    (
        "v=DMARC1; p=none; rf=bob;",
        "rf was removed (§10.6); unknown tags are ignored",
    ),
    (
        "v=DMARC1; p=none; ri=bob;",
        "ri was removed (§10.6); unknown tags are ignored",
    ),
    (
        "v=DMARC1; p=none; pct=500;",
        "pct was removed (§10.6); unknown tags are ignored",
    ),
    (
        "v=DMARC1; p=none; rf=000000000000000000000000000000000",
        "rf was removed; ignored",
    ),
];

/// Alignment cases whose From domain our From parser never lets through.
const ALIGN_UNREACHABLE: &[&str] = &[".mac.com.", "....mac.com....", "mac...com"];

#[test]
fn opendmarc_record_tables() {
    let tables: serde_json::Value = serde_json::from_str(TABLES).expect("json");
    let mut seen = 0;
    for case in tables["record_parse"].as_array().expect("cases") {
        let text = case["record"].as_str().expect("record");
        let valid = case["valid"].as_bool().expect("valid");
        let ours = parse_record(text).is_ok();
        let listed = PARSE_DEVIATIONS.iter().any(|(t, _)| *t == text);
        assert_eq!(
            ours != valid,
            listed,
            "{text:?}: OpenDMARC {valid}, ours {ours}"
        );
        seen += 1;
    }
    assert_eq!(seen, 19);
}

#[test]
fn opendmarc_alignment_tables_under_both_discovery_methods() {
    let tables: serde_json::Value = serde_json::from_str(TABLES).expect("json");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut compared = 0;
    for case in tables["alignment"].as_array().expect("cases") {
        let from = case["from_domain"].as_str().expect("from");
        if ALIGN_UNREACHABLE.contains(&from) {
            continue;
        }
        let auth = case["auth_domain"].as_str().expect("auth");
        let strict = case["mode"] == "strict";
        let expected = case["aligned"].as_bool().expect("aligned");
        // The owners publish a record at their organizational domain, as a
        // domain that wants DMARC does; the walk finds organizational domains
        // from those records, the PSL from its list.
        let org = walk::psl_org_domain(from);
        let policy = format!(
            "TXT v=DMARC1; p=reject; adkim={}",
            if strict { "s" } else { "r" }
        );
        let zone = Zone::new(&[(&format!("_dmarc.{org}"), &policy)]);
        for discovery in [Discovery::TreeWalk, Discovery::Psl] {
            let ids = Identifiers {
                spf: (AuthResult::Fail, "unrelated.invalid"),
                dkim: vec![(AuthResult::Pass, auth)],
            };
            let e = rt.block_on(evaluate(&zone, from, &ids, discovery, |_| true));
            assert_eq!(
                e.dkim_aligned, expected,
                "{from} / {auth} ({}) under {discovery:?}: {}",
                case["mode"], e.reason
            );
        }
        compared += 1;
    }
    assert_eq!(compared, 7);
}
