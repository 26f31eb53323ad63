//! DKIM signatures checked to the letter of RFC 6376 around mail-auth's crypto:
//! every DKIM-Signature field is parsed strictly first (§3.2, §3.5, §6.1.1), so a
//! field mail-auth would drop or misread is reported as `dkim=permerror` with the
//! reason; a signature that did not verify gets its key record read the way §6.1.2
//! orders it (before the body hash), so a key DNS failure is `temperror` and a
//! malformed key record `permerror`. An RSA-SHA1 signature is not valid at all
//! (RFC 8301 §3.1): `permerror` unless its key lookup failed first.

use mail_auth::{DkimOutput, DkimResult};

use super::base64_prefix;
use super::lookup::{Dns, Failure};
use super::outcome::dkim_result;
use super::results::{AuthResult, MethodResult};
use super::tags::Tags;

/// What the strict reading of one DKIM-Signature field found.
struct Field {
    d: Option<String>,
    s: Option<String>,
    a: Option<String>,
    /// The first 8 characters of b=, to find mail-auth's output for this field.
    b: Option<String>,
    problem: Option<String>,
}

#[cfg(feature = "fuzzing")]
pub(crate) fn read_for_fuzzing(value: &[u8]) {
    let _ = read(value);
    let _ = key_problem(value, "rsa-sha256");
}

/// §3.5 and §6.1.1, the checks that make a signature PERMFAIL before any key is
/// fetched.
fn read(value: &[u8]) -> Field {
    let tags = Tags::parse(value);
    let get = |name: &str| {
        tags.as_ref()
            .ok()
            .and_then(|t| t.get(name))
            .map(str::to_owned)
    };
    let mut field = Field {
        d: get("d").map(|d| d.to_ascii_lowercase()),
        s: get("s"),
        a: get("a"),
        b: get("b").map(|b| b.chars().take(8).collect()),
        problem: None,
    };
    field.problem = match &tags {
        Err(e) => Some(e.clone()),
        Ok(tags) => problem(tags).err(),
    };
    field
}

fn problem(tags: &Tags) -> Result<(), String> {
    tags.require(&["v", "a", "b", "bh", "d", "h", "s"])?;
    let get = |name: &str| tags.get(name).unwrap_or_default();
    if get("v") != "1" {
        return Err(format!("v={} is not 1", get("v")));
    }
    if !["rsa-sha256", "rsa-sha1", "ed25519-sha256"].contains(&get("a")) {
        return Err(format!("unsupported algorithm a={}", get("a")));
    }
    if !get("h").split(':').any(|h| h.eq_ignore_ascii_case("from")) {
        return Err("From is not signed (h=)".into());
    }
    let d = get("d").to_ascii_lowercase();
    if let Some(i) = tags.get("i") {
        let domain = i.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
        match domain {
            Some(domain) if domain == d || domain.ends_with(&format!(".{d}")) => {}
            _ => return Err(format!("i={i} is not within d={d}")),
        }
    }
    let number = |name: &str| -> Result<Option<u64>, String> {
        tags.get(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{name}={v} is not a number"))
            })
            .transpose()
    };
    number("l")?;
    if let (Some(t), Some(x)) = (number("t")?, number("x")?)
        && x <= t
    {
        return Err(format!("x={x} is not after t={t}"));
    }
    if let Some(c) = tags.get("c") {
        let ok = c
            .split('/')
            .all(|part| matches!(part, "simple" | "relaxed"))
            && c.split('/').count() <= 2;
        if !ok {
            return Err(format!("unknown canonicalization c={c}"));
        }
    }
    match tags.get("q") {
        None | Some("dns/txt") => Ok(()),
        Some(q) => Err(format!("unknown query method q={q}")),
    }
}

/// §3.6.1 and §6.1.2: the key record's own errors, for a signature by `a`.
fn key_problem(record: &[u8], a: &str) -> Result<(), String> {
    let tags = Tags::parse(record).map_err(|e| format!("key record: {e}"))?;
    if let Some(v) = tags.get("v") {
        if v != "DKIM1" {
            return Err(format!("key record v={v} is not DKIM1"));
        }
        if tags.names().next() != Some("v") {
            return Err("key record v= is not the first tag".into());
        }
    }
    let (key_type, hash) = a.split_once('-').unwrap_or((a, ""));
    if let Some(k) = tags.get("k")
        && k != key_type
    {
        return Err(format!("key record k={k} does not fit a={a}"));
    }
    if let Some(h) = tags.get("h")
        && !h.split(':').any(|x| x == hash)
    {
        return Err(format!("key record h={h} does not allow {hash}"));
    }
    if let Some(s) = tags.get("s")
        && !s.split(':').any(|x| x == "email" || x == "*")
    {
        return Err(format!("key record s={s} is not for email"));
    }
    tags.require(&["p"]).map_err(|e| format!("key record: {e}"))
}

