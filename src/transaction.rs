//! One SMTP transaction as the pipeline sees it at end-of-message: who connected,
//! the macros the MTA gave us, the envelope, the header fields exactly as received
//! and the body. It is built by the milter session and read by every later layer;
//! it never changes after it is handed over.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;

/// Facts about the SMTP client that stay the same for every message of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    /// The client's host name as the MTA reports it (`[ip]` when it has none).
    pub hostname: String,
    /// The client's IP address; `None` for local submission or a UNIX socket.
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    /// The HELO/EHLO argument, if the client sent one.
    pub helo: Option<String>,
}

impl Client {
    /// The client's IP address as text (see [`ip_text`]), `None` when there is none.
    pub fn ip_text(&self) -> Option<String> {
        self.ip.map(ip_text)
    }
}

/// `ip` as text, the same as `Display` writes it. IPv4 is written here rather than
/// by `Display`, which costs some 2,000 instructions a call, and this runs for every
/// message (the decision line, the alert key, a rate limit keyed by client address).
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
            text
        }
        IpAddr::V6(_) => ip.to_string(),
    }
}

/// The MTA's macros, flattened over all stages (a later stage's value wins).
/// Names are stored without braces: `auth_authen`, `i`, `daemon_name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Macros(BTreeMap<String, Bytes>);

impl Macros {
    pub fn new(values: BTreeMap<String, Bytes>) -> Self {
        Macros(values)
    }

    /// The value of a macro, looked up as `name` or `{name}`.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0
            .get(crate::milter::command::normalize_macro_name(name))
    }

    /// The value as text; invalid UTF-8 is replaced, because macro values are only
    /// ever compared with or shown as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// An envelope address with its ESMTP parameters, as the client gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeAddress {
    /// The address as sent, angle brackets included (`<a@b>`, `<>`).
    pub raw: String,
    pub params: Vec<String>,
}

impl EnvelopeAddress {
    /// The address without angle brackets; empty for the null sender.
    pub fn address(&self) -> &str {
        crate::milter::command::bare_address(&self.raw)
    }
}

/// One header field. `value` is byte-exact as received: when the MTA keeps the
/// leading space (Postfix with `HDR_LEADSPC`), `name + ":" + value` is the original
/// line; folded values use bare LF between lines, as the protocol delivers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: String,
    pub value: Bytes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// A number unique within this process, for logs before the queue id is known.
    pub session_id: u64,
    pub client: Client,
    pub macros: Macros,
    pub sender: EnvelopeAddress,
    pub recipients: Vec<EnvelopeAddress>,
    pub headers: Vec<HeaderField>,
    /// Whether header values kept the whitespace after the colon. When false, the
    /// MTA removed one space from each value and `name + ": " + value` is the line.
    pub headers_exact: bool,
    /// The body with CRLF line ends, up to the configured maximum.
    pub body: Bytes,
    /// The body's full size in bytes, even when `body` was cut at the maximum.
    pub body_size: u64,
    /// Header fields beyond `server.max_header_fields` or `max_header_size`:
    /// counted, not kept.
    pub headers_dropped: u64,
}

impl Transaction {
    /// Postfix's queue id (the `i` macro), known from DATA on.
    pub fn queue_id(&self) -> Option<String> {
        self.macros.text("i")
    }

    /// True when the body was longer than the configured maximum and `body` holds
    /// only its beginning.
    pub fn body_truncated(&self) -> bool {
        (self.body.len() as u64) < self.body_size
    }

    /// The whole message's size in bytes as it arrived: each kept header field
    /// as `Name: value` CRLF, the blank line, and the full body (fields past
    /// the header limits are not kept and not counted).
    pub fn message_size(&self) -> u64 {
        let header: u64 = self
            .headers
            .iter()
            .map(|h| (h.name.len() + 1 + h.value.len() + 2) as u64)
            .sum();
        header + 2 + self.body_size
    }

    /// The values of every header with this name (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &h.value)
    }

    /// The header block rebuilt as CRLF-terminated lines, ending with the empty line.
    pub fn header_block(&self) -> Vec<u8> {
        header_block(&self.headers, self.headers_exact)
    }

    /// The message as received: the header block, then the body (as much of it as
    /// was kept).
    pub fn message(&self) -> Vec<u8> {
        let mut m = self.header_block();
        m.extend_from_slice(&self.body);
        m
    }
}

/// Header fields as CRLF-terminated lines, ending with the empty line. `exact`: the
/// values keep the whitespace after the colon (else one space is put back).
pub fn header_block(headers: &[HeaderField], exact: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        out.extend_from_slice(h.name.as_bytes());
        out.push(b':');
        if !exact {
            out.push(b' ');
        }
        for (i, line) in h.value.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_restores_crlf_and_spacing() {
        let mut tx = Transaction {
            headers: vec![
                HeaderField {
                    name: "Subject".into(),
                    value: Bytes::from_static(b" a\n\tb"),
                },
                HeaderField {
                    name: "X-Empty".into(),
                    value: Bytes::from_static(b""),
                },
            ],
            headers_exact: true,
            ..Default::default()
        };
        assert_eq!(tx.header_block(), b"Subject: a\r\n\tb\r\nX-Empty:\r\n\r\n");
        tx.headers_exact = false;
        tx.headers[0].value = Bytes::from_static(b"a");
        assert_eq!(tx.header_block(), b"Subject: a\r\nX-Empty: \r\n\r\n");
    }

    #[test]
    fn truncation_is_derived_from_sizes() {
        let tx = Transaction {
            body: Bytes::from_static(b"abc"),
            body_size: 10,
            ..Default::default()
        };
        assert!(tx.body_truncated());
    }

    #[test]
    fn ip_text_is_what_display_writes() {
        let mut ips: Vec<IpAddr> = (0..=255u8)
            .map(|n| std::net::Ipv4Addr::new(n, 255 - n, n / 10, n.wrapping_mul(7)).into())
            .collect();
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "2001:db8::7",
            "::ffff:192.0.2.1",
        ] {
            ips.push(text.parse().unwrap());
        }
        for ip in ips {
            let client = Client {
                ip: Some(ip),
                ..Default::default()
            };
            assert_eq!(client.ip_text(), Some(ip.to_string()));
        }
        assert_eq!(Client::default().ip_text(), None);
    }
}
