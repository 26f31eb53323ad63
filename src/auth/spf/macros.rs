//! SPF macro strings (RFC 7208 §7): parsed strictly to the §7.1 ABNF, then expanded
//! against one check's facts. A syntax error here makes the record a `permerror`;
//! the expansion itself cannot fail.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Where a macro string stands: in a domain-spec, or in the explanation text that
/// an `exp=` record holds (the only place `c`, `r` and `t` may appear, and spaces).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Context {
    Domain,
    Explanation,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Piece {
    Literal(String),
    Macro {
        /// Lower case; an upper-case letter in the record sets `escape`.
        letter: u8,
        escape: bool,
        /// The DIGIT transformer: keep this many right-hand parts.
        keep: Option<usize>,
        reverse: bool,
        /// Characters that split the value; "." when none were given.
        delimiters: String,
    },
}

/// A parsed macro string.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct MacroString {
    pieces: Vec<Piece>,
}

/// The facts a check expands macros against (§7.2).
pub(crate) struct Facts<'a> {
    /// `s`: the whole identity, `local@domain`.
    pub sender: &'a str,
    /// `l`: its local part (`postmaster` when it had none).
    pub local: &'a str,
    /// `o`: its domain.
    pub sender_domain: &'a str,
    /// `d`: the domain whose record is being evaluated.
    pub domain: &'a str,
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `r`: our host name.
    pub receiver: &'a str,
    /// `p`: the validated name of the client, or "unknown"; looked up only when a
    /// string uses it (see [`MacroString::uses_p`]).
    pub validated: &'a str,
    /// `t`: seconds since the epoch.
    pub now: u64,
}

impl MacroString {
    pub(crate) fn parse(text: &str, context: Context) -> Result<MacroString, String> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'%' => {
                    let Some(&next) = bytes.get(i + 1) else {
                        return Err(format!("'%' at the end of {text:?}"));
                    };
                    i += 2;
                    match next {
                        b'%' => literal.push('%'),
                        b'_' => literal.push(' '),
                        b'-' => literal.push_str("%20"),
                        b'{' => {
                            let end = text[i..]
                                .find('}')
                                .ok_or_else(|| format!("unclosed macro in {text:?}"))?;
                            let piece = parse_expand(&text[i..i + end], context)?;
                            if !literal.is_empty() {
                                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                            }
                            pieces.push(piece);
                            i += end + 1;
                        }
                        other => {
                            return Err(format!(
                                "'%' followed by {:?} in {text:?}",
                                char::from(other)
                            ));
                        }
                    }
                }
                0x21..=0x7e => {
                    literal.push(char::from(b));
                    i += 1;
                }
                b' ' if context == Context::Explanation => {
                    literal.push(' ');
                    i += 1;
                }
                other => {
                    return Err(format!("character {other:#04x} is not allowed in {text:?}"));
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(MacroString { pieces })
    }

    /// Whether the string is a domain-spec (§7.1): it ends in a macro or in
    /// `.toplabel` with an optional final dot.
    /// The text, when it has no macro in it (what a static audit can follow).
    pub(crate) fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Macro { .. } => return None,
            }
        }
        Some(out)
    }

    pub(crate) fn ends_like_a_domain(&self) -> bool {
        match self.pieces.last() {
            Some(Piece::Macro { .. }) => true,
            Some(Piece::Literal(text)) => {
                let text = text.strip_suffix('.').unwrap_or(text);
                match text.rfind('.') {
                    // The dot must be in this literal, after an earlier piece or text.
                    Some(dot) => toplabel(&text[dot + 1..]),
                    None => false,
                }
            }
            None => false,
        }
    }

    pub(crate) fn uses_p(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Macro { letter: b'p', .. }))
    }

    pub(crate) fn expand(&self, facts: &Facts<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Macro {
                    letter,
                    escape,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    let value = value(*letter, facts);
                    let mut parts: Vec<&str> =
                        value.split(|c: char| delimiters.contains(c)).collect();
                    if *reverse {
                        parts.reverse();
                    }
                    if let Some(n) = keep {
                        let skip = parts.len().saturating_sub(*n);
                        parts.drain(..skip);
                    }
                    let joined = parts.join(".");
                    if *escape {
                        url_escape(&joined, &mut out);
                    } else {
                        out.push_str(&joined);
                    }
                }
            }
        }
        out
    }

    /// The expansion used as a DNS name (§7.3): longer than 253 characters, it
    /// loses whole labels from the left until it fits.
    pub(crate) fn expand_domain(&self, facts: &Facts<'_>) -> String {
        let mut name = self.expand(facts);
        if name.ends_with('.') {
            name.pop();
        }
        while name.len() > 253 {
            match name.find('.') {
                Some(dot) => {
                    name.drain(..=dot);
                }
                None => break,
            }
        }
        name
    }
}

