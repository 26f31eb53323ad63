//! authentication_milter's own end-to-end cases (fastmail, 68 cases over 17
//! messages) with its zone file, comparing the methods an RFC defines (spf for
//! MAIL FROM, dkim, dmarc, iprev, arc) where the case names them. Its site
//! features map to our config: `dmarc_reject` is `dmarc_enforce = true` with its
//! 99.0.0.0/8 allowlist as a rule that skips DMARC; `hide_none` only hides
//! results, so comparing the named methods covers it. Cases without expected
//! results (time-out and dry-run modes of that milter) are named, not compared.

use serde_json::Value;

use crate::common::dns_fault::Drop;
use crate::tally::Tally;
use crate::world::{Envelope, World};
use crate::zone::Zone;

const METHODS: [&str; 5] = ["spf", "dkim", "dmarc", "iprev", "arc"];

/// Its zone file (BIND-like lines, absolute names, `;ERROR,name,type,RCODE`
/// directives for its mock resolver) as a knot root zone. NS records are left
/// out: in a root zone they would delegate the names away.
fn zone(text: &str) -> (Zone, Vec<(String, u16, Drop)>) {
    let mut zone = Zone::default();
    let mut drops = Vec::new();
    for line in text.lines() {
        if let Some(directive) = line.strip_prefix(";ERROR,") {
            let parts: Vec<&str> = directive.split(',').collect();
            if let [name, _kind, rcode] = parts[..]
                && rcode != "NXDOMAIN"
            {
                drops.push(((*name).to_owned(), 0, Drop::ServFail));
            }
            continue;
        }
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace().peekable();
        let Some(owner) = fields.next() else { continue };
        if fields
            .peek()
            .is_some_and(|f| f.bytes().all(|b| b.is_ascii_digit()))
        {
            fields.next();
        }
        if fields.peek() == Some(&"IN") {
            fields.next();
        }
        let Some(kind) = fields.next() else { continue };
        let rest: Vec<&str> = fields.collect();
        let rest = rest.join(" ");
        match kind {
            "NS" | "SOA" => {}
            "TXT" if rest.is_empty() => {}
            "TXT" if !rest.contains('"') && !rest.starts_with('(') => {
                zone.txt(owner, rest.as_bytes());
            }
            "TXT" if !rest.contains('"') => {
                let inner = rest.trim_start_matches('(').trim_end_matches(')').trim();
                zone.txt(owner, inner.as_bytes());
            }
            _ => zone.add(owner, kind, &rest),
        }
    }
    (zone, drops)
}

#[test]
fn authmilter_fastmail() {
    if !crate::world::knot_present() {
        return;
    }
    run("authmilter-fastmail", "treewalk", &METHODS, 162);
}

/// The DMARC cases again under RFC 7489's discovery (`dmarc.discovery = "psl"`).
#[test]
fn authmilter_fastmail_dmarc_psl() {
    if !crate::world::knot_present() {
        return;
    }
    run("authmilter-fastmail-psl", "psl", &["dmarc"], 50);
}

fn run(suite: &'static str, discovery: &str, methods: &[&str], minimum: usize) {
    let dir = crate::common::fixture("fixtures/conformance/authmilter-fastmail");
    let (zone, drops) = zone(&std::fs::read_to_string(dir.join("zonefile")).expect("zonefile"));
    let dmarc = format!("[dmarc]\ndiscovery = \"{discovery}\"\n");
    let normal = World::start(
        &format!("{suite}-"),
        &zone,
        drops.clone(),
        "dmarc_enforce = false",
        &dmarc,
    );
    let reject = World::start(
        &format!("{suite}-reject-"),
        &zone,
        drops,
        "dmarc_enforce = true",
        &format!(
            "{dmarc}[[rules]]\nname = \"dmarc-allowlist\"\nwhen = {{ client_ip = \"99.0.0.0/8\" }}\n\
             skip = [\"dmarc\"]\nthen = [{{ action = \"accept\" }}]\n"
        ),
    );
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases"))
            .expect("JSON");
    let mut tally = Tally::new(suite);
    // Per compared case: every method agrees; every method but iprev agrees.
    let mut outcomes: Vec<(bool, bool)> = Vec::new();
    for (n, case) in cases.as_array().expect("cases").iter().enumerate() {
        let config = case["running_config"].as_str().expect("config");
        let source = case["source"].as_str().expect("source");
        let id = format!(
            "{n:02} {} [{config}] {source} from {}",
            case["desc"].as_str().unwrap_or(""),
            case["ip"].as_str().unwrap_or("")
        );
        let expected = case["expected_auth_results"].as_object();
        let reject_expected = case["expected_smtp_reject"].as_str();
        if expected.is_none() && reject_expected.is_none() {
            tally.skip(
                &id,
                "no expected results: that milter's time-out or dry-run mode",
            );
            continue;
        }
        if ["4.3.2.1", "5.4.3.2"].contains(&case["ip"].as_str().unwrap_or_default()) {
            tally.skip(
                &id,
                "that milter's ip_map rewrites this client to 74.125.82.171 first",
            );
            continue;
        }
        if config.starts_with("config/dmarc_reject_wl") {
            tally.skip(
                &id,
                "its allowlist by DKIM domain (dkim:marcbradshaw.net) has no rule condition here",
            );
            continue;
        }
        let world = if config.starts_with("config/dmarc_reject") {
            &reject
        } else {
            &normal
        };
        // MAIL FROM as the case gives it: maybe bracketed, maybe with parameters.
        let from = case["from"].as_str().unwrap_or_default();
        let from = match (from.find('<'), from.find('>')) {
            (Some(a), Some(b)) if a < b => &from[a + 1..b],
            _ => from,
        };
        let raw = std::fs::read(dir.join("data/source").join(source)).expect("message");
        let played = world.play(&Envelope {
            ip: case["ip"].as_str().expect("ip"),
            helo: case["name"].as_str().expect("name"),
            mail_from: from,
            message: &raw,
        });
        if let Some(reply) = reject_expected {
            let ours = match &played.decision {
                mailwarden::mta::Response::Reject => "reject".to_owned(),
                mailwarden::mta::Response::ReplyCode(r) if r.to_wire().starts_with('5') => {
                    "reject".to_owned()
                }
                other => format!("{other:?}"),
            };
            let agreed = tally.case(&format!("{id} reply ({reply})"), "reject", &ours);
            outcomes.push((agreed, true));
            continue;
        }
        let (mut all, mut all_but_iprev) = (true, true);
        for (method, results) in expected.into_iter().flatten() {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            let mut want: Vec<String> = results
                .as_array()
                .expect("results")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let mut ours: Vec<String> = if method == "spf" {
                vec![played.spf_mailfrom()]
            } else {
                played.of(method).iter().map(|m| m.result.clone()).collect()
            };
            want.sort();
            ours.sort();
            let agreed = tally.case(&format!("{id} {method}"), &want.join(","), &ours.join(","));
            all &= agreed;
            all_but_iprev &= agreed || method == "iprev";
        }
        outcomes.push((all, all_but_iprev));
    }
    // Past the harness's capture, like the suite lines.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "CONFORMANCE {suite} cases: {} compared, {} agree on every method, {} on every method but iprev",
        outcomes.len(),
        outcomes.iter().filter(|c| c.0).count(),
        outcomes.iter().filter(|c| c.1).count()
    );
    tally.finish(minimum);
}
