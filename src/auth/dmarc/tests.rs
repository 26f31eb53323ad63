//! One test per RFC 9989 discovery and evaluation rule, with the RFC's own
//! examples, against an in-memory zone; then RFC 7489's answers under
//! `discovery = "psl"`.

use super::*;
use crate::auth::zone::Zone;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn record(text: &str) -> Record {
    parse_record(text).expect("record")
}

fn fails(spf_domain: &str) -> Identifiers<'_> {
    Identifiers {
        spf: (AuthResult::Fail, spf_domain),
        dkim: vec![],
    }
}

fn eval(zone: &Zone, from: &str, ids: &Identifiers<'_>) -> Evaluation {
    block_on(evaluate(zone, from, ids, Discovery::TreeWalk, |_| true))
}

/// The names the walk asked, by recording every TXT question.
struct Counting<'a>(&'a Zone, std::sync::Mutex<Vec<String>>);

impl Dns for Counting<'_> {
    async fn txt(&self, name: &str) -> crate::auth::lookup::Answer<Vec<u8>> {
        self.1.lock().expect("lock").push(name.to_owned());
        self.0.txt(name).await
    }
    async fn a(&self, name: &str) -> crate::auth::lookup::Answer<std::net::Ipv4Addr> {
        self.0.a(name).await
    }
    async fn aaaa(&self, name: &str) -> crate::auth::lookup::Answer<std::net::Ipv6Addr> {
        self.0.aaaa(name).await
    }
    async fn mx(&self, name: &str) -> crate::auth::lookup::Answer<String> {
        self.0.mx(name).await
    }
    async fn ptr(&self, ip: std::net::IpAddr) -> crate::auth::lookup::Answer<String> {
        self.0.ptr(ip).await
    }
    async fn exists(&self, name: &str) -> Result<bool, String> {
        self.0.exists(name).await
    }
}

#[test]
fn records_parse_as_rfc_9989_section_4_7_says() {
    let r = record(
        "v=DMARC1; p=reject; sp=none; np=quarantine; psd=n; t=y; adkim=s; aspf=r; fo=d:s; rua=mailto:a@example.com!10m, https://x.example/, mailto:b%40c@example.org; ri=3600; rf=afrf",
    );
    assert_eq!(
        (r.p, r.sp, r.np),
        (Policy::Reject, Some(Policy::None), Some(Policy::Quarantine))
    );
    assert_eq!(
        (r.psd, r.testing, r.adkim_strict, r.aspf_strict),
        (Psd::No, true, true, false)
    );
    assert_eq!(r.fo, "d:s");
    // Only mailto: URIs are kept; !10m is the size limit; %40 is decoded.
    assert_eq!(r.rua.len(), 2);
    assert_eq!(
        (r.rua[0].address.as_str(), r.rua[0].max_size),
        ("a@example.com", Some(10 << 20))
    );
    assert_eq!(r.rua[1].address, "b@c@example.org");
    // The version is case-sensitive and first.
    assert!(parse_record("v=dmarc1; p=reject").is_err());
    assert!(parse_record("p=reject; v=DMARC1").is_err());
    // No valid p: p=none with a valid rua, else no record (§4.10.1), and the
    // same for an invalid sp or np.
    assert!(parse_record("v=DMARC1").is_err());
    assert!(parse_record("v=DMARC1; p=bogus").is_err());
    assert!(parse_record("v=DMARC1; p=reject; sp=bogus").is_err());
    let r = record("v=DMARC1; p=reject; np=maybe; rua=mailto:d@example.com");
    assert_eq!((r.p, r.sp, r.np), (Policy::None, None, None));
    assert_eq!(record("v=DMARC1; rua=mailto:d@example.com").p, Policy::None);
    // psd and t default to u and n; an unknown value is the default.
    let r = record("v=DMARC1; p=none; psd=x; t=maybe; fo=9");
    assert_eq!(
        (r.psd, r.testing, r.fo.as_str()),
        (Psd::Unknown, false, "0")
    );
}

#[test]
fn the_walk_asks_at_most_eight_names_rfc_9989_section_4_4() {
    // Ten labels: the start, then seven labels, then one label at a time.
    let zone = Zone::new(&[]);
    let counting = Counting(&zone, Default::default());
    let from = "a.b.c.d.e.f.g.mail.example.com";
    let found = block_on(walk::walk(&counting, from)).expect("walk");
    assert!(found.is_empty());
    let asked = counting.1.into_inner().expect("lock");
    assert_eq!(
        asked,
        [
            "_dmarc.a.b.c.d.e.f.g.mail.example.com",
            "_dmarc.d.e.f.g.mail.example.com",
            "_dmarc.e.f.g.mail.example.com",
            "_dmarc.f.g.mail.example.com",
            "_dmarc.g.mail.example.com",
            "_dmarc.mail.example.com",
            "_dmarc.example.com",
            "_dmarc.com",
        ]
    );
    assert_eq!(asked.len(), walk::MAX_QUERIES);
}

