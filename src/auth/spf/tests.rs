//! One test per RFC 7208 rule that decides a `permerror`, `temperror`, `neutral` or
//! `none`, against an in-memory zone (the conformance runner plays the same rules
//! through the milter against knot).

use super::macros::{Context, Facts, MacroString};
use super::record::{self, Mechanism};
use super::{Identity, Verdict, check};
use crate::auth::zone::Zone;

fn run_full(zone: &[(&str, &str)], ip: &str, sender: &str, helo: &str) -> super::Check {
    let zone = Zone::new(zone);
    let id = Identity {
        ip: ip.parse().expect("ip"),
        sender,
        helo,
        receiver: "mx.receiver.test",
    };
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(check(&zone, &id))
}

/// The result word, as in an Authentication-Results header.
fn run(zone: &[(&str, &str)], ip: &str, sender: &str) -> &'static str {
    match run_full(zone, ip, sender, "mail.example.com").verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::SoftFail => "softfail",
        Verdict::Neutral => "neutral",
        Verdict::None(_) => "none",
        Verdict::TempError(_) => "temperror",
        Verdict::PermError(_) => "permerror",
    }
}

/// The result of `record` published at example.com for a client at `ip`.
fn with(record: &str, ip: &str) -> &'static str {
    let txt = format!("TXT {record}");
    run(
        &[
            ("example.com", &txt),
            ("example.com", "A 192.0.2.10"),
            ("mail.example.com", "A 192.0.2.10"),
            ("mail.example.com", "AAAA 2001:db8::10"),
        ],
        ip,
        "user@example.com",
    )
}

#[test]
fn record_selection_section_4_5() {
    assert!(record::is_spf(b"v=spf1"));
    assert!(record::is_spf(b"V=SpF1 -all"));
    assert!(!record::is_spf(b"v=spf10"));
    assert!(!record::is_spf(b"v=spf1-all"));
    let two = [
        ("example.com", "TXT v=spf1 +all"),
        ("example.com", "TXT v=spf1 -all"),
    ];
    assert_eq!(run(&two, "192.0.2.1", "a@example.com"), "permerror");
    let other = [
        ("example.com", "TXT v=spf10 +all"),
        ("example.com", "TXT google-site-verification=x"),
        ("example.com", "TXT v=spf1 -all"),
    ];
    assert_eq!(run(&other, "192.0.2.1", "a@example.com"), "fail");
    assert_eq!(run(&[], "192.0.2.1", "a@example.com"), "none");
    let timeout = [("example.com", "TIMEOUT")];
    assert_eq!(run(&timeout, "192.0.2.1", "a@example.com"), "temperror");
    // An empty record is a record: no mechanism matches.
    assert_eq!(with("v=spf1", "192.0.2.1"), "neutral");
}

#[test]
fn initial_processing_section_4_3() {
    let zone = [("example.com", "TXT v=spf1 -all")];
    let long = format!("a@{}.example.com", "a".repeat(64));
    assert_eq!(run(&zone, "192.0.2.1", &long), "none");
    assert_eq!(run(&zone, "192.0.2.1", "a@x..example.com"), "none");
    assert_eq!(run(&zone, "192.0.2.1", "a@[192.0.2.1]"), "none");
    assert_eq!(run(&zone, "192.0.2.1", "a@localhost"), "none");
    // No local part: "postmaster" stands in (§4.3).
    let exp = [
        ("example.com", "TXT v=spf1 -all exp=why.example.com"),
        ("why.example.com", "TXT %{l}"),
    ];
    let out = run_full(&exp, "192.0.2.1", "@example.com", "h.example.com");
    assert_eq!(out.explanation.as_deref(), Some("postmaster"));
    // Space around "@" is the obsolete syntax; two addresses are not a sender.
    let fail = [("example.com", "TXT v=spf1 -all")];
    assert_eq!(run(&fail, "192.0.2.1", "a@ example.com"), "fail");
    assert_eq!(run(&fail, "192.0.2.1", "a@x.test, b@example.com"), "none");
    assert_eq!(run(&fail, "192.0.2.1", "\"a@b\"@example.com"), "fail");
    // A null sender checks the HELO name as postmaster@helo (§2.4).
    let helo = [("mail.example.com", "TXT v=spf1 ip4:192.0.2.1 -all")];
    let out = run_full(&helo, "192.0.2.1", "", "mail.example.com");
    assert_eq!(out.verdict, Verdict::Pass);
}

