//! Runs every inbound check for one message and turns `mail-auth`'s outputs into our
//! [`AuthReport`]: SPF for HELO and MAIL FROM, each DKIM signature, ARC, iprev, then
//! DMARC over their results. Checks that do not depend on each other run at once.

use std::net::IpAddr;

use mail_auth::dkim::DkimError;
use mail_auth::{AuthenticatedMessage, DkimResult, Error};

use super::Verifier;
use super::dmarc::{self, Identifiers, Policy};
use super::from::BadFrom;
use super::lookup::Cached;
use super::outcome::{arc_result, iprev_result, spf_result};
use super::results::{AuthReport, AuthResult, DmarcDisposition, FromField, MethodResult};
use super::spf::{self, Identity};
use super::{chain, signature};

/// What the checks need to know about the message's transaction.
pub struct Envelope<'a> {
    pub ip: IpAddr,
    /// The HELO/EHLO name (the client host name when it sent none).
    pub helo: &'a str,
    /// MAIL FROM without brackets; empty for the null sender.
    pub mail_from: &'a str,
    /// The raw message: header block (CRLF) and body.
    pub message: &'a [u8],
    /// The values of the header fields named From.
    pub from: Vec<&'a [u8]>,
    /// The body's length in bytes as received.
    pub body_len: u64,
    /// False when the body was longer than `server.max_message_size` and `message`
    /// holds only its beginning: body hashes cannot be checked.
    pub body_complete: bool,
}

impl Verifier {
    pub async fn verify(&self, env: &Envelope<'_>) -> AuthReport {
        let caches = &self.caches;
        let resolver = &self.resolver;
        let dns = Cached {
            resolver: resolver.resolver(),
            cache: &self.answers,
        };
        let helo = env.helo.trim_end_matches('.');
        let helo_is_name = !helo.is_empty()
            && !helo.starts_with('[')
            && helo.parse::<IpAddr>().is_err()
            && helo.contains('.');
        let parsed = AuthenticatedMessage::parse_with_opts(env.message, None, false);

        let spf_helo = async {
            if helo_is_name {
                Some(
                    spf::check(
                        &dns,
                        &Identity {
                            ip: env.ip,
                            sender: "",
                            helo,
                            receiver: &self.authserv_id,
                        },
                    )
                    .await,
                )
            } else {
                None
            }
        };
        let spf_mailfrom = async {
            if env.mail_from.contains('@') {
                Some(
                    spf::check(
                        &dns,
                        &Identity {
                            ip: env.ip,
                            sender: env.mail_from,
                            helo,
                            receiver: &self.authserv_id,
                        },
                    )
                    .await,
                )
            } else {
                None
            }
        };
        let iprev = resolver.verify_iprev(caches.params(env.ip));
        let dkim = async {
            match &parsed {
                Some(m) => resolver.verify_dkim(caches.params(m)).await,
                None => Vec::new(),
            }
        };
        let arc = async {
            match &parsed {
                Some(m) => Some(resolver.verify_arc(caches.params(m)).await),
                None => None,
            }
        };
        let (spf_helo, spf_mailfrom, iprev, dkim, arc) =
            tokio::join!(spf_helo, spf_mailfrom, iprev, dkim, arc);

        let iprev = iprev_result(env.ip, &iprev);
        let spf_helo_result = match &spf_helo {
            Some(out) => spf_result(out, env.ip).prop("smtp.helo", helo),
            None => MethodResult::new("spf", AuthResult::None)
                .reason("HELO is not a domain name")
                .prop("smtp.helo", sanitize(env.helo)),
        };
        // With a null sender the HELO identity stands in for MAIL FROM (RFC 7208 §2.4).
        let (spf_mailfrom_result, spf_domain) = match &spf_mailfrom {
            Some(out) => (
                spf_result(out, env.ip).prop("smtp.mailfrom", env.mail_from),
                domain_of(env.mail_from),
            ),
            None => {
                let mut m = spf_helo_result.clone();
                m.props = vec![("smtp.mailfrom", format!("postmaster@{helo}"))];
                m.reason = Some("null sender: HELO identity".into());
                (m, helo.to_owned())
            }
        };
        let fields: Vec<&[u8]> = parsed
            .as_ref()
            .map(|m| {
                m.headers
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(b"DKIM-Signature"))
                    .map(|(_, value)| *value)
                    .collect()
            })
            .unwrap_or_default();
        let checked = signature::results(&dns, &fields, &dkim, env.body_len).await;
        let mut body_unverified = false;
        let dkim_results: Vec<MethodResult> = if checked.is_empty() {
            vec![MethodResult::new("dkim", AuthResult::None).reason("no signatures")]
        } else {
            checked
                .into_iter()
                .map(|(m, index)| match index.map(|i| dkim[i].result()) {
                    Some(DkimResult::Neutral(Error::Dkim(DkimError::FailedBodyHashMatch)))
                        if !env.body_complete && m.result == AuthResult::Fail =>
                    {
                        body_unverified = true;
                        MethodResult {
                            result: AuthResult::Neutral,
                            reason: Some(
                                "body longer than server.max_message_size, not verified".into(),
                            ),
                            ..m
                        }
                    }
                    _ => m,
                })
                .collect()
        };
        let chain = parsed.as_ref().and_then(|m| chain::check(&m.headers));
        let (arc_result, sealer) = match (&arc, chain) {
            (_, Some(Err(why))) => (MethodResult::new("arc", AuthResult::Fail).reason(why), None),
            (Some(out), _) => arc_result(out),
            (None, _) => (MethodResult::new("arc", AuthResult::None), None),
        };

