//! Removing attachments: each removed part's bytes, from its own header to its
//! end, are replaced by a short text part saying what was removed, so the MIME
//! structure (boundaries, the other parts, byte for byte) stays as it was.

use mail_parser::{Message, MimeHeaders};

use super::archive;

/// An attachment as the strip decision sees it.
pub struct Candidate<'a> {
    pub name: &'a str,
    /// Lower case, without the dot.
    pub ext: String,
    pub declared: String,
    pub detected: Option<&'static str>,
}

pub struct Stripped {
    /// The new body (everything after the header block), CRLF line ends.
    pub body: Vec<u8>,
    /// The names of the removed attachments.
    pub removed: Vec<String>,
}

/// Replaces every attachment `remove` selects. `raw` is the whole message as
/// parsed into `message` and `header_len` the length of its header block. `None`
/// when nothing was removed; `Err(name)` when the message is not multipart and is
/// itself a selected attachment (it cannot be taken out of itself).
pub fn strip(
    message: &Message<'_>,
    raw: &[u8],
    header_len: usize,
    remove: impl Fn(&Candidate<'_>) -> bool,
    notice: impl Fn(&str) -> String,
) -> Result<Option<Stripped>, String> {
    let mut cuts: Vec<(usize, usize, String)> = Vec::new();
    for &id in &message.attachments {
        let id = id as usize;
        let Some(part) = message.parts.get(id) else {
            continue;
        };
        if id == 0 {
            // The whole message is the attachment: it cannot be cut out of itself.
            if remove(&candidate(part)) {
                return Err(candidate(part).name.to_owned());
            }
            continue;
        }
        let candidate = candidate(part);
        let name = candidate.name;
        if remove(&candidate) {
            let (start, end) = (part.offset_header as usize, part.offset_end as usize);
            if start >= header_len && start < end && end <= raw.len() {
                cuts.push((start, end, name.to_owned()));
            }
        }
    }
    if cuts.is_empty() {
        return Ok(None);
    }
    cuts.sort_by_key(|c| c.0);
    let mut body = Vec::with_capacity(raw.len() - header_len);
    let mut at = header_len;
    let mut removed = Vec::new();
    for (start, end, name) in cuts {
        if start < at {
            continue; // inside a part already removed
        }
        body.extend_from_slice(&raw[at..start]);
        let text: String = notice(&name).chars().filter(|c| !c.is_control()).collect();
        body.extend_from_slice(
            format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\
                 Content-Transfer-Encoding: 8bit\r\n\r\n{text}"
            )
            .as_bytes(),
        );
        at = end;
        removed.push(name);
    }
    body.extend_from_slice(&raw[at..]);
    Ok(Some(Stripped { body, removed }))
}

fn candidate<'p>(part: &'p mail_parser::MessagePart<'_>) -> Candidate<'p> {
    let name = part.attachment_name().unwrap_or("(unnamed)");
    Candidate {
        name,
        ext: super::extension(name),
        declared: super::declared_type(part)
            .unwrap_or_default()
            .to_ascii_lowercase(),
        detected: archive::sniff(part.contents()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_chosen_attachment_and_keeps_valid_mime() {
        let raw = "From: a@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b1\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"setup.exe\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n\
--b1\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"terms.pdf\"\r\n\r\n%PDF-1.4 x\r\n\
--b1--\r\nepilogue\r\n";
        let header_len = raw.find("\r\n\r\n").unwrap() + 4;
        let message = crate::content::parse(raw.as_bytes()).unwrap();
        let out = strip(
            &message,
            raw.as_bytes(),
            header_len,
            |c| c.ext == "exe" || c.detected == Some("application/x-msdownload"),
            |name| format!("The attachment {name} was removed."),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out.removed, ["setup.exe"]);
        let mut rebuilt = raw.as_bytes()[..header_len].to_vec();
        rebuilt.extend(&out.body);
        let text = String::from_utf8(rebuilt.clone()).unwrap();
        assert!(
            !text.contains("TVqQ") && text.contains("terms.pdf"),
            "{text}"
        );
        assert!(
            text.contains(
                "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline"
            ),
            "{text}"
        );
        assert!(text.ends_with("--b1--\r\nepilogue\r\n"), "{text}");
        let again = crate::content::parse(&rebuilt).unwrap();
        let names: Vec<&str> = again
            .attachments()
            .filter_map(|p| p.attachment_name())
            .collect();
        assert_eq!(names, ["terms.pdf"]);
        assert_eq!(
            again.body_text(1).as_deref(),
            Some("The attachment setup.exe was removed.")
        );
        // Nothing to remove: no rewrite.
        assert!(
            strip(
                &message,
                raw.as_bytes(),
                header_len,
                |c| c.ext == "zip",
                |n| n.into()
            )
            .unwrap()
            .is_none()
        );
        // A message that is itself the attachment.
        let single = "From: a@example.com\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"run.exe\"\r\n\r\nMZ\r\n";
        let header_len = single.find("\r\n\r\n").unwrap() + 4;
        let message = crate::content::parse(single.as_bytes()).unwrap();
        let refused = strip(
            &message,
            single.as_bytes(),
            header_len,
            |c| c.ext == "exe",
            |n| n.into(),
        );
        assert_eq!(refused.err().as_deref(), Some("run.exe"));
    }
}
