//! The message's MIME structure, read with `mail-parser`: its leaf parts decoded
//! (for per-attachment scanning), each with a name an admin recognises.

pub mod archive;
pub mod strip;
pub mod urls;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

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
}
