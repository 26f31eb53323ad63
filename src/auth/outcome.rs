//! `mail-auth`'s outputs as RFC 8601 results: each SPF, DKIM, ARC and iprev outcome
//! becomes one [`MethodResult`] with the result word, a reason an admin can read,
//! and the properties the header carries.

use std::net::IpAddr;

use mail_auth::common::crypto::Algorithm;
use mail_auth::dkim::DkimError;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::{DkimOutput, DkimResult, DnsError, Error, IprevResult};

use super::base64_prefix;
use super::results::{AuthResult, MethodResult};
use super::spf::{Check, Verdict};

pub(super) fn spf_result(out: &Check, ip: IpAddr) -> MethodResult {
    let domain = &out.domain;
    let (result, reason) = match &out.verdict {
        Verdict::Pass => (
            AuthResult::Pass,
            format!("{domain} designates {ip} as permitted sender"),
        ),
        Verdict::Fail => (
            AuthResult::Fail,
            match &out.explanation {
                Some(text) => format!(
                    "{domain} does not designate {ip} as permitted sender; explanation: {}",
                    printable(text)
                ),
                None => format!("{domain} does not designate {ip} as permitted sender"),
            },
        ),
        Verdict::SoftFail => (
            AuthResult::SoftFail,
            format!("{domain} does not designate {ip}, softly"),
        ),
        Verdict::Neutral => (
            AuthResult::Neutral,
            format!("{domain} makes no assertion about {ip}"),
        ),
        Verdict::None(why) => (AuthResult::None, why.clone()),
        Verdict::TempError(why) => (AuthResult::TempError, why.clone()),
        Verdict::PermError(why) => (AuthResult::PermError, why.clone()),
    };
    MethodResult::new("spf", result).reason(reason)
}

/// A domain owner's text, cut to printable ASCII and 200 characters (the header
/// writer escapes what a comment cannot hold).
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| (' '..='~').contains(c))
        .take(200)
        .collect()
}

pub(super) fn dkim_result(out: &DkimOutput<'_>, body_len: u64) -> MethodResult {
    let (mut result, mut reason) = match out.result() {
        DkimResult::Pass => (AuthResult::Pass, None),
        DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)) => (
            AuthResult::Fail,
            Some("body hash did not verify".to_owned()),
        ),
        DkimResult::Neutral(Error::Dkim(DkimError::SignatureExpired)) => {
            (AuthResult::Fail, Some("signature expired (x=)".to_owned()))
        }
        DkimResult::Neutral(e) => (
            AuthResult::Neutral,
            Some(format!("unusable signature: {e}")),
        ),
        DkimResult::Fail(e) => (AuthResult::Fail, Some(error_text(e))),
        DkimResult::PermError(Error::Dkim(DkimError::RevokedPublicKey)) => {
            (AuthResult::Fail, Some("key revoked (empty p=)".to_owned()))
        }
        DkimResult::PermError(Error::Dns(DnsError::RecordNotFound(code)))
            if !matches!(code, ResponseCode::NXDomain | ResponseCode::NoError) =>
        {
            (AuthResult::TempError, Some(format!("DNS answered {code}")))
        }
        DkimResult::PermError(Error::Dns(_)) => (
            AuthResult::PermError,
            Some("no key for signature".to_owned()),
        ),
        DkimResult::PermError(e) => (AuthResult::PermError, Some(error_text(e))),
        DkimResult::TempError(e) => (AuthResult::TempError, Some(error_text(e))),
        DkimResult::None => (AuthResult::None, None),
    };
    // mail-auth looks up an ATPS authorization (RFC 6541, experimental) only after
    // the signature verified, and reports a failed lookup in place of that pass.
    // The signature is good either way; the ATPS outcome is only a remark.
    if let (Some(sig), DkimResult::PermError(e) | DkimResult::TempError(e)) =
        (out.signature(), out.result())
        && *out
            == DkimOutput::dns_error(e.clone())
                .with_atps()
                .with_signature(sig)
    {
        result = AuthResult::Pass;
        reason = Some(format!(
            "third-party authorization (ATPS) for {} not confirmed",
            sig.atps.as_deref().unwrap_or("?")
        ));
    }
    let Some(sig) = out.signature() else {
        let mut m = MethodResult::new("dkim", result);
        m.reason = reason;
        return m;
    };
    if result == AuthResult::Pass {
        if sig.a == Algorithm::RsaSha1 {
            result = AuthResult::PermError;
            reason = Some("rsa-sha1 is not valid (RFC 8301 3.1)".into());
        } else if sig.l > 0 && sig.l < body_len {
            result = AuthResult::Policy;
            reason = Some(format!(
                "l={} signs only part of the {body_len}-byte body",
                sig.l
            ));
        }
    }
    let mut m = MethodResult::new("dkim", result);
    m.reason = reason;
    let identity = if sig.i.is_empty() {
        format!("@{}", sig.d)
    } else {
        sig.i.clone()
    };
    m.prop("header.d", sig.d.to_ascii_lowercase())
        .prop("header.i", identity)
        .prop("header.s", sig.s.clone())
        .prop("header.a", algorithm_name(sig.a))
        .prop("header.b", base64_prefix(&sig.b))
}