#[test]
fn syntax_errors_anywhere_are_permerror_section_4_6() {
    for record in [
        "v=spf1 ip4:192.0.2.1 -all moo",
        "v=spf1 -all.",
        "v=spf1 -all:foo",
        "v=spf1 -all/8",
        "v=spf1 a:foo-bar -all",
        "v=spf1 a:111.222.33.44",
        "v=spf1 a:abc.123",
        "v=spf1 a:museum",
        "v=spf1 a:museum.",
        "v=spf1 a:example.-com",
        "v=spf1 a:example.com:8080",
        "v=spf1 a:",
        "v=spf1 a/33",
        "v=spf1 a//129",
        "v=spf1 a/24/64",
        "v=spf1 a/032",
        "v=spf1 mx:abc.123",
        "v=spf1 mx/33",
        "v=spf1 ptr/0",
        "v=spf1 ptr:",
        "v=spf1 include",
        "v=spf1 include:",
        "v=spf1 include:example.net/24",
        "v=spf1 exists",
        "v=spf1 exists:",
        "v=spf1 exists:example.net/24",
        "v=spf1 ip4",
        "v=spf1 ip4:",
        "v=spf1 ip4:192.0.2.1/33",
        "v=spf1 ip4:192.0.2.1/032",
        "v=spf1 ip4:192.0.2.1//32",
        "v=spf1 ip4:192.0.2",
        "v=spf1 ip4:192.0.2.01",
        "v=spf1 ip4:192.0.2.1:25",
        "v=spf1 ip6",
        "v=spf1 ip6::CAFE::BABE",
        "v=spf1 ip6:::1/129",
        "v=spf1 ip6:::1//33",
        "v=spf1 redirect:example.net",
        "v=spf1 moo.cow/x=y",
        "v=spf1 1up=foo",
        "v=spf1 =all",
        "v=spf1 foo=%abc",
        "v=spf1 exp=",
        "v=spf1 exp=-all",
        "v=spf1 redirect=",
        "v=spf1 exp=a.example.com exp=b.example.com -all",
        "v=spf1 redirect=a.example.com redirect=a.example.com",
        "v=spf1 -exists:%(ir).sbl.example.com",
        "v=spf1 exists:foo%.sbl.example.com",
        "v=spf1 exists:foo.sbl.example.com%",
        "v=spf1 a:%{a}.example.com",
        "v=spf1 exp=%{r}.example.com -all",
        "v=spf1 a:%{d0}.example.com",
        "v=spf1 a:%{d:}.example.com",
        "v=spf1 a:ctrl.example.com\rptr -all",
        "v=spf1 a:example.net\u{0}",
        "v=spf1 a:\u{feff}garbage.example.net -all",
    ] {
        assert_eq!(with(record, "192.0.2.10"), "permerror", "{record:?}");
    }
}

#[test]
fn valid_syntax_evaluates() {
    for (record, ip, want) in [
        (
            "v=spf1 moo.cow-far_out=man:dog/cat ip4:192.0.2.1 -all",
            "192.0.2.1",
            "pass",
        ),
        ("v=spf1 a  -all", "192.0.2.10", "pass"),
        ("v=spf1 a -all ", "192.0.2.10", "pass"),
        ("v=spf1 ?all", "192.0.2.1", "neutral"),
        ("v=spf1 all -all", "192.0.2.1", "pass"),
        ("v=spf1 default=pass", "192.0.2.1", "neutral"),
        ("v=spf1 ip4:192.0.2.1", "192.0.2.2", "neutral"),
        ("v=spf1 ip4:192.0.2.1/32 -all", "192.0.2.1", "pass"),
        ("v=spf1 ip4:1.1.1.1/0 -all", "192.0.2.1", "pass"),
        (
            "v=spf1 ip6:2001:db8:8000::/33 -all",
            "2001:db8:8000::1",
            "pass",
        ),
        ("v=spf1 ip6:::1.1.1.1/0", "2001:db8::1", "pass"),
        // ip4 never matches an IPv6 client, nor ip6 an IPv4 one (§5.6).
        ("v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::1", "fail"),
        ("v=spf1 ip6:::/0", "192.0.2.1", "neutral"),
        ("v=spf1 ip6:::/0", "::ffff:192.0.2.1", "neutral"),
        (
            "v=spf1 -ip4:192.0.2.1 ip6:::ffff:192.0.2.1",
            "::ffff:192.0.2.1",
            "fail",
        ),
        ("v=spf1 a:mail.example.com/24 -all", "192.0.2.99", "pass"),
        ("v=spf1 a:mail.example.com//64 -all", "2001:db8::99", "pass"),
        (
            "v=spf1 a:mail.example.com/24//64 -all",
            "2001:db8:0:1::1",
            "fail",
        ),
        ("v=spf1 a:mail.example.com//33 -all", "192.0.2.11", "fail"),
        (
            "v=spf1 a:mail.example.com -all",
            "::ffff:192.0.2.10",
            "pass",
        ),
    ] {
        assert_eq!(with(record, ip), want, "{record:?} for {ip}");
    }
}

