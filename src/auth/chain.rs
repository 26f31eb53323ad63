//! The ARC header sets checked to RFC 8617 before mail-auth validates the chain:
//! each ARC-Seal and ARC-Message-Signature parsed strictly as a tag list (§4.1,
//! RFC 6376 §3.2), the tags each must and must not carry, and the structure of
//! §5.2 step 2: one ARC-Seal, one ARC-Message-Signature and one
//! ARC-Authentication-Results per instance, instances 1 to N with no gap, N ≤ 50.
//! A chain that breaks any of these is `arc=fail` whatever its signatures say.

use super::tags::Tags;

/// §4.2.1: more instances than this make the chain fail.
const MAX_INSTANCES: u32 = 50;

/// `None` when the message carries no ARC header at all; else whether the sets
/// are well formed, with the reason when they are not.
pub(crate) fn check(headers: &[(&[u8], &[u8])]) -> Option<Result<(), String>> {
    let arc = |name: &[u8]| name.len() > 4 && name[..4].eq_ignore_ascii_case(b"ARC-");
    if !headers.iter().any(|(name, _)| arc(name)) {
        return None;
    }
    let named = |name: &[u8]| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    };
    let seals = named(b"ARC-Seal");
    let signatures = named(b"ARC-Message-Signature");
    let results = named(b"ARC-Authentication-Results");
    if seals.is_empty() && signatures.is_empty() && results.is_empty() {
        return None;
    }
    Some(well_formed(&seals, &signatures, &results))
}

fn well_formed(seals: &[&[u8]], signatures: &[&[u8]], results: &[&[u8]]) -> Result<(), String> {
    let mut instances: [Vec<u32>; 3] = Default::default();
    for value in seals {
        let tags = Tags::parse(value).map_err(|e| format!("ARC-Seal: {e}"))?;
        tags.require(&["i", "a", "b", "cv", "d", "s"])
            .map_err(|e| format!("ARC-Seal: {e}"))?;
        if tags.get("h").is_some() {
            return Err("ARC-Seal carries h= (RFC 8617 4.1.3)".into());
        }
        algorithm("ARC-Seal", &tags)?;
        if !matches!(tags.get("cv"), Some("none" | "pass" | "fail")) {
            return Err(format!(
                "ARC-Seal cv={} is not none, pass or fail",
                tags.get("cv").unwrap_or_default()
            ));
        }
        instances[0].push(instance("ARC-Seal", tags.get("i"))?);
    }
    for value in signatures {
        let tags = Tags::parse(value).map_err(|e| format!("ARC-Message-Signature: {e}"))?;
        tags.require(&["i", "a", "b", "bh", "d", "h", "s"])
            .map_err(|e| format!("ARC-Message-Signature: {e}"))?;
        algorithm("ARC-Message-Signature", &tags)?;
        let signs_seal = tags
            .get("h")
            .unwrap_or_default()
            .split(':')
            .any(|h| h.eq_ignore_ascii_case("arc-seal"));
        if signs_seal {
            return Err("ARC-Message-Signature signs ARC-Seal (RFC 8617 4.1.2)".into());
        }
        instances[1].push(instance("ARC-Message-Signature", tags.get("i"))?);
    }
    for value in results {
        // Only its leading "i=N;" is ARC's; the rest is an RFC 8601 payload.
        let text = String::from_utf8_lossy(value);
        let first = text.split(';').next().unwrap_or_default();
        let i = first.trim().strip_prefix("i=").map(str::trim);
        instances[2].push(instance("ARC-Authentication-Results", i)?);
    }
    let count = instances.iter().map(Vec::len).max().unwrap_or(0);
    for (list, name) in instances.iter_mut().zip([
        "ARC-Seal",
        "ARC-Message-Signature",
        "ARC-Authentication-Results",
    ]) {
        list.sort_unstable();
        let expected: Vec<u32> = (1..=count as u32).collect();
        if *list != expected {
            return Err(format!(
                "{name} instances {list:?} do not match the chain's 1 to {count}"
            ));
        }
    }
    Ok(())
}

/// ARC signs with rsa-sha256 only (RFC 8617 4.1.2, 4.1.3 and RFC 8301).
fn algorithm(header: &str, tags: &Tags) -> Result<(), String> {
    match tags.get("a") {
        Some("rsa-sha256") => Ok(()),
        other => Err(format!(
            "{header} a={} is not rsa-sha256",
            other.unwrap_or_default()
        )),
    }
}

