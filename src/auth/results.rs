//! The outcome of every inbound check as plain values, and their one rendering: an
//! RFC 8601 `Authentication-Results` header under our authserv-id. Also recognises
//! headers that claim our authserv-id, so they can be removed before ours is added.

use std::fmt::Write as _;

use super::HEADER;
use super::dmarc::Policy;
use crate::decision::header::HeaderValue;

/// A method result as RFC 8601 (and RFC 8617 for ARC) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthResult {
    Pass,
    Fail,
    SoftFail,
    Neutral,
    None,
    TempError,
    PermError,
    /// Verified, but not acceptable to us (RFC 8601 §2.7.1), e.g. rsa-sha1.
    Policy,
}

impl AuthResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
            AuthResult::Policy => "policy",
        }
    }
}

impl std::fmt::Display for AuthResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `method=result (reason) ptype.property=value ...` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub method: &'static str,
    pub result: AuthResult,
    /// Why, in a few words; rendered as a comment.
    pub reason: Option<String>,
    pub props: Vec<(&'static str, String)>,
}

impl MethodResult {
    pub fn new(method: &'static str, result: AuthResult) -> Self {
        MethodResult {
            method,
            result,
            reason: None,
            props: Vec::new(),
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn prop(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.props.push((name, value.into()));
        self
    }

    /// The value of a property such as `header.d`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What DMARC asked for and what we do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcDisposition {
    /// The policy the domain publishes for this From domain (p= or sp=).
    pub requested: Policy,
    /// What applies after `pct` sampling and any trusted-ARC override.
    pub applied: Policy,
    /// Set when a trusted ARC sealer's pass overrode a DMARC failure.
    pub override_by: Option<String>,
}

/// Every inbound check for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReport {
    pub iprev: MethodResult,
    pub spf_mailfrom: MethodResult,
    pub spf_helo: MethodResult,
    /// One entry per signature; a single `dkim=none` when there are none.
    pub dkim: Vec<MethodResult>,
    pub arc: MethodResult,
    /// The DMARC result that decides: with several author domains, the worst.
    pub dmarc: MethodResult,
    /// DMARC for the other author domains, each in the header too.
    pub dmarc_others: Vec<MethodResult>,
    /// Present when a DMARC record applied to the From domain.
    pub disposition: Option<DmarcDisposition>,
    /// A DKIM signature's body hash could not be checked because the body was cut
    /// at `server.max_message_size`: a DMARC failure may then be a pass we cannot see.
    pub body_unverified: bool,
    /// What the From fields gave.
    pub from: FromField,
    /// Each author domain's evaluation, the decisive one first: what DMARC
    /// reports are made of.
    pub evaluations: Vec<super::dmarc::Evaluation>,
}

/// The From fields of a message, as DMARC sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromField {
    /// This many author domains (several: more than one address or field).
    Domains(usize),
    /// No From field, or one that does not parse to an address: why.
    Bad(String),
}

impl AuthReport {
    /// The methods in header order.
    pub fn methods(&self) -> impl Iterator<Item = &MethodResult> {
        [&self.iprev, &self.spf_mailfrom, &self.spf_helo]
            .into_iter()
            .chain(self.dkim.iter())
            .chain([&self.arc, &self.dmarc])
            .chain(self.dmarc_others.iter())
    }