#[test]
fn domain_specs_section_7_1() {
    let ok = |s: &str| {
        MacroString::parse(s, Context::Domain)
            .map(|m| m.ends_like_a_domain())
            .unwrap_or(false)
    };
    assert!(ok("example.com"));
    assert!(ok("example.com."));
    assert!(ok("foo.example.xn--zckzah"));
    assert!(ok("%{d}"));
    assert!(ok("%{ir}.%{v}.arpa"));
    assert!(ok("foo:bar/baz.example.com"));
    assert!(!ok("example"));
    assert!(!ok("example.123"));
    assert!(!ok("example.-com"));
    assert!(!ok("example.com-"));
    assert!(!ok("example.com/24"));
    assert!(!ok(""));
}

#[test]
fn mechanisms_section_5() {
    let zone = [
        (
            "example.com",
            "TXT v=spf1 include:inc.example.com mx ptr -all",
        ),
        ("inc.example.com", "TXT v=spf1 ip4:192.0.2.1 ~all"),
        ("example.com", "MX mx1.example.com"),
        ("mx1.example.com", "A 192.0.2.2"),
        ("192.0.2.3", "PTR host.example.com"),
        ("192.0.2.3", "PTR host.example.org"),
        ("host.example.com", "A 192.0.2.3"),
        ("192.0.2.4", "PTR liar.example.com"),
        ("liar.example.com", "A 192.0.2.44"),
    ];
    assert_eq!(run(&zone, "192.0.2.1", "a@example.com"), "pass");
    assert_eq!(run(&zone, "192.0.2.2", "a@example.com"), "pass");
    assert_eq!(run(&zone, "192.0.2.3", "a@example.com"), "pass");
    // A PTR name whose address is not the client's is not validated.
    assert_eq!(run(&zone, "192.0.2.4", "a@example.com"), "fail");
    // include: only the included pass matches; none and errors propagate.
    let inc = |target: &str| {
        let outer = format!("TXT v=spf1 include:{target} -all");
        run(
            &[
                ("example.com", outer.as_str()),
                ("none.example.com", "TXT not spf"),
                ("perm.example.com", "TXT v=spf1 bogus"),
                ("temp.example.com", "TIMEOUT"),
            ],
            "192.0.2.1",
            "a@example.com",
        )
    };
    assert_eq!(inc("none.example.com"), "permerror");
    assert_eq!(inc("nx.example.com"), "permerror");
    assert_eq!(inc("perm.example.com"), "permerror");
    assert_eq!(inc("temp.example.com"), "temperror");
    // exists always asks for A records, whatever the client's family.
    let exists = [
        (
            "example.com",
            "TXT v=spf1 exists:%{l}.list.example.com -all",
        ),
        ("ok.list.example.com", "A 127.0.0.2"),
        ("six.list.example.com", "AAAA ::1"),
        ("err.list.example.com", "TIMEOUT"),
    ];
    assert_eq!(run(&exists, "2001:db8::1", "ok@example.com"), "pass");
    assert_eq!(run(&exists, "2001:db8::1", "six@example.com"), "fail");
    assert_eq!(run(&exists, "192.0.2.1", "err@example.com"), "temperror");
    // A DNS error on an a or mx lookup is temperror (§5).
    let a_err = [
        ("example.com", "TXT v=spf1 a:err.example.com -all"),
        ("err.example.com", "TIMEOUT"),
    ];
    assert_eq!(run(&a_err, "192.0.2.1", "a@example.com"), "temperror");
}

