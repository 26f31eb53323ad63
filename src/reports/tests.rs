//! The store, the aggregation and the report documents, on a temporary file.

use super::aggregate::{Reporter, xml};
use super::mail::redact_local_parts;
use super::row::Row;
use super::store::Store;

fn row(t: i64, ip: &str, disposition: &'static str) -> Row {
    Row {
        t,
        policy_domain: "example.com".into(),
        header_from: "example.com".into(),
        source_ip: ip.into(),
        envelope_from: "example.com".into(),
        envelope_to: "example.net".into(),
        disposition,
        dkim_aligned: disposition == "pass",
        spf_aligned: false,
        override_type: None,
        override_comment: None,
        spf: "example.com mfrom fail".into(),
        dkim: "example.com s1 pass;other.example sel fail".into(),
        policy: "p=reject;np=quarantine;adkim=r;aspf=r;psd=u;t=n;fo=0".into(),
        discovery: "treewalk",
        rua: "dmarc@example.com!10485760".into(),
    }
}

#[test]
fn rows_aggregate_by_identical_record_and_are_gone_once_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("r.db")).expect("open");
    let day = 86_400;
    let mut rows = vec![row(day + 10, "192.0.2.1", "pass"); 3];
    rows.push(row(day + 20, "192.0.2.2", "reject"));
    rows.push(row(2 * day + 5, "192.0.2.1", "pass"));
    store.insert(&rows).expect("insert");
    // At 2 days + 100 s, only the first day is finished.
    let due = store.periods(2 * day + 100, day, false).expect("periods");
    assert_eq!(due.periods.len(), 1);
    let p = &due.periods[0];
    assert_eq!((p.begin, p.end), (day, 2 * day));
    let counts: Vec<(&str, u64)> = p
        .groups
        .iter()
        .map(|g| (g.row.source_ip.as_str(), g.count))
        .collect();
    assert_eq!(counts, [("192.0.2.1", 3), ("192.0.2.2", 1)]);
    store.commit(&due, &[], 0).expect("commit");
    let again = store.periods(2 * day + 100, day, false).expect("periods");
    assert!(again.periods.is_empty());
    // --all takes the unfinished day, from its first row to now.
    let all = store
        .periods(2 * day + 100, day, true)
        .expect("periods")
        .periods;
    assert_eq!(
        (all.len(), all[0].begin, all[0].end),
        (1, 2 * day + 5, 2 * day + 101)
    );
}

#[test]
fn the_report_is_rfc_9990_xml_with_counts_and_selectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("r.db")).expect("open");
    store
        .insert(&[
            row(100, "192.0.2.1", "reject"),
            row(101, "192.0.2.1", "reject"),
        ])
        .expect("insert");
    let p = &store
        .periods(1_000_000, 86_400, false)
        .expect("periods")
        .periods[0];
    let doc = xml(
        p,
        &Reporter {
            org_name: "Receiver & Co",
            email: "dmarc@receiver.example",
        },
    );
    for needle in [
        "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">",
        "<org_name>Receiver &amp; Co</org_name>",
        "<begin>0</begin>",
        "<end>86399</end>",
        "<discovery_method>treewalk</discovery_method>",
        "<np>quarantine</np>",
        "<psd>u</psd>",
        "<testing>n</testing>",
        "<count>2</count>",
        "<disposition>reject</disposition>",
        "<selector>s1</selector>",
        "<scope>mfrom</scope>",
        "<envelope_to>example.net</envelope_to>",
    ] {
        assert!(doc.contains(needle), "{needle} missing in\n{doc}");
    }
}

#[test]
fn local_parts_are_redacted() {
    assert_eq!(
        redact_local_parts("From: \"A B\" <a.b+x@example.com>, c@d.example\r\n"),
        "From: \"A B\" <redacted@example.com>, redacted@d.example\r\n"
    );
}

#[test]
fn a_report_goes_to_at_most_max_destinations_and_never_over_a_size_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("r.db")).expect("open");
    let mut r = row(100, "192.0.2.1", "pass");
    r.rua = "a@example.com,b@example.com!100,c@example.com".into();
    store.insert(&[r]).expect("insert");
    let p = &store
        .periods(1_000_000, 86_400, false)
        .expect("periods")
        .periods[0];
    let mut config = crate::config::parse_str("[reports]\n", None)
        .expect("config")
        .reports
        .expect("reports");
    let who = Reporter {
        org_name: "r",
        email: "dmarc@receiver.example",
    };
    let mails = super::send::mails_for(p, &config, &who, "receiver.example", 0);
    let got: Vec<(&str, &str)> = mails
        .iter()
        .map(|m| (m.destination.as_str(), m.state))
        .collect();
    // Two destinations at most (the default); b@ allows 100 bytes only.
    assert_eq!(
        got,
        [("a@example.com", "pending"), ("b@example.com", "too-large")]
    );
    config.max_report_size = 10;
    let mails = super::send::mails_for(p, &config, &who, "receiver.example", 0);
    assert!(mails.iter().all(|m| m.state == "too-large"));
}
