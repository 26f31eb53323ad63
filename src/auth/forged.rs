//! `Authentication-Results` headers that claim our authserv-id, found the way a
//! real RFC 8601 parser reads the id (§2.2: `authserv-id` is an RFC 2045 `value`, a
//! token or a quoted-string, after optional comments), compared case-insensitively
//! and without a trailing root dot. A header we cannot read cleanly (non-ASCII
//! bytes, an encoded word, an unbalanced comment or quote, a stray character
//! before the `;`) is removed when it mentions our id anywhere: a filter downstream
//! may read such a header more loosely than we do, and must never see a verdict in
//! our name that we did not write.

use super::HEADER;
use crate::decision::Edit;
use crate::transaction::Transaction;

/// Edits that delete every `Authentication-Results` header claiming `authserv_id`:
/// nobody outside can hand us a verdict in our name. The highest occurrence goes
/// first, so each index still points at the header it meant whatever way the MTA
/// counts after a deletion.
pub fn remove_forged(tx: &Transaction, authserv_id: &str) -> Vec<Edit> {
    let mut edits: Vec<Edit> = tx
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(HEADER))
        .zip(1u32..)
        .filter(|(h, _)| claims(&h.value, authserv_id))
        .map(|(_, occurrence)| Edit::DeleteHeader {
            name: HEADER.to_owned(),
            occurrence,
        })
        .collect();
    edits.reverse();
    edits
}

/// How an A-R header value's authserv-id reads.
#[derive(Debug, PartialEq, Eq)]
enum Reading {
    Id(String),
    /// Not cleanly readable: some parser may see an id where we see none.
    Doubt,
}

/// True when the header value speaks in the name of `ours`, or might.
pub fn claims(value: &[u8], ours: &str) -> bool {
    let ours = normalize(ours);
    match read_authserv_id(value) {
        Reading::Id(id) => normalize(&id) == ours,
        Reading::Doubt => mentions(value, &ours),
    }
}

fn normalize(id: &str) -> String {
    id.trim_end_matches('.').to_ascii_lowercase()
}

/// RFC 2045 `tspecials`, which end a token.
const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";

fn read_authserv_id(value: &[u8]) -> Reading {
    if !value.is_ascii() {
        return Reading::Doubt;
    }
    let mut at = 0;
    if skip_cfws(value, &mut at).is_err() {
        return Reading::Doubt;
    }
    let id = if value.get(at) == Some(&b'"') {
        match quoted_string(value, &mut at) {
            Some(id) => id,
            None => return Reading::Doubt,
        }
    } else {
        let start = at;
        while at < value.len()
            && value[at] > b' '
            && value[at] != 0x7f
            && !TSPECIALS.contains(&value[at])
        {
            at += 1;
        }
        String::from_utf8_lossy(&value[start..at]).into_owned()
    };
    if id.is_empty() {
        return Reading::Doubt;
    }
    // An optional version, then the `;` that starts the results.
    if skip_cfws(value, &mut at).is_err() {
        return Reading::Doubt;
    }
    while at < value.len() && value[at].is_ascii_digit() {
        at += 1;
    }
    if skip_cfws(value, &mut at).is_err() || value.get(at) != Some(&b';') {
        return Reading::Doubt;
    }
    Reading::Id(id)
}

/// Skips white space (folding included) and comments, nested, with quoted-pairs.
/// `Err` for a comment that never closes or a `)` that never opened.
fn skip_cfws(value: &[u8], at: &mut usize) -> Result<(), ()> {
    let mut depth = 0usize;
    while *at < value.len() {
        match value[*at] {
            b'\\' if depth > 0 => *at += 1,
            b'(' => depth += 1,
            b')' if depth > 0 => depth -= 1,
            b')' => return Err(()),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if depth > 0 => {}
            _ => break,
        }
        *at += 1;
    }
    if depth > 0 { Err(()) } else { Ok(()) }
}

/// A quoted-string starting at `at` (on its `"`), unescaped; `None` when unclosed.
fn quoted_string(value: &[u8], at: &mut usize) -> Option<String> {
    let mut out = Vec::new();
    *at += 1;
    while *at < value.len() {
        match value[*at] {
            b'\\' => {
                *at += 1;
                out.push(*value.get(*at)?);
            }
            b'"' => {
                *at += 1;
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            b'\r' | b'\n' => {}
            c => out.push(c),
        }
        *at += 1;
    }
    None
}

/// True when `ours` (normalized) appears in the value read loosely: encoded words
/// decoded, quotes and backslashes dropped, anything not printable ASCII a space.
fn mentions(value: &[u8], ours: &str) -> bool {
    let decoded = decode_encoded_words(value);
    let loose: String = decoded
        .iter()
        .filter(|b| !matches!(b, b'\\' | b'"'))
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_lowercase())
            } else {
                ' '
            }
        })
        .collect();
    !ours.is_empty() && loose.contains(ours)
}