#[test]
fn redirect_and_exp_section_6() {
    let zone = [
        (
            "example.com",
            "TXT v=spf1 exp=e1.example.com redirect=target.example.com",
        ),
        ("target.example.com", "TXT v=spf1 -all exp=e2.example.com"),
        ("e1.example.com", "TXT not this"),
        ("e2.example.com", "TXT %{i} is not one of %{d}'s"),
        ("loop.example.com", "TXT v=spf1 redirect=loop.example.com"),
        ("nowhere.example.com", "TXT v=spf1 redirect=nx.example.com"),
        (
            "after.example.com",
            "TXT v=spf1 redirect=target.example.com ~all",
        ),
        ("two.example.com", "TXT v=spf1 -all exp=twice.example.com"),
        ("twice.example.com", "TXT one"),
        ("twice.example.com", "TXT two"),
        ("bad.example.com", "TXT v=spf1 -all exp=badexp.example.com"),
        ("badexp.example.com", "TXT The %{x}-files"),
    ];
    let out = run_full(&zone, "192.0.2.1", "a@example.com", "h.example.com");
    assert_eq!(out.verdict, Verdict::Fail);
    // The redirect target's exp is the one that counts.
    assert_eq!(
        out.explanation.as_deref(),
        Some("192.0.2.1 is not one of target.example.com's")
    );
    assert_eq!(run(&zone, "192.0.2.1", "a@loop.example.com"), "permerror");
    assert_eq!(
        run(&zone, "192.0.2.1", "a@nowhere.example.com"),
        "permerror"
    );
    // A mechanism that matches wins over redirect.
    assert_eq!(run(&zone, "192.0.2.1", "a@after.example.com"), "softfail");
    // Two TXT records, or an explanation with a bad macro: no explanation, still fail.
    for sender in ["a@two.example.com", "a@bad.example.com"] {
        let out = run_full(&zone, "192.0.2.1", sender, "h.example.com");
        assert_eq!((out.verdict, out.explanation), (Verdict::Fail, None));
    }
}

#[test]
fn limits_section_4_6_4() {
    let mut zone = vec![(
        "example.com",
        "TXT v=spf1 a a a a a a a a a a ip4:192.0.2.1 -all",
    )];
    zone.push(("example.com", "A 198.51.100.1"));
    assert_eq!(run(&zone, "192.0.2.1", "a@example.com"), "pass");
    zone[0] = (
        "example.com",
        "TXT v=spf1 a a a a a a a a a a a ip4:192.0.2.1 -all",
    );
    assert_eq!(run(&zone, "192.0.2.1", "a@example.com"), "permerror");
    let voids = |record: &str| {
        let txt = format!("TXT {record}");
        run(
            &[("example.com", txt.as_str())],
            "192.0.2.1",
            "a@example.com",
        )
    };
    assert_eq!(
        voids("v=spf1 a:n1.example.com a:n2.example.com ?all"),
        "neutral"
    );
    assert_eq!(
        voids("v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ?all"),
        "permerror"
    );
    // More than 10 MX names is permerror; more than 10 PTR names are ignored.
    let mut mx = vec![("example.com", "TXT v=spf1 mx -all")];
    mx.extend(std::iter::repeat_n(
        ("example.com", "MX mx.example.com"),
        11,
    ));
    assert_eq!(run(&mx, "192.0.2.1", "a@example.com"), "permerror");
    // More than 10 PTR names: only the first 10 are validated (§4.6.4), so a
    // matching 11th name does not count; a PTR lookup error is no match (§5.5).
    let mut ptr = vec![("example.com", "TXT v=spf1 ptr -all")];
    let names: Vec<String> = (0..10).map(|i| format!("PTR h{i}.example.net")).collect();
    for name in &names {
        ptr.push(("192.0.2.7", name.as_str()));
    }
    ptr.push(("192.0.2.7", "PTR mx.example.com"));
    ptr.push(("mx.example.com", "A 192.0.2.7"));
    assert_eq!(run(&ptr, "192.0.2.7", "a@example.com"), "fail");
    ptr.truncate(1);
    ptr.push(("192.0.2.7", "PTR mx.example.com"));
    ptr.push(("mx.example.com", "A 192.0.2.7"));
    assert_eq!(run(&ptr, "192.0.2.7", "a@example.com"), "pass");
    let ptr_error = [
        ("example.com", "TXT v=spf1 ptr ?all"),
        ("192.0.2.7", "TIMEOUT"),
    ];
    assert_eq!(run(&ptr_error, "192.0.2.7", "a@example.com"), "neutral");
    // An explanation's lookup counts toward neither limit.
    let exp = [(
        "example.com",
        "TXT v=spf1 a:n1.example.com a:n2.example.com exp=nx.example.com -all",
    )];
    assert_eq!(run(&exp, "192.0.2.1", "a@example.com"), "fail");
}