/// One `dkim=` result per DKIM-Signature field, in header order: a field that
/// fails the strict reading is `permerror` with its reason; the others take
/// mail-auth's verdict, refined by the key record when they did not pass.
pub(crate) async fn results<D: Dns>(
    dns: &D,
    fields: &[&[u8]],
    outputs: &[DkimOutput<'_>],
    body_len: u64,
) -> Vec<(MethodResult, Option<usize>)> {
    let mut used = vec![false; outputs.len()];
    let mut out = Vec::with_capacity(fields.len());
    for value in fields {
        let field = read(value);
        if let Some(problem) = &field.problem {
            let mut m = MethodResult::new("dkim", AuthResult::PermError).reason(problem.clone());
            if let Some(d) = field.d.as_ref().filter(|d| !d.is_empty() && d.len() < 254) {
                m = m.prop("header.d", d.clone());
            }
            if let Some(s) = field.s.as_ref().filter(|s| !s.is_empty() && s.len() < 64) {
                m = m.prop("header.s", s.clone());
            }
            if let Some(a) = field.a.as_ref().filter(|a| a.len() < 32) {
                m = m.prop("header.a", a.clone());
            }
            out.push((m, None));
            continue;
        }
        // mail-auth's output for this field: the one whose signature has this b=.
        let found = outputs
            .iter()
            .enumerate()
            .position(|(i, o)| !used[i] && o.signature().map(|s| base64_prefix(&s.b)) == field.b);
        let Some(index) = found else {
            // mail-auth could not read a field we can: it cannot be verified.
            out.push((
                MethodResult::new("dkim", AuthResult::PermError)
                    .reason("signature could not be processed")
                    .prop("header.d", field.d.clone().unwrap_or_default()),
                None,
            ));
            continue;
        };
        used[index] = true;
        let mut m = dkim_result(&outputs[index], body_len);
        if !matches!(outputs[index].result(), DkimResult::Pass | DkimResult::None)
            && let (Some(d), Some(s), Some(a)) = (&field.d, &field.s, &field.a)
        {
            match dns.txt(&format!("{s}._domainkey.{d}")).await {
                Err(Failure::Error(e)) => {
                    m.result = AuthResult::TempError;
                    m.reason = Some(format!("key lookup: {e}"));
                }
                Ok(records) if !records.is_empty() => {
                    if let Err(problem) = key_problem(&records[0], a) {
                        m.result = AuthResult::PermError;
                        m.reason = Some(problem);
                    }
                }
                _ => {
                    m.result = AuthResult::PermError;
                    m.reason = Some("no key for signature".into());
                }
            }
        }
        if field.a.as_deref() == Some("rsa-sha1") && m.result != AuthResult::TempError {
            m.result = AuthResult::PermError;
            m.reason = Some("rsa-sha1 is not valid (RFC 8301 3.1)".into());
        }
        out.push((m, Some(index)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(value: &str) -> Option<String> {
        read(value.as_bytes()).problem
    }

    const GOOD: &str = "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; \
                        h=from:to:subject; bh=abc=; b=defghijklmn";

    #[test]
    fn signature_fields_section_3_5_and_6_1_1() {
        assert_eq!(why(GOOD), None);
        for (change, reason) in [("v=1; ", "missing v= tag"), ("v=1;", "missing v= tag")] {
            assert_eq!(why(&GOOD.replacen(change, "", 1)).as_deref(), Some(reason));
        }
        let cases = [
            (GOOD.replace("v=1", "v=0.5"), "v=0.5 is not 1"),
            (format!("{GOOD}; v=1"), "duplicate tag v="),
            (GOOD.replace("h=from:", "h="), "From is not signed"),
            (
                GOOD.replace("a=rsa-sha256", "a=rsa-md5"),
                "unsupported algorithm",
            ),
            (format!("{GOOD}; i=user@other.com"), "is not within d="),
            (format!("{GOOD}; t=100; x=50"), "is not after"),
            (format!("{GOOD}; l=ten"), "is not a number"),
            (
                GOOD.replace("relaxed/relaxed", "fancy"),
                "unknown canonicalization",
            ),
            (format!("{GOOD}; q=dns"), "unknown query method"),
            (GOOD.replace(" s=sel;", ""), "missing s= tag"),
        ];
        for (value, reason) in cases {
            let got = why(&value).unwrap_or_default();
            assert!(got.contains(reason), "{value:?}: {got:?}");
        }
        assert_eq!(why(&format!("{GOOD}; i=@mail.example.com")), None);
        assert_eq!(read(GOOD.as_bytes()).b.as_deref(), Some("defghijk"));
    }

    #[test]
    fn key_records_section_3_6_1() {
        assert_eq!(key_problem(b"v=DKIM1; k=rsa; p=MIIB", "rsa-sha256"), Ok(()));
        assert_eq!(key_problem(b"p=MIIB", "ed25519-sha256"), Ok(()));
        assert_eq!(key_problem(b"k=rsa; p=", "rsa-sha256"), Ok(()));
        for (record, a, reason) in [
            ("v=DKIM3; p=MIIB", "rsa-sha256", "is not DKIM1"),
            ("k=rsa; v=DKIM1; p=MIIB", "rsa-sha256", "not the first tag"),
            ("k=foobar; p=MIIB", "rsa-sha256", "does not fit"),
            ("k=rsa; p=MIIB", "ed25519-sha256", "does not fit"),
            ("h=sha1; p=MIIB", "rsa-sha256", "does not allow sha256"),
            ("s=chat; p=MIIB", "rsa-sha256", "is not for email"),
            ("k=rsa; t; p=MIIB", "rsa-sha256", "is not tag=value"),
            ("k=rsa", "rsa-sha256", "missing p= tag"),
        ] {
            let got = key_problem(record.as_bytes(), a).expect_err(record);
            assert!(got.contains(reason), "{record:?}: {got}");
        }
    }
}