#[test]
fn the_walk_stops_at_psd_n_and_at_psd_y_above_the_start() {
    let zone = Zone::new(&[
        ("_dmarc.a.mail.example.com", "TXT v=DMARC1; p=none; psd=y"),
        ("_dmarc.mail.example.com", "TXT v=DMARC1; p=reject; psd=n"),
        ("_dmarc.example.com", "TXT v=DMARC1; p=quarantine"),
    ]);
    // psd=y on the start does not stop the walk (§4.4 step 2), psd=n does.
    let found = block_on(walk::walk(&zone, "a.mail.example.com")).expect("walk");
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.mail.example.com", "mail.example.com"]);
    assert_eq!(
        walk::org_of_walk(&found, "a.mail.example.com"),
        "mail.example.com"
    );
}

#[test]
fn organizational_domains_by_the_rfc_9989_section_4_10_2_examples() {
    // "If there are DMARC records for _dmarc.mail.example.com and
    // _dmarc.example.com ... the Organizational Domain ... would be example.com."
    let zone = Zone::new(&[
        ("_dmarc.mail.example.com", "TXT v=DMARC1; p=none"),
        ("_dmarc.example.com", "TXT v=DMARC1; p=reject"),
    ]);
    let org = block_on(walk::org_domain(
        &zone,
        "a.mail.example.com",
        Discovery::TreeWalk,
    ));
    assert_eq!(org.as_deref(), Ok("example.com"));
    // "if a search ... only yields a DMARC record at _dmarc.com and that record
    // contains the tag psd=y, then the Organizational Domain ... example.com."
    let zone = Zone::new(&[("_dmarc.com", "TXT v=DMARC1; p=reject; psd=y")]);
    let org = block_on(walk::org_domain(
        &zone,
        "a.mail.example.com",
        Discovery::TreeWalk,
    ));
    assert_eq!(org.as_deref(), Ok("example.com"));
    // No record anywhere: the domain is its own organizational domain.
    let org = block_on(walk::org_domain(
        &Zone::new(&[]),
        "x.example.org",
        Discovery::TreeWalk,
    ));
    assert_eq!(org.as_deref(), Ok("x.example.org"));
}

#[test]
fn the_policy_comes_from_the_author_then_org_then_psd_domain() {
    let zone = Zone::new(&[
        (
            "_dmarc.example.com",
            "TXT v=DMARC1; p=reject; sp=quarantine; np=none",
        ),
        (
            "_dmarc.com",
            "TXT v=DMARC1; p=none; sp=reject; np=reject; psd=y",
        ),
        ("_dmarc.bank.com", "TXT v=DMARC1; p=quarantine"),
        ("www.example.com", "A 192.0.2.1"),
        ("other.com", "A 192.0.2.2"),
    ]);
    // The author domain's own record: p.
    let e = eval(&zone, "example.com", &fails("example.com"));
    assert_eq!(
        (e.result, e.requested),
        (AuthResult::Fail, Some(Policy::Reject))
    );
    // An existing subdomain: sp of the organizational domain.
    let e = eval(&zone, "www.example.com", &fails("www.example.com"));
    assert_eq!(e.requested, Some(Policy::Quarantine));
    assert_eq!(
        e.published.as_ref().map(|p| p.domain.as_str()),
        Some("example.com")
    );
    // A subdomain that does not exist (NXDOMAIN): np.
    let e = eval(&zone, "nope.example.com", &fails("nope.example.com"));
    assert_eq!(e.requested, Some(Policy::None));
    // An organizational domain without a record of its own: the PSD's policy
    // (sp for an existing name, np for one that does not exist).
    let e = eval(&zone, "other.com", &fails("other.com"));
    assert_eq!(e.requested, Some(Policy::Reject));
    assert_eq!(e.published.as_ref().map(|p| p.domain.as_str()), Some("com"));
    // "PSD policy is not used for Organizational Domains that have published a
    // DMARC policy."
    let e = eval(&zone, "bank.com", &fails("bank.com"));
    assert_eq!(e.requested, Some(Policy::Quarantine));
    // No record on the way up: DMARC does not apply.
    let e = eval(&Zone::new(&[]), "example.net", &fails("example.net"));
    assert_eq!((e.result, e.requested), (AuthResult::None, None));
}

#[test]
fn more_than_one_record_is_no_record() {
    let zone = Zone::new(&[
        ("_dmarc.example.com", "TXT v=DMARC1; p=reject"),
        ("_dmarc.example.com", "TXT v=DMARC1; p=none"),
        ("_dmarc.example.com", "TXT some-verification=1"),
    ]);
    assert_eq!(
        eval(&zone, "example.com", &fails("x.test")).result,
        AuthResult::None
    );
}