pub(super) fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RsaSha256 => "rsa-sha256",
        Algorithm::RsaSha1 => "rsa-sha1",
        Algorithm::Ed25519Sha256 => "ed25519-sha256",
    }
}

pub(super) fn error_text(e: &Error) -> String {
    match e {
        Error::Crypto(_) => "signature did not verify".into(),
        Error::Dkim(DkimError::FailedAuidMatch) => "i= is not within d=".into(),
        Error::Dns(DnsError::Resolver(e)) => format!("DNS error: {e}"),
        other => other.to_string(),
    }
}

pub(super) fn arc_result(out: &mail_auth::ArcOutput<'_>) -> (MethodResult, Option<String>) {
    let sets = out.sets();
    let sealer = sets.last().map(|s| s.seal.header.d.to_ascii_lowercase());
    let chain = sets.len();
    let m = match out.result() {
        DkimResult::None => MethodResult::new("arc", AuthResult::None),
        DkimResult::Pass => MethodResult::new("arc", AuthResult::Pass).reason(format!(
            "i={chain} sealed by {}",
            sealer.as_deref().unwrap_or("?")
        )),
        DkimResult::Fail(e)
        | DkimResult::Neutral(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => {
            MethodResult::new("arc", AuthResult::Fail).reason(error_text(e))
        }
    };
    let pass = m.result == AuthResult::Pass;
    (m, sealer.filter(|_| pass))
}

pub(super) fn iprev_result(ip: IpAddr, out: &mail_auth::IprevOutput) -> MethodResult {
    let ptr = out
        .ptr
        .as_ref()
        .and_then(|p| p.first())
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let (result, reason) = match &out.result {
        IprevResult::Pass => (AuthResult::Pass, ptr.clone()),
        IprevResult::Fail(_) => (
            AuthResult::Fail,
            Some(format!(
                "{} does not resolve back to {ip}",
                ptr.as_deref().unwrap_or("PTR")
            )),
        ),
        IprevResult::PermError(Error::Dns(DnsError::RecordNotFound(code)))
            if !matches!(code, ResponseCode::NXDomain | ResponseCode::NoError) =>
        {
            (AuthResult::TempError, Some(format!("DNS answered {code}")))
        }
        IprevResult::PermError(_) => (AuthResult::PermError, Some(format!("no PTR for {ip}"))),
        IprevResult::TempError(e) => (AuthResult::TempError, Some(error_text(e))),
        IprevResult::None => (AuthResult::None, None),
    };
    let mut m = MethodResult::new("iprev", result).prop("policy.iprev", ip.to_string());
    m.reason = reason;
    m
}

#[cfg(test)]
mod tests {
    use mail_auth::dkim::Signature;

    use super::*;

    fn sig(a: Algorithm, l: u64) -> Signature {
        Signature {
            a,
            d: "Example.COM".into(),
            s: "sel".into(),
            b: vec![0xff, 0xef, 0xbe, 1, 2, 3],
            l,
            ..Default::default()
        }
    }

    fn map(out: DkimOutput<'_>, body_len: u64) -> (AuthResult, String) {
        let m = dkim_result(&out, body_len);
        (m.result, m.reason.unwrap_or_default())
    }

    #[test]
    fn dkim_outcomes_map_to_rfc_8601_results() {
        let rsa = sig(Algorithm::RsaSha256, 0);
        let expired =
            DkimOutput::neutral(Error::Dkim(DkimError::SignatureExpired)).with_signature(&rsa);
        assert_eq!(
            map(expired, 10),
            (AuthResult::Fail, "signature expired (x=)".into())
        );
        let body =
            DkimOutput::neutral(Error::Dkim(DkimError::FailedBodyHashMatch)).with_signature(&rsa);
        assert_eq!(map(body, 10).0, AuthResult::Fail);
        let revoked =
            DkimOutput::dns_error(Error::Dkim(DkimError::RevokedPublicKey)).with_signature(&rsa);
        assert_eq!(map(revoked, 10).0, AuthResult::Fail);
        let nxdomain =
            DkimOutput::dns_error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))
                .with_signature(&rsa);
        assert_eq!(map(nxdomain, 10).0, AuthResult::PermError);
        let servfail =
            DkimOutput::dns_error(Error::Dns(DnsError::RecordNotFound(ResponseCode::ServFail)))
                .with_signature(&rsa);
        assert_eq!(map(servfail, 10).0, AuthResult::TempError);
        let timeout = DkimOutput::dns_error(Error::Dns(DnsError::Resolver("timed out".into())))
            .with_signature(&rsa);
        assert_eq!(map(timeout, 10).0, AuthResult::TempError);
        let m = dkim_result(&DkimOutput::pass().with_signature(&rsa), 10);
        assert_eq!(m.result, AuthResult::Pass);
        assert_eq!(m.get("header.d"), Some("example.com"));
        assert_eq!(m.get("header.i"), Some("@Example.COM"));
        assert_eq!(m.get("header.b"), Some("/+++AQID"));
    }

    #[test]
    fn weak_or_partial_signatures_are_not_pass() {
        // RFC 8301 §3.1: an rsa-sha1 signature is not valid at all.
        let sha1 = sig(Algorithm::RsaSha1, 0);
        assert_eq!(
            map(DkimOutput::pass().with_signature(&sha1), 10).0,
            AuthResult::PermError
        );
        // A partial body is our policy (RFC 8601 §2.7.1 "policy").
        let partial = sig(Algorithm::RsaSha256, 100);
        let (result, reason) = map(DkimOutput::pass().with_signature(&partial), 150);
        assert_eq!(result, AuthResult::Policy);
        assert!(reason.contains("l=100"), "{reason}");
        assert_eq!(
            map(DkimOutput::pass().with_signature(&partial), 100).0,
            AuthResult::Pass
        );
    }

    #[test]
    fn a_failed_atps_lookup_does_not_undo_a_verified_signature() {
        let mut s = sig(Algorithm::Ed25519Sha256, 0);
        s.atps = Some("example.net".into());
        let nx = Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain));
        let atps = DkimOutput::dns_error(nx.clone())
            .with_atps()
            .with_signature(&s);
        assert_eq!(map(atps, 10).0, AuthResult::Pass);
        // The key lookup failing for the same signature is still an error.
        let key = DkimOutput::dns_error(nx).with_signature(&s);
        assert_eq!(map(key, 10).0, AuthResult::PermError);
    }
}