        let authors = super::from::author_domains(&env.from);
        let ids = Identifiers {
            spf: (spf_mailfrom_result.result, &spf_domain),
            dkim: dkim_results
                .iter()
                .filter_map(|m| m.get("header.d").map(|d| (m.result, d)))
                .collect(),
        };
        let (dmarc, dmarc_others, mut disposition, evaluations) =
            self.dmarc(&dns, &authors, &ids).await;
        if let (Some(disp), Some(sealer)) = (&mut disposition, &sealer)
            && dmarc.result == AuthResult::Fail
            && arc_result.result == AuthResult::Pass
            && self
                .trusted_arc_sealers
                .iter()
                .any(|t| t.eq_ignore_ascii_case(sealer))
        {
            disp.applied = Policy::None;
            disp.override_by = Some(sealer.clone());
        }
        let dmarc = match &disposition {
            Some(DmarcDisposition {
                override_by: Some(sealer),
                ..
            }) => {
                let reason = format!(
                    "{}; overridden: ARC sealed by trusted {sealer}",
                    dmarc.reason.as_deref().unwrap_or_default()
                );
                let mut m = dmarc.clone().reason(reason);
                m.props
                    .push(("policy.override", "trusted_forwarder".into()));
                m
            }
            _ => dmarc,
        };
        AuthReport {
            iprev,
            spf_mailfrom: spf_mailfrom_result,
            spf_helo: spf_helo_result,
            dkim: dkim_results,
            arc: arc_result,
            dmarc,
            dmarc_others,
            disposition,
            body_unverified,
            from: match authors {
                Ok(domains) => FromField::Domains(domains.len()),
                Err(bad) => FromField::Bad(bad.to_string()),
            },
            evaluations,
        }
    }

    /// DMARC for every author domain (RFC 7489 §6.6.1): the result that decides
    /// (a failure under the strictest policy, else DNS trouble, else the rest), the
    /// results for the other domains, and the disposition.
    async fn dmarc(
        &self,
        dns: &Cached<'_>,
        authors: &Result<Vec<String>, BadFrom>,
        ids: &Identifiers<'_>,
    ) -> (
        MethodResult,
        Vec<MethodResult>,
        Option<DmarcDisposition>,
        Vec<dmarc::Evaluation>,
    ) {
        let from_domains = match authors {
            Ok(domains) => domains,
            Err(bad) => {
                return (
                    MethodResult::new("dmarc", AuthResult::PermError).reason(bad.to_string()),
                    Vec::new(),
                    None,
                    Vec::new(),
                );
            }
        };
        let mut evaluations = Vec::with_capacity(from_domains.len());
        for domain in from_domains {
            // from::author_domains let through only names DNS can hold.
            evaluations.push(dmarc::evaluate(dns, domain, ids, self.discovery, sample).await);
        }
        // The worst evaluation decides, so an extra address cannot make a failing
        // domain pass.
        let worst = (0..evaluations.len())
            .max_by_key(|i| severity(&evaluations[*i]))
            .unwrap_or_default();
        evaluations.swap(0, worst);
        let decisive = &evaluations[0];
        let mut m = method_result(decisive);
        if from_domains.len() > 1 {
            let reason = format!(
                "{}; worst of {} From domains",
                m.reason.as_deref().unwrap_or_default(),
                from_domains.len()
            );
            m = m.reason(reason);
        }
        // Only a failure has a policy to apply.
        let disposition = decisive.requested.map(|requested| DmarcDisposition {
            requested,
            applied: match decisive.result {
                AuthResult::Fail => decisive.applied.unwrap_or(requested),
                _ => Policy::None,
            },
            override_by: None,
        });
        let others = evaluations[1..].iter().map(method_result).collect();
        (m, others, disposition, evaluations)
    }
}

/// One domain's evaluation as a `dmarc=` entry.
fn method_result(eval: &dmarc::Evaluation) -> MethodResult {
    let mut reason = eval.reason.clone();
    if let Some(p) = eval.requested {
        reason = format!("p={}; {reason}", p.as_str());
    }
    let mut m = MethodResult::new("dmarc", eval.result)
        .reason(reason)
        .prop("header.from", eval.from_domain.clone());
    if let Some(p) = eval.requested {
        m = m.prop("policy.dmarc", p.as_str());
    }
    // RFC 9989 §11.1: where the record was found, when not at the From domain.
    if let Some(found) = eval
        .published
        .as_ref()
        .filter(|f| f.domain != eval.from_domain)
    {
        m = m.prop("polrec.domain", found.domain.clone());
    }
    m
}

/// Fail with the strictest policy beats everything; then DNS trouble; then pass.
fn severity(e: &dmarc::Evaluation) -> (u8, Option<Policy>) {
    let rank = match e.result {
        AuthResult::Fail => 5,
        AuthResult::TempError => 4,
        AuthResult::PermError => 3,
        AuthResult::Pass => 2,
        _ => 1,
    };
    (rank, e.applied)
}

/// True for `pct` percent of calls.
fn sample(pct: u8) -> bool {
    use std::hash::{BuildHasher, RandomState};
    thread_local!(static STATE: RandomState = RandomState::new());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    STATE.with(|s| s.hash_one(n)) % 100 < u64::from(pct)
}

fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// HELO text from the client, reduced to what may appear in a header.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
}