/// The inside of `%{...}`: a letter, transformers, delimiters.
fn parse_expand(inner: &str, context: Context) -> Result<Piece, String> {
    let mut chars = inner.chars().peekable();
    let first = chars
        .next()
        .ok_or_else(|| "an empty macro %{}".to_owned())?;
    let letter = first.to_ascii_lowercase();
    let allowed = match context {
        Context::Domain => "slodiphv",
        Context::Explanation => "slodiphvcrt",
    };
    if !first.is_ascii_alphabetic() || !allowed.contains(letter) {
        return Err(match context {
            Context::Domain if "crt".contains(letter) => {
                format!("macro %{{{first}}} is allowed only in explanation text")
            }
            _ => format!("unknown macro letter {first:?}"),
        });
    }
    let mut digits = String::new();
    while let Some(c) = chars.next_if(char::is_ascii_digit) {
        digits.push(c);
    }
    let keep = if digits.is_empty() {
        None
    } else {
        match digits.parse::<usize>() {
            Ok(0) => return Err(format!("macro %{{{inner}}} keeps zero parts")),
            Ok(n) => Some(n.min(128)),
            Err(_) => Some(128),
        }
    };
    let reverse = chars.next_if(|c| *c == 'r' || *c == 'R').is_some();
    let delimiters: String = chars.collect();
    if let Some(bad) = delimiters.chars().find(|c| !".-+,/_=".contains(*c)) {
        return Err(format!("{bad:?} is not a macro delimiter in %{{{inner}}}"));
    }
    Ok(Piece::Macro {
        letter: letter as u8,
        escape: first.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: if delimiters.is_empty() {
            ".".into()
        } else {
            delimiters
        },
    })
}

/// RFC 7208 §7.1 `toplabel`: letters, digits and inner hyphens, not all digits.
pub(crate) fn toplabel(label: &str) -> bool {
    let b = label.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter().any(|c| c.is_ascii_alphabetic() || *c == b'-')
}

fn value(letter: u8, f: &Facts<'_>) -> String {
    match letter {
        b's' => f.sender.to_owned(),
        b'l' => f.local.to_owned(),
        b'o' => f.sender_domain.to_owned(),
        b'd' => f.domain.to_owned(),
        b'i' => dotted(f.ip),
        b'p' => f.validated.to_owned(),
        b'v' => match f.ip {
            IpAddr::V4(_) => "in-addr".into(),
            IpAddr::V6(_) => "ip6".into(),
        },
        b'h' => f.helo.to_owned(),
        b'c' => f.ip.to_string(),
        b'r' => f.receiver.to_owned(),
        b't' => f.now.to_string(),
        _ => String::new(),
    }
}

/// `%{i}`: an IPv4 address as is, an IPv6 address as 32 dot-separated nibbles.
pub(crate) fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets() {
                let _ = write!(out, "{:x}.{:x}.", byte >> 4, byte & 15);
            }
            out.pop();
            out
        }
    }
}

/// Upper-case macro letters: every character outside RFC 3986's "unreserved"
/// set becomes `%XX`.
fn url_escape(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}