#[test]
fn macros_section_7() {
    let facts = Facts {
        sender: "strong-bad@email.example.com",
        local: "strong-bad",
        sender_domain: "email.example.com",
        domain: "email.example.com",
        ip: "192.0.2.3".parse().expect("ip"),
        helo: "mx.example.org",
        receiver: "mx.receiver.test",
        validated: "unknown",
        now: 1_000,
    };
    let expand = |s: &str| {
        MacroString::parse(s, Context::Explanation)
            .expect(s)
            .expand(&facts)
    };
    // RFC 7208 §7.4's own examples.
    assert_eq!(expand("%{s}"), "strong-bad@email.example.com");
    assert_eq!(expand("%{o}"), "email.example.com");
    assert_eq!(expand("%{d}"), "email.example.com");
    assert_eq!(expand("%{d4}"), "email.example.com");
    assert_eq!(expand("%{d3}"), "email.example.com");
    assert_eq!(expand("%{d2}"), "example.com");
    assert_eq!(expand("%{d1}"), "com");
    assert_eq!(expand("%{dr}"), "com.example.email");
    assert_eq!(expand("%{d2r}"), "example.email");
    assert_eq!(expand("%{l}"), "strong-bad");
    assert_eq!(expand("%{l-}"), "strong.bad");
    assert_eq!(expand("%{lr}"), "strong-bad");
    assert_eq!(expand("%{lr-}"), "bad.strong");
    assert_eq!(expand("%{l1r-}"), "strong");
    assert_eq!(
        expand("%{ir}.%{v}._spf.%{d2}"),
        "3.2.0.192.in-addr._spf.example.com"
    );
    assert_eq!(
        expand("%{lr-}.lp._spf.%{d2}"),
        "bad.strong.lp._spf.example.com"
    );
    assert_eq!(expand("%%%_%-"), "% %20");
    assert_eq!(expand("%{c} %{r} %{t}"), "192.0.2.3 mx.receiver.test 1000");
    let six = Facts {
        ip: "2001:db8::cb01".parse().expect("ip"),
        ..facts
    };
    assert_eq!(
        MacroString::parse("%{ir}.%{v}._spf.%{d2}", Context::Domain)
            .expect("parse")
            .expand(&six),
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    );
    // Upper case escapes.
    let odd = Facts {
        local: "~jack&jill=up-a_b3.c",
        ..facts
    };
    assert_eq!(
        MacroString::parse("%{L}", Context::Domain)
            .expect("parse")
            .expand(&odd),
        "~jack%26jill%3Dup-a_b3.c"
    );
    // Over 253 characters: labels go from the left.
    let long = MacroString::parse(
        "%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.%{d}.x.example.com",
        Context::Domain,
    )
    .expect("parse")
    .expand_domain(&facts);
    assert!(
        long.len() <= 253 && long.ends_with(".x.example.com"),
        "{long}"
    );
    assert!(MacroString::parse("%{t}", Context::Domain).is_err());
    assert!(MacroString::parse("a b", Context::Domain).is_err());
    assert!(MacroString::parse("a b", Context::Explanation).is_ok());
}

#[test]
fn p_macro_prefers_a_validated_name_in_the_domain() {
    let zone = [
        ("example.com", "TXT v=spf1 exists:%{p}.ok.example.com -all"),
        ("192.0.2.42", "PTR mx.example.org"),
        ("192.0.2.42", "PTR mx.example.com"),
        ("mx.example.org", "A 192.0.2.42"),
        ("mx.example.com", "A 192.0.2.42"),
        ("mx.example.com.ok.example.com", "A 127.0.0.2"),
    ];
    assert_eq!(run(&zone, "192.0.2.42", "a@example.com"), "pass");
    let unknown = [
        ("example.com", "TXT v=spf1 exists:%{p}.ok.example.com -all"),
        ("unknown.ok.example.com", "A 127.0.0.2"),
    ];
    assert_eq!(run(&unknown, "192.0.2.42", "a@example.com"), "pass");
}

#[test]
fn mechanism_parse_keeps_colons_and_slashes_of_domains() {
    let r = record::parse(b"v=spf1 a:foo:bar/baz.example.com mx:foo.example.com/24//64")
        .expect("parse");
    assert!(matches!(
        &r.directives[0].mechanism,
        Mechanism::A {
            domain: Some(_),
            v4: 32,
            v6: 128
        }
    ));
    assert!(matches!(
        &r.directives[1].mechanism,
        Mechanism::Mx {
            domain: Some(_),
            v4: 24,
            v6: 64
        }
    ));
}
