//! RFC 6376 §3.2 tag=value lists, parsed strictly: the syntax DKIM-Signature,
//! ARC-Seal, ARC-Message-Signature (RFC 8617 §4.1) and DKIM key records share. A
//! duplicate tag makes the whole list invalid; tag names are case-sensitive.

use std::borrow::Cow;

/// The tags of a list in order, values with folding whitespace removed (borrowed
/// from the field unless they were folded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Tags<'a>(Vec<(&'a str, Cow<'a, str>)>);

impl<'a> Tags<'a> {
    pub(crate) fn parse(value: &'a [u8]) -> Result<Tags<'a>, String> {
        // Byte by byte: the values (b=, bh=, p=) are long and every message has a
        // few of these fields; VALCHAR and FWS are all ASCII.
        let specs: Vec<&[u8]> = value.split(|b| *b == b';').collect();
        let mut tags: Vec<(&str, Cow<'a, str>)> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let spec = trim(spec);
            if spec.is_empty() {
                // Only after the last ";".
                if i + 1 == specs.len() && i > 0 {
                    continue;
                }
                return Err("an empty tag".into());
            }
            let Some(eq) = spec.iter().position(|b| *b == b'=') else {
                return Err(format!("{:?} is not tag=value", shown(spec)));
            };
            let (name, value) = (trim(&spec[..eq]), trim(&spec[eq + 1..]));
            let valid_name = name.first().is_some_and(u8::is_ascii_alphabetic)
                && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
            if !valid_name {
                return Err(format!("{:?} is not a tag name", shown(name)));
            }
            // Checked: ASCII letters, digits and '_'.
            let name = ascii(name);
            let mut folded = false;
            for b in value {
                if fws(*b) {
                    folded = true;
                } else if !valchar(*b) {
                    return Err(format!("byte {b:#04x} in the value of {name}="));
                }
            }
            if tags.iter().any(|(n, _)| *n == name) {
                return Err(format!("duplicate tag {name}="));
            }
            // Checked: printable ASCII and folding whitespace only.
            let value = if folded {
                let mut kept = Vec::with_capacity(value.len());
                kept.extend(value.iter().copied().filter(|b| !fws(*b)));
                Cow::Owned(String::from_utf8(kept).unwrap_or_default())
            } else {
                Cow::Borrowed(ascii(value))
            };
            tags.push((name, value));
        }
        Ok(Tags(tags))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The first of `names` that is missing, as "missing x= tag".
    pub(crate) fn require(&self, names: &[&str]) -> Result<(), String> {
        match names.iter().find(|n| self.get(n).is_none()) {
            Some(n) => Err(format!("missing {n}= tag")),
            None => Ok(()),
        }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| *n)
    }
}

/// VALCHAR: printable ASCII except ";".
fn valchar(b: u8) -> bool {
    (b'!'..=b'~').contains(&b) && b != b';'
}

fn fws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes already checked to be ASCII, as text.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !fws(*b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !fws(*b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// At most 40 printable characters, for an error message.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6376_tag_lists() {
        let t =
            Tags::parse(b" v=1; a=rsa-sha256;\r\n\td=example.com; b=abc\r\n def ;").expect("parse");
        assert_eq!(t.get("v"), Some("1"));
        assert_eq!(t.get("b"), Some("abcdef"));
        assert_eq!(t.names().collect::<Vec<_>>(), ["v", "a", "d", "b"]);
        assert_eq!(
            Tags::parse(b"k=rsa; p=").expect("empty value").get("p"),
            Some("")
        );
        for (bad, why) in [
            ("v=1; v=1", "duplicate tag v="),
            ("v=1;; a=b", "an empty tag"),
            ("v=1; a", "is not tag=value"),
            ("1v=1", "is not a tag name"),
            ("v=1; a b=c", "is not a tag name"),
            ("v=1; a=\u{1}", "byte 0x01"),
            ("", "an empty tag"),
        ] {
            let err = Tags::parse(bad.as_bytes()).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        // Names are case-sensitive: V= is another tag, so v= is missing.
        let upper = Tags::parse(b"V=1; a=rsa-sha256").expect("parse");
        assert_eq!(upper.require(&["v", "a"]), Err("missing v= tag".into()));
    }
}