fn instance(header: &str, value: Option<&str>) -> Result<u32, String> {
    match value.map(str::parse::<u32>) {
        Some(Ok(i)) if (1..=MAX_INSTANCES).contains(&i) => Ok(i),
        _ => Err(format!(
            "{header} i={} is not an instance from 1 to {MAX_INSTANCES}",
            value.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AS: &[u8] = b"i=1; a=rsa-sha256; cv=none; d=example.org; s=s; t=1; b=abc";
    const AMS: &[u8] =
        b"i=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s; h=from:to; bh=x; b=y";
    const AAR: &[u8] = b"i=1; lists.example.org; spf=pass smtp.mailfrom=a@example.org";

    fn run(sets: &[(&str, &[u8])]) -> Option<Result<(), String>> {
        let headers: Vec<(&[u8], &[u8])> = sets.iter().map(|(n, v)| (n.as_bytes(), *v)).collect();
        check(&headers)
    }

    fn why(sets: &[(&str, &[u8])]) -> String {
        run(sets).expect("ARC headers").expect_err("must fail")
    }

    #[test]
    fn structure_section_5_2() {
        assert_eq!(run(&[("Subject", b"x")]), None);
        assert_eq!(
            run(&[
                ("ARC-Seal", AS),
                ("ARC-Message-Signature", AMS),
                ("ARC-Authentication-Results", AAR)
            ]),
            Some(Ok(()))
        );
        assert!(
            why(&[("ARC-Seal", AS), ("ARC-Authentication-Results", AAR)])
                .contains("ARC-Message-Signature instances []")
        );
        let as2 = b"i=2; a=rsa-sha256; cv=pass; d=example.org; s=s; b=abc";
        assert!(
            why(&[
                ("ARC-Seal", as2),
                ("ARC-Message-Signature", AMS),
                ("ARC-Authentication-Results", AAR)
            ])
            .contains("ARC-Seal instances [2]")
        );
        let as51 = b"i=51; a=rsa-sha256; cv=pass; d=example.org; s=s; b=abc";
        assert!(why(&[("ARC-Seal", as51)]).contains("from 1 to 50"));
    }

    #[test]
    fn fields_section_4_1() {
        let full = |seal: &[u8], ams: &[u8]| {
            why(&[
                ("ARC-Seal", seal),
                ("ARC-Message-Signature", ams),
                ("ARC-Authentication-Results", AAR),
            ])
        };
        for (seal, reason) in [
            (
                &b"i=1; a=rsa-sha256; cv=none; d=example.org; s=s; b=abc; d=x"[..],
                "duplicate tag d=",
            ),
            (b"i=1; cv=none; d=example.org; s=s; b=abc", "missing a= tag"),
            (
                b"i=1; A=rsa-sha256; cv=none; d=example.org; s=s; b=abc",
                "missing a= tag",
            ),
            (
                b"i=1; a=rsa-sha1; cv=none; d=example.org; s=s; b=abc",
                "is not rsa-sha256",
            ),
            (
                b"i=1; a=rsa-sha256; cv=none; d=example.org; s=s;; b=abc",
                "an empty tag",
            ),
            (
                b"i=1; a=rsa-sha256; cv=none; d=example.org; s=s; _=; b=abc",
                "is not a tag name",
            ),
            (
                b"i=1; a=rsa-sha256; cv=none; d=example.org; s=s; h=from; b=abc",
                "carries h=",
            ),
            (
                b"i=1; a=rsa-sha256; cv=maybe; d=example.org; s=s; b=abc",
                "cv=maybe",
            ),
        ] {
            let got = full(seal, AMS);
            assert!(
                got.contains(reason),
                "{:?}: {got}",
                String::from_utf8_lossy(seal)
            );
        }
        let ams = b"i=1; a=rsa-sha256; d=example.org; s=s; h=from:arc-seal; bh=x; b=y";
        assert!(full(AS, ams).contains("signs ARC-Seal"));
        let ams = b"i=1; d=example.org; s=s; h=from; bh=x; b=y";
        assert!(full(AS, ams).contains("missing a= tag"));
    }
}