#[test]
fn relaxed_alignment_compares_organizational_domains_from_the_walk() {
    let zone = Zone::new(&[
        ("_dmarc.example.com", "TXT v=DMARC1; p=reject"),
        ("_dmarc.com", "TXT v=DMARC1; p=none; psd=y"),
    ]);
    let ids = Identifiers {
        spf: (AuthResult::Pass, "bounces.other.com"),
        dkim: vec![(AuthResult::Pass, "mail.example.com")],
    };
    let e = eval(&zone, "example.com", &ids);
    assert_eq!(
        (e.result, e.dkim_aligned, e.spf_aligned),
        (AuthResult::Pass, true, false)
    );
    assert!(
        e.reason.contains("DKIM mail.example.com aligned; treewalk"),
        "{}",
        e.reason
    );
    // Another organization under the same PSD does not align.
    let ids = Identifiers {
        spf: (AuthResult::Pass, "example2.com"),
        dkim: vec![(AuthResult::Pass, "com")],
    };
    assert_eq!(eval(&zone, "example.com", &ids).result, AuthResult::Fail);
    // Strict: only the same name.
    let zone = Zone::new(&[(
        "_dmarc.example.com",
        "TXT v=DMARC1; p=reject; adkim=s; aspf=s",
    )]);
    let ids = Identifiers {
        spf: (AuthResult::Pass, "mail.example.com"),
        dkim: vec![(AuthResult::Pass, "EXAMPLE.com.")],
    };
    let e = eval(&zone, "example.com", &ids);
    assert_eq!(
        (e.result, e.spf_aligned, e.dkim_aligned),
        (AuthResult::Pass, false, true)
    );
}

#[test]
fn domains_are_compared_as_a_labels() {
    let zone = Zone::new(&[("_dmarc.xn--bcher-kva.example", "TXT v=DMARC1; p=reject")]);
    let ids = Identifiers {
        spf: (AuthResult::Fail, "x.test"),
        dkim: vec![(AuthResult::Pass, "xn--bcher-kva.example")],
    };
    let e = eval(&zone, "bücher.example", &ids);
    assert_eq!(
        (e.result, e.from_domain.as_str()),
        (AuthResult::Pass, "xn--bcher-kva.example")
    );
}

#[test]
fn t_y_applies_the_next_weaker_policy_and_pct_is_ignored() {
    let zone = Zone::new(&[("_dmarc.example.com", "TXT v=DMARC1; p=reject; t=y; pct=0")]);
    let e = eval(&zone, "example.com", &fails("example.com"));
    assert_eq!(
        (e.requested, e.applied),
        (Some(Policy::Reject), Some(Policy::Quarantine))
    );
    assert!(e.reason.ends_with("t=y (testing)"), "{}", e.reason);
    let zone = Zone::new(&[("_dmarc.example.com", "TXT v=DMARC1; p=reject; pct=0")]);
    let e = eval(&zone, "example.com", &fails("example.com"));
    assert_eq!(e.applied, Some(Policy::Reject));
}

#[test]
fn dns_trouble_is_temperror_never_fail() {
    let zone = Zone::new(&[("_dmarc.example.com", "TIMEOUT")]);
    let e = eval(&zone, "example.com", &fails("example.com"));
    assert_eq!(e.result, AuthResult::TempError);
    // An aligned identifier whose check hit DNS trouble.
    let zone = Zone::new(&[("_dmarc.example.com", "TXT v=DMARC1; p=reject")]);
    let ids = Identifiers {
        spf: (AuthResult::TempError, "example.com"),
        dkim: vec![],
    };
    assert_eq!(
        eval(&zone, "example.com", &ids).result,
        AuthResult::TempError
    );
    // An alignment the walk could not decide.
    let zone = Zone::new(&[
        ("_dmarc.example.com", "TXT v=DMARC1; p=reject"),
        ("_dmarc.mail.example.com", "TIMEOUT"),
    ]);
    let ids = Identifiers {
        spf: (AuthResult::Fail, "x.test"),
        dkim: vec![(AuthResult::Pass, "mail.example.com")],
    };
    assert_eq!(
        eval(&zone, "example.com", &ids).result,
        AuthResult::TempError
    );
}

#[test]
fn psl_discovery_keeps_rfc_7489_answers() {
    let zone = Zone::new(&[
        (
            "_dmarc.example.co.uk",
            "TXT v=DMARC1; p=reject; sp=none; pct=10; np=reject",
        ),
        ("_dmarc.co.uk", "TXT v=DMARC1; p=quarantine; psd=y"),
    ]);
    let psl = |from: &str, sample: bool| {
        block_on(evaluate(&zone, from, &fails(from), Discovery::Psl, |_| {
            sample
        }))
    };
    assert_eq!(walk::psl_org_domain("mail.example.co.uk"), "example.co.uk");
    assert_eq!(walk::psl_org_domain("co.uk"), "co.uk");
    // sp applies to a subdomain whether or not it exists (no np in RFC 7489).
    let e = psl("nope.example.co.uk", true);
    assert_eq!(e.requested, Some(Policy::None));
    // pct: outside the sample, the next weaker policy.
    let e = psl("example.co.uk", false);
    assert_eq!(
        (e.requested, e.applied),
        (Some(Policy::Reject), Some(Policy::Quarantine))
    );
    assert_eq!(psl("example.co.uk", true).applied, Some(Policy::Reject));
    // The PSD's record is never consulted.
    assert_eq!(psl("other.co.uk", true).result, AuthResult::None);
}
