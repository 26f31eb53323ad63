//! RFC 9990's aggregate report: one XML document per policy domain and period
//! (namespace `urn:ietf:params:xml:ns:dmarc-2.0`), written here rather than with
//! mail-auth's generator, which has no `psd` in `policy_published`.

use std::fmt::Write as _;

use super::records::{Group, Period};

/// Who reports: RFC 9990's `report_metadata`.
pub struct Reporter<'a> {
    pub org_name: &'a str,
    pub email: &'a str,
}

/// The report's id: unique per policy domain and period.
pub fn report_id(p: &Period) -> String {
    format!("{}.{}.{}", p.domain, p.begin, p.last_id)
}

pub fn xml(p: &Period, who: &Reporter<'_>) -> String {
    let mut x = String::with_capacity(512 + 400 * p.groups.len());
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n");
    x.push_str("  <version>1.0</version>\n  <report_metadata>\n");
    element(&mut x, 4, "org_name", who.org_name);
    element(&mut x, 4, "email", who.email);
    element(&mut x, 4, "report_id", &report_id(p));
    let _ = writeln!(
        x,
        "    <date_range>\n      <begin>{}</begin>\n      <end>{}</end>\n    </date_range>",
        p.begin,
        p.end - 1
    );
    element(
        &mut x,
        4,
        "generator",
        concat!("mailwarden ", env!("CARGO_PKG_VERSION")),
    );
    x.push_str("  </report_metadata>\n  <policy_published>\n");
    element(&mut x, 4, "domain", &p.domain);
    element(&mut x, 4, "discovery_method", p.latest.discovery);
    let tag = |name: &str| {
        p.latest
            .policy
            .split(';')
            .find_map(|t| t.strip_prefix(name)?.strip_prefix('='))
    };
    for (name, element_name) in [
        ("p", "p"),
        ("sp", "sp"),
        ("np", "np"),
        ("adkim", "adkim"),
        ("aspf", "aspf"),
        ("psd", "psd"),
        ("fo", "fo"),
    ] {
        if let Some(value) = tag(name) {
            element(&mut x, 4, element_name, value);
        }
    }
    element(&mut x, 4, "testing", tag("t").unwrap_or("n"));
    x.push_str("  </policy_published>\n");
    for g in &p.groups {
        record(&mut x, g);
    }
    x.push_str("</feedback>\n");
    x
}

fn record(x: &mut String, g: &Group) {
    let r = &g.row;
    x.push_str("  <record>\n    <row>\n");
    element(x, 6, "source_ip", &r.source_ip);
    let _ = writeln!(x, "      <count>{}</count>", g.count);
    x.push_str("      <policy_evaluated>\n");
    element(x, 8, "disposition", r.disposition);
    element(x, 8, "dkim", if r.dkim_aligned { "pass" } else { "fail" });
    element(x, 8, "spf", if r.spf_aligned { "pass" } else { "fail" });
    if let Some(kind) = r.override_type {
        x.push_str("        <reason>\n");
        element(x, 10, "type", kind);
        if let Some(comment) = &r.override_comment {
            element(x, 10, "comment", comment);
        }
        x.push_str("        </reason>\n");
    }
    x.push_str("      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    if !r.envelope_to.is_empty() {
        element(x, 6, "envelope_to", &r.envelope_to);
    }
    element(x, 6, "envelope_from", &r.envelope_from);
    element(x, 6, "header_from", &r.header_from);
    x.push_str("    </identifiers>\n    <auth_results>\n");
    for sig in r.dkim.split(';').filter(|s| !s.is_empty()) {
        let mut f = sig.split(' ');
        let (d, s, result) = (
            f.next().unwrap_or_default(),
            f.next().unwrap_or_default(),
            f.next().unwrap_or("none"),
        );
        x.push_str("      <dkim>\n");
        element(x, 8, "domain", d);
        element(x, 8, "selector", s);
        element(x, 8, "result", result);
        x.push_str("      </dkim>\n");
    }
    let mut f = r.spf.split(' ');
    let (domain, scope, result) = (
        f.next().unwrap_or_default(),
        f.next().unwrap_or("mfrom"),
        f.next().unwrap_or("none"),
    );
    x.push_str("      <spf>\n");
    element(x, 8, "domain", domain);
    element(x, 8, "scope", scope);
    element(x, 8, "result", result);
    x.push_str("      </spf>\n    </auth_results>\n  </record>\n");
}

fn element(x: &mut String, indent: usize, name: &str, value: &str) {
    let _ = writeln!(x, "{:indent$}<{name}>{}</{name}>", "", escape(value));
}

/// Text as XML character data: the five specials escaped, control characters
/// (which XML 1.0 cannot hold) dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}
