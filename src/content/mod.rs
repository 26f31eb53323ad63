//! The message's MIME structure, read with `mail-parser`: its leaf parts decoded
//! (for per-attachment scanning), each with a name an admin recognises.

pub mod archive;
pub mod strip;
pub mod urls;

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// At most how many MIME parts `raw` can have: its lines that start with `--` (every
/// boundary delimiter is one), counted without parsing, so a message built to
/// cost the parser (100,000 parts) is turned away before it is parsed.
pub fn parts_upper_bound(raw: &[u8]) -> usize {
    memchr::memmem::find_iter(raw, b"\n--").count() + usize::from(raw.starts_with(b"--"))
}

/// Parses a whole message (header block and body).
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// Every leaf part, decoded, named by its file name or else by its position and
/// type ("part 2 (text/html)"). A nested message is one part (its raw text; clamd
/// reads the MIME inside). Multipart containers have no content of their own.
pub fn leaf_parts<'m>(message: &'m Message<'_>) -> Vec<(String, &'m [u8])> {
    message
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| !matches!(p.body, PartType::Multipart(_)))
        .map(|(i, part)| {
            let name = match part.attachment_name() {
                Some(file) => printable(file),
                None => {
                    let ct = declared_type(part).unwrap_or_else(|| "text/plain".into());
                    format!("part {i} ({})", printable(&ct))
                }
            };
            (name, part.contents())
        })
        .collect()
}

/// What the virus scan sends for per-attachment scanning: every leaf part decoded
/// as leniently as a mail client decodes it, and whether the walk met something it
/// could not split as a client might (then the whole message is scanned too).
pub struct ScanParts<'m> {
    pub parts: Vec<(String, Cow<'m, [u8]>)>,
    pub whole_too: bool,
}

/// The leaf parts of `message` for clamd. A part the parser could not decode (a
/// base64 body with characters outside the alphabet, or one cut off because the
/// closing boundary never came) is decoded here the way clients do, skipping the
/// junk. A multipart with more than one `boundary` parameter, or one left unsplit,
/// is read differently by different clients: the whole message goes too.
pub fn scan_parts<'m>(message: &'m Message<'_>) -> ScanParts<'m> {
    let mut whole_too = false;
    let mut parts = Vec::new();
    for (name, part) in leaf_parts(message).into_iter().zip(leaf_indexes(message)) {
        let part = &message.parts[part];
        if part.is_encoding_problem {
            whole_too = true;
            let raw = message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default();
            let base64 = part
                .content_transfer_encoding()
                .is_some_and(|e| e.eq_ignore_ascii_case("base64"));
            let decoded = if base64 {
                Cow::Owned(lenient_base64(raw))
            } else {
                Cow::Borrowed(raw)
            };
            parts.push((name.0, decoded));
        } else {
            parts.push((name.0, Cow::Borrowed(name.1)));
        }
    }
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        if !ct.c_type.eq_ignore_ascii_case("multipart") {
            continue;
        }
        let boundaries = ct
            .attributes
            .iter()
            .flatten()
            .filter(|a| a.name.eq_ignore_ascii_case("boundary"))
            .count();
        if boundaries != 1 || !matches!(part.body, PartType::Multipart(_)) {
            whole_too = true;
        }
    }
    ScanParts { parts, whole_too }
}

/// The indexes in `message.parts` of the parts [`leaf_parts`] returns, in order.
fn leaf_indexes(message: &Message<'_>) -> impl Iterator<Item = usize> {
    message
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| !matches!(p.body, PartType::Multipart(_)))
        .map(|(i, _)| i)
}

/// Base64 as mail clients decode it: every character outside the alphabet skipped,
/// decoding stopped at the first `=`, a trailing partial group dropped.
pub fn lenient_base64(raw: &[u8]) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in raw {
        if c == b'=' {
            break;
        }
        let Some(v) = value(c) else {
            continue;
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// A part's declared type as `type/subtype`, as the message spells it; `None`
/// without a Content-Type.
pub fn declared_type(part: &MessagePart<'_>) -> Option<String> {
    part.content_type().map(|ct| match &ct.c_subtype {
        Some(sub) => format!("{}/{sub}", ct.c_type),
        None => ct.c_type.to_string(),
    })
}

/// A file name's extension, lower case, without the dot; empty when it has none.
pub fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A name from the message, safe for a log line and an SMTP reply: no control
/// characters, at most 100 characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_leaf_parts_and_decodes_them() {
        let raw = b"From: a@example.com\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
--b2\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--b2--\r\n\
--b1\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"in\x07voice.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--b1--\r\n";
        let message = parse(raw).unwrap();
        let parts = leaf_parts(&message);
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["part 1 (text/plain)", "part 3 (text/html)", "invoice.bin"]
        );
        assert_eq!(parts[2].1, b"hello world");
    }

    /// Defect 3 of the hardening review: these attachments were never handed to
    /// clamd decoded. Each is found now, or the whole message goes too.
    #[test]
    fn attachments_are_found_as_a_client_decodes_them() {
        use base64::Engine as _;
        let payload = b"MARKER-PAYLOAD-0123456789-MARKER-PAYLOAD-0123456789";
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        let junk: String = b64.chars().flat_map(|c| [c, '!']).collect();
        let message = |content_type: &str, body: &str, close: bool| {
            format!(
                "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: {content_type}\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n\
                 Content-Type: application/octet-stream; name=\"x.exe\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{body}\r\n{}",
                if close { "--b--\r\n" } else { "" }
            )
        };
        let cases = [
            (
                "clean",
                message("multipart/mixed; boundary=\"b\"", &b64, true),
                false,
            ),
            (
                "junk in base64",
                message("multipart/mixed; boundary=\"b\"", &junk, true),
                true,
            ),
            (
                "no closing boundary",
                message("multipart/mixed; boundary=\"b\"", &b64, false),
                true,
            ),
            (
                "boundary twice",
                message(
                    "multipart/mixed; boundary=\"zzz\"; boundary=\"b\"",
                    &b64,
                    true,
                ),
                true,
            ),
        ];
        for (case, raw, irregular) in cases {
            let parsed = parse(raw.as_bytes()).unwrap();
            let scan = scan_parts(&parsed);
            let decoded = scan
                .parts
                .iter()
                .any(|(_, c)| c.windows(payload.len()).any(|w| w == payload));
            assert_eq!(scan.whole_too, irregular, "{case}");
            assert!(
                decoded || scan.whole_too,
                "{case}: the payload is not scanned"
            );
            if case != "boundary twice" {
                assert!(decoded, "{case}: the attachment is decoded");
            }
        }
        assert_eq!(lenient_base64(b"aGVs\r\n!bG8*=junk"), b"hello");
    }
}
