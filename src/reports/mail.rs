//! The report mails: RFC 9990 §? aggregate reports as a gzip-compressed XML
//! attachment with the RFC's subject and file name, and RFC 9991 failure
//! reports in the Abuse Reporting Format (RFC 5965, RFC 6591) with the
//! configured redaction (RFC 6590).

use std::io::Write as _;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use mail_send::mail_builder::headers::date::Date;

use super::aggregate::{self, Reporter};
use super::records::Period;

/// What every report mail's headers need.
pub struct Envelope<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// RFC 9990's submitter: the domain of the reports' sender.
    pub submitter: &'a str,
    pub now: i64,
}

/// The aggregate report mail for one period and destination.
pub fn aggregate(p: &Period, who: &Reporter<'_>, env: &Envelope<'_>) -> Vec<u8> {
    let xml = aggregate::xml(p, who);
    let mut gz = GzEncoder::new(Vec::with_capacity(xml.len() / 4), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(xml.as_bytes());
    let compressed = gz.finish().unwrap_or_default();
    let id = aggregate::report_id(p);
    // RFC 9990: receiver "!" policy-domain "!" begin "!" end "!" unique-id ".xml.gz".
    let file = format!(
        "{}!{}!{}!{}!{}.xml.gz",
        env.submitter,
        p.domain,
        p.begin,
        p.end - 1,
        p.last_id
    );
    let boundary = format!("=_mailwarden_{}_{}", p.last_id, env.now);
    let mut m = headers(
        env,
        &format!(
            "Report Domain: {} Submitter: {} Report-ID: <{id}>",
            p.domain, env.submitter
        ),
        &id,
    );
    m.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         DMARC aggregate report for {} from {}.\r\n\
         Report-ID: {id}\r\nPeriod: {} to {} (Unix time, UTC)\r\nMessages: {}\r\n\r\n\
         --{boundary}\r\nContent-Type: application/gzip; name=\"{file}\"\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n",
        p.domain,
        who.org_name,
        p.begin,
        p.end - 1,
        p.groups.iter().map(|g| g.count).sum::<u64>(),
    ));
    base64_lines(&mut m, &compressed);
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

/// A failure report's parts, already redacted.
pub struct Failure<'a> {
    pub domain: &'a str,
    pub report_id: &'a str,
    pub source_ip: &'a str,
    pub mail_from: &'a str,
    pub arrival: i64,
    pub auth_results: &'a str,
    /// `none`, `dkim`, `spf` or `dkim,spf`.
    pub alignment: &'a str,
    /// RFC 6591's Delivery-Result: delivered, spam, reject, other.
    pub delivery: &'a str,
    /// The header block (CRLF lines); with `body`, the message follows it.
    pub headers: &'a str,
    pub body: Option<&'a [u8]>,
}

pub fn failure(f: &Failure<'_>, env: &Envelope<'_>) -> Vec<u8> {
    let boundary = format!("=_mailwarden_afrf_{}", env.now);
    let date = Date::new(f.arrival).to_rfc822();
    let mut m = headers(
        env,
        &format!(
            "DMARC failure report for {} Report-ID: <{}>",
            f.domain, f.report_id
        ),
        f.report_id,
    );
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is an authentication failure report for a message from {} received on {date}.\r\n\r\n\
         --{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: auth-failure\r\nUser-Agent: mailwarden/{}\r\nVersion: 1\r\n\
         Original-Mail-From: {}\r\nArrival-Date: {date}\r\nSource-IP: {}\r\n\
         Reported-Domain: {}\r\nAuthentication-Results: {}\r\nAuth-Failure: dmarc\r\n\
         Identity-Alignment: {}\r\nDelivery-Result: {}\r\n\r\n--{boundary}\r\n",
        f.source_ip,
        env!("CARGO_PKG_VERSION"),
        f.mail_from,
        f.source_ip,
        f.domain,
        f.auth_results,
        f.alignment,
        f.delivery,
    ));
    match f.body {
        None => {
            m.push_str("Content-Type: text/rfc822-headers\r\n\r\n");
            m.push_str(f.headers);
        }
        Some(_) => {
            m.push_str("Content-Type: message/rfc822\r\n\r\n");
            m.push_str(f.headers);
            m.push_str("\r\n");
        }
    }
    let mut out = m.into_bytes();
    if let Some(body) = f.body {
        out.extend_from_slice(body);
        if !body.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn headers(env: &Envelope<'_>, subject: &str, id: &str) -> String {
    let id_part: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "From: {}\r\nTo: {}\r\nDate: {}\r\nMessage-ID: <{id_part}.{}@{}>\r\nSubject: {}\r\n\
         MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n",
        env.from,
        env.to,
        Date::new(env.now).to_rfc822(),
        env.now,
        env.submitter,
        subject.replace(['\r', '\n'], " "),
    )
}

fn base64_lines(out: &mut String, bytes: &[u8]) {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    for chunk in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
}

/// RFC 6590 redaction of local-parts: every `local@domain` in `text` becomes
/// `redacted@domain`.
pub fn redact_local_parts(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    for (at, _) in text.match_indices('@') {
        let mut i = at;
        while i > start && is_atext(bytes[i - 1]) {
            i -= 1;
        }
        if i < at {
            out.push_str(&text[start..i]);
            out.push_str("redacted");
            start = at;
        }
    }
    out.push_str(&text[start..]);
    out
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b)
}