    /// A DNS failure that could change the DMARC outcome: DMARC itself could not be
    /// evaluated, or it did not pass while one of its inputs hit a DNS error.
    pub fn dns_failure(&self) -> Option<String> {
        if self.dmarc.result == AuthResult::Pass {
            return None;
        }
        [&self.dmarc, &self.spf_mailfrom]
            .into_iter()
            .chain(self.dkim.iter())
            .find(|m| m.result == AuthResult::TempError)
            .map(|m| {
                format!(
                    "{} temperror{}",
                    m.method,
                    m.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
    }

    /// The header value (without the leading space), folded with LF + tab, one
    /// method per line.
    pub fn header_value(&self, authserv_id: &str) -> String {
        let mut out = HeaderValue::for_header(HEADER);
        out.push(authserv_id);
        out.push(";");
        let methods: Vec<&MethodResult> = self.methods().collect();
        for (i, m) in methods.iter().enumerate() {
            // One method per line; a method's own continuation lines indent further.
            out.new_line("\t", 9);
            let mut tokens = vec![format!("{}={}", m.method, m.result)];
            if let Some(reason) = &m.reason {
                tokens.push(format!("({})", comment(reason)));
            }
            for (name, value) in &m.props {
                tokens.push(format!("{name}={}", pvalue(value)));
            }
            out.words(tokens.iter().map(String::as_str), "\t  ", 10);
            if i + 1 < methods.len() {
                out.push(";");
            }
        }
        out.finish()
    }

    /// One line for logs: `spf=pass dkim=pass dmarc=pass ...`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for m in self.methods() {
            if m.method == "spf" && m.get("smtp.helo").is_some() {
                let _ = write!(s, "spf_helo={} ", m.result);
            } else {
                let _ = write!(s, "{}={} ", m.method, m.result);
            }
        }
        // How the DMARC policy was found, when one was.
        if let Some(e) = self.evaluations.iter().find(|e| e.published.is_some()) {
            let _ = write!(s, "dmarc_discovery={} ", e.discovery.as_str());
        }
        s.pop();
        s
    }
}

/// Text safe inside an RFC 5322 comment: no line breaks or controls, and the
/// characters with meaning inside a comment escaped.
fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | ')' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A property value: bare when it is a MIME token or an address, else quoted.
fn pvalue(value: &str) -> String {
    const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !TSPECIALS.contains(&b))
    };
    let is_address = |s: &str| {
        s.rsplit_once('@').is_some_and(|(local, domain)| {
            is_token(domain)
                && (local.is_empty()
                    || local
                        .split('.')
                        .all(|atom| is_token(atom) && !atom.contains('.')))
        })
    };
    if is_token(value) || is_address(value) {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_when_they_are_not_tokens_or_addresses() {
        assert_eq!(pvalue("example.com"), "example.com");
        assert_eq!(pvalue("alice@example.com"), "alice@example.com");
        assert_eq!(pvalue("@example.com"), "@example.com");
        assert_eq!(pvalue("ab/cd+e="), "\"ab/cd+e=\"");
        assert_eq!(pvalue("a\"b\r\nc"), "\"a\\\"bc\"");
        assert_eq!(pvalue(""), "\"\"");
    }

    #[test]
    fn comments_cannot_break_out() {
        assert_eq!(comment("a) b=pass; (c\r\nX: y"), "a\\) b=pass; \\(c  X: y");
    }

    #[test]
    fn header_is_folded_one_method_per_line() {
        let report = AuthReport {
            iprev: MethodResult::new("iprev", AuthResult::Pass)
                .reason("mail.example.com")
                .prop("policy.iprev", "192.0.2.1"),
            spf_mailfrom: MethodResult::new("spf", AuthResult::Pass)
                .prop("smtp.mailfrom", "alice@example.com"),
            spf_helo: MethodResult::new("spf", AuthResult::None)
                .prop("smtp.helo", "mail.example.com"),
            dkim: vec![
                MethodResult::new("dkim", AuthResult::Pass)
                    .reason("rsa-2048 key")
                    .prop("header.d", "example.com")
                    .prop("header.i", "@example.com")
                    .prop("header.s", "a-rather-long-selector-name-2026")
                    .prop("header.a", "rsa-sha256")
                    .prop("header.b", "AbC/dEf+"),
            ],
            arc: MethodResult::new("arc", AuthResult::None),
            dmarc: MethodResult::new("dmarc", AuthResult::Pass).prop("header.from", "example.com"),
            dmarc_others: Vec::new(),
            disposition: None,
            body_unverified: false,
            from: FromField::Domains(1),
            evaluations: Vec::new(),
        };
        let value = report.header_value("mx.test");
        for line in value.split('\n') {
            assert!(line.len() <= 78, "{line:?} is too long");
        }
        assert!(value.starts_with("mx.test;\n\tiprev=pass (mail.example.com) policy.iprev=192.0.2.1;\n\tspf=pass smtp.mailfrom=alice@example.com;\n"));
        assert!(value.contains("header.b=\"AbC/dEf+\""));
        assert!(value.ends_with("\n\tdmarc=pass header.from=example.com"));
        assert_eq!(
            report.summary(),
            "iprev=pass spf=pass spf_helo=none dkim=pass arc=none dmarc=pass"
        );
    }
}
