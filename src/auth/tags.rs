//! RFC 6376 §3.2 tag=value lists, parsed strictly: the syntax DKIM-Signature,
//! ARC-Seal, ARC-Message-Signature (RFC 8617 §4.1) and DKIM key records share. A
//! duplicate tag makes the whole list invalid; tag names are case-sensitive.

/// The tags of a list in order, values with folding whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Tags(Vec<(String, String)>);

impl Tags {
    pub(crate) fn parse(value: &[u8]) -> Result<Tags, String> {
        let text = std::str::from_utf8(value).map_err(|_| "bytes that are not UTF-8".to_owned())?;
        let specs: Vec<&str> = text.split(';').collect();
        let mut tags: Vec<(String, String)> = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let spec = spec.trim_matches(fws);
            if spec.is_empty() {
                // Only after the last ";".
                if i + 1 == specs.len() && i > 0 {
                    continue;
                }
                return Err("an empty tag".into());
            }
            let (name, value) = spec
                .split_once('=')
                .ok_or_else(|| format!("{:?} is not tag=value", shown(spec)))?;
            let name = name.trim_matches(fws);
            let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                return Err(format!("{:?} is not a tag name", shown(name)));
            }
            let value = value.trim_matches(fws);
            if let Some(bad) = value.chars().find(|c| !valchar(*c) && !fws(*c)) {
                return Err(format!("character {:?} in the value of {name}=", bad));
            }
            if tags.iter().any(|(n, _)| n == name) {
                return Err(format!("duplicate tag {name}="));
            }
            tags.push((
                name.to_owned(),
                value.chars().filter(|c| !fws(*c)).collect(),
            ));
        }
        Ok(Tags(tags))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first of `names` that is missing, as "missing x= tag".
    pub(crate) fn require(&self, names: &[&str]) -> Result<(), String> {
        match names.iter().find(|n| self.get(n).is_none()) {
            Some(n) => Err(format!("missing {n}= tag")),
            None => Ok(()),
        }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
}

/// VALCHAR: printable ASCII except ";".
fn valchar(c: char) -> bool {
    ('!'..='~').contains(&c) && c != ';'
}

fn fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// At most 40 printable characters, for an error message.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(40).collect()
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
            ("v=1; a=\u{1}", "character"),
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