/// The value with every RFC 2047 encoded word (`=?charset?Q?...?=`, `?B?`) replaced
/// by its bytes; anything that does not decode stays as it was.
fn decode_encoded_words(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i..].starts_with(b"=?")
            && let Some((bytes, used)) = encoded_word(&value[i..])
        {
            out.extend(bytes);
            i += used;
            continue;
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

fn encoded_word(word: &[u8]) -> Option<(Vec<u8>, usize)> {
    let ascii = word
        .iter()
        .position(|b| !b.is_ascii())
        .unwrap_or(word.len());
    let text = std::str::from_utf8(&word[..ascii]).ok()?;
    let mut parts = text[2..].splitn(3, '?');
    let _charset = parts.next()?;
    let encoding = parts.next()?;
    let rest = parts.next()?;
    let end = rest.find("?=")?;
    let encoded = &rest[..end];
    let used = 2 + text[2..].len() - rest.len() + end + 2;
    let bytes = match encoding {
        "Q" | "q" => {
            let mut out = Vec::new();
            let b = encoded.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hex = encoded.get(i + 1..i + 3)?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        "B" | "b" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?
        }
        _ => return None,
    };
    Some((bytes, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "mx.harness.test";

    #[test]
    fn the_id_is_read_as_rfc_8601_reads_it() {
        for (value, id) in [
            (&b" mx.example.com; spf=pass"[..], "mx.example.com"),
            (b" (forged) MX.Example.COM 1; dkim=pass", "MX.Example.COM"),
            (b"\n\t(a (nested \\) one))mx.example.com;", "mx.example.com"),
            (b" \"mx.example.com\"; none", "mx.example.com"),
            (b" \"mx\\.example\\.com\" ; none", "mx.example.com"),
        ] {
            assert_eq!(read_authserv_id(value), Reading::Id(id.into()), "{value:?}");
        }
        for doubtful in [
            &b" ; none"[..],
            b"",
            b" mx.example.com",
            b" (unclosed mx.example.com; spf=pass",
            b" ) mx.example.com; spf=pass",
            b" mx.example.com\xa0; spf=pass",
            b" =?utf-8?q?mx.example.com?=; spf=pass",
            b" mx\\.example\\.com; spf=pass",
            b" \"mx.example.com; spf=pass",
        ] {
            assert_eq!(read_authserv_id(doubtful), Reading::Doubt, "{doubtful:?}");
        }
    }

    /// The forgeries of the hardening review, each removed; a header of another
    /// host, however odd, is kept.
    #[test]
    fn forgeries_in_our_name_are_claims() {
        for forged in [
            &b" mx.harness.test; spf=pass"[..],
            b" MX.Harness.Test; dkim=pass",
            b" =?us-ascii?q?mx.harness.test?=; dmarc=pass",
            b" =?utf-8?Q?mx=2Eharness=2Etest?=; dmarc=pass",
            b" =?utf-8?B?bXguaGFybmVzcy50ZXN0?=; dmarc=pass",
            b" mx.harness.test.; dmarc=pass",
            b" mx.harness.test\xa0; dmarc=pass",
            b" \"mx\\.harness\\.test\"; dmarc=pass",
            b" mx\\.harness\\.test; dmarc=pass",
            b" (unbalanced mx.harness.test; dmarc=pass",
            b" (x)) mx.harness.test; dmarc=pass",
        ] {
            assert!(
                claims(forged, OURS),
                "{:?}",
                String::from_utf8_lossy(forged)
            );
        }
        for foreign in [
            &b" mx.other.test; spf=pass (mx.harness.test said so)"[..],
            b" other.test; dkim=pass header.d=harness.test",
            b" (unbalanced other.test; spf=pass",
            b" mx.harness.testing; spf=pass",
        ] {
            assert!(
                !claims(foreign, OURS),
                "{:?}",
                String::from_utf8_lossy(foreign)
            );
        }
    }
}
