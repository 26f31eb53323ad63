//! The DNS questions our own checks ask (SPF's, and the DKIM key records read
//! before mail-auth verifies), as a trait so they can be tested against an
//! in-memory zone, and its implementation on our hickory resolver (its timeouts,
//! attempts and cache are the ones `[dns]` configures).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_auth::ResolverCache;

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::cache::TtlCache;
use super::dmarc;
use super::spf::{self, record::Record};

/// Why a question has no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// NXDOMAIN or no records of the type: a "void lookup" (§4.6.4). A name that
    /// cannot exist in the DNS (an empty or over-long label) is void too.
    Void,
    /// Time-out, SERVFAIL, REFUSED, no server: the check's `temperror`.
    Error(String),
}

/// Records of one type, shared with the cache (a hit costs no copy).
pub(crate) type Answer<T> = Result<Arc<[T]>, Failure>;

pub(crate) trait Dns: Sync {
    /// TXT records, each one's strings joined.
    fn txt(&self, name: &str) -> impl Future<Output = Answer<Vec<u8>>> + Send;
    fn a(&self, name: &str) -> impl Future<Output = Answer<Ipv4Addr>> + Send;
    fn aaaa(&self, name: &str) -> impl Future<Output = Answer<Ipv6Addr>> + Send;
    /// Exchange names in preference order, lower case, without the final dot.
    fn mx(&self, name: &str) -> impl Future<Output = Answer<String>> + Send;
    /// Host names, lower case, without the final dot.
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = Answer<String>> + Send;
    /// Whether the name exists (RFC 8020: only NXDOMAIN says it does not); `Err`
    /// for DNS trouble. DMARC's `np=` applies to names that do not.
    fn exists(&self, name: &str) -> impl Future<Output = Result<bool, String>> + Send;

    /// An SPF record's text parsed (a resolver with a cache keeps the result, so a
    /// domain's record is not parsed again for every message).
    fn spf_record(&self, text: &[u8]) -> Arc<Result<Record, String>> {
        Arc::new(spf::record::parse(text))
    }

    /// A DMARC record's text parsed, `None` when it is not a usable record
    /// (cached like [`Dns::spf_record`]).
    fn dmarc_record(&self, text: &[u8]) -> Option<Arc<dmarc::Record>> {
        dmarc::parse_record(&String::from_utf8_lossy(text))
            .ok()
            .map(Arc::new)
    }
}

/// Our hickory resolver with a cache of the answers (positive ones as long as
/// their TTL, empty ones as long as the SOA's negative TTL allows, at most five
/// minutes): a check asks the same few names for every message of a sender, and a
/// map lookup is far cheaper than hickory's own lookup machinery.
pub(crate) struct Cached<'a> {
    pub resolver: &'a TokioResolver,
    pub cache: &'a AnswerCache,
}

/// Answers by record type and name, each kind bounded like the other caches.
pub(crate) struct AnswerCache {
    txt: TtlCache<Box<str>, Answer<Vec<u8>>>,
    a: TtlCache<Box<str>, Answer<Ipv4Addr>>,
    aaaa: TtlCache<Box<str>, Answer<Ipv6Addr>>,
    mx: TtlCache<Box<str>, Answer<(u16, String)>>,
    ptr: TtlCache<Box<str>, Answer<String>>,
    /// Whether a name exists, by its A query's answer code.
    exists: TtlCache<Box<str>, bool>,
    /// Parsed SPF records by their text; a record is small and its parse is the
    /// same for as long as the text is.
    spf: TtlCache<Box<[u8]>, Arc<Result<Record, String>>>,
    dmarc: TtlCache<Box<[u8]>, Option<Arc<dmarc::Record>>>,
}

impl AnswerCache {
    pub(crate) fn new(entries: usize) -> Self {
        AnswerCache {
            txt: TtlCache::new(entries),
            a: TtlCache::new(entries),
            aaaa: TtlCache::new(entries),
            mx: TtlCache::new(entries),
            ptr: TtlCache::new(entries),
            exists: TtlCache::new(entries),
            spf: TtlCache::new(entries),
            dmarc: TtlCache::new(entries),
        }
    }
}

/// Empty answers are kept at most this long, whatever the SOA says.
const NEGATIVE_TTL_CAP: Duration = Duration::from_secs(300);

impl Cached<'_> {
    /// The cached answer for `key`, else hickory's, converted by `pick` and stored
    /// (an empty answer only when the SOA gave a negative TTL; errors never).
    async fn lookup<T>(
        &self,
        cache: &TtlCache<Box<str>, Answer<T>>,
        key: &str,
        name: Option<Name>,
        kind: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Answer<T> {
        let key: Box<str> = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            key.to_ascii_lowercase().into_boxed_str()
        } else {
            key.into()
        };
        if let Some(hit) = cache.get(&key) {
            return hit;
        }
        let name = name.ok_or(Failure::Void)?;
        match self.resolver.lookup(name, kind).await {
            Ok(lookup) => {
                let records: Arc<[T]> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| pick(&r.data))
                    .collect();
                cache.insert(key, Ok(records.clone()), lookup.valid_until());
                Ok(records)
            }
            Err(e) => {
                let failure = failure(&e);
                if let (Failure::Void, NetError::Dns(DnsError::NoRecordsFound(no))) = (&failure, &e)
                    && let Some(ttl) = no.negative_ttl
                {
                    let ttl = Duration::from_secs(u64::from(ttl)).min(NEGATIVE_TTL_CAP);
                    cache.insert(key, Err(Failure::Void), Instant::now() + ttl);
                }
                Err(failure)
            }
        }
    }
}

/// How long a parsed SPF record is kept (its text's own TTL governs the lookup).
const PARSED_TTL: Duration = Duration::from_secs(3600);

impl Dns for Cached<'_> {
    fn spf_record(&self, text: &[u8]) -> Arc<Result<Record, String>> {
        if let Some(hit) = self.cache.spf.get(text) {
            return hit;
        }
        let parsed = Arc::new(spf::record::parse(text));
        self.cache
            .spf
            .insert(text.into(), parsed.clone(), Instant::now() + PARSED_TTL);
        parsed
    }

    fn dmarc_record(&self, text: &[u8]) -> Option<Arc<dmarc::Record>> {
        if let Some(hit) = self.cache.dmarc.get(text) {
            return hit;
        }
        let parsed = dmarc::parse_record(&String::from_utf8_lossy(text))
            .ok()
            .map(Arc::new);
        self.cache
            .dmarc
            .insert(text.into(), parsed.clone(), Instant::now() + PARSED_TTL);
        parsed
    }

    async fn txt(&self, name: &str) -> Answer<Vec<u8>> {
        self.lookup(
            &self.cache.txt,
            name,
            dns_name(name),
            RecordType::TXT,
            |r| match r {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect(),
                ),
                _ => None,
            },
        )
        .await
    }

    async fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.lookup(
            &self.cache.a,
            name,
            dns_name(name),
            RecordType::A,
            |r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            },
        )
        .await
    }

    async fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.lookup(
            &self.cache.aaaa,
            name,
            dns_name(name),
            RecordType::AAAA,
            |r| match r {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            },
        )
        .await
    }

    async fn mx(&self, name: &str) -> Answer<String> {
        let pick = |r: &RData| match r {
            RData::MX(mx) => Some((mx.preference, host(&mx.exchange))),
            _ => None,
        };
        let found = self
            .lookup(&self.cache.mx, name, dns_name(name), RecordType::MX, pick)
            .await?;
        let mut exchanges: Vec<&(u16, String)> = found.iter().collect();
        exchanges.sort_by_key(|(preference, _)| *preference);
        Ok(exchanges
            .into_iter()
            .map(|(_, host)| host.clone())
            .collect())
    }

    async fn exists(&self, name: &str) -> Result<bool, String> {
        let key: Box<str> = name.trim_end_matches('.').to_ascii_lowercase().into();
        if let Some(hit) = self.cache.exists.get(&key) {
            return Ok(hit);
        }
        let Some(query) = dns_name(name) else {
            return Ok(false);
        };
        let (exists, until) = match self.resolver.lookup(query, RecordType::A).await {
            Ok(lookup) => (true, lookup.valid_until()),
            Err(NetError::Dns(DnsError::NoRecordsFound(no)))
                if matches!(
                    no.response_code,
                    ResponseCode::NXDomain | ResponseCode::NoError
                ) =>
            {
                let ttl = no.negative_ttl.map_or(NEGATIVE_TTL_CAP, |s| {
                    Duration::from_secs(u64::from(s)).min(NEGATIVE_TTL_CAP)
                });
                (
                    no.response_code != ResponseCode::NXDomain,
                    Instant::now() + ttl,
                )
            }
            Err(e) => return Err(failure_text(&e)),
        };
        self.cache.exists.insert(key, exists, until);
        Ok(exists)
    }

    async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        let key = ip.to_string();
        self.lookup(
            &self.cache.ptr,
            &key,
            Some(Name::from(ip)),
            RecordType::PTR,
            |r| match r {
                RData::PTR(ptr) => Some(host(&ptr.0)),
                _ => None,
            },
        )
        .await
    }
}

/// A name from an answer, label bytes as they are (not `\DDD`-escaped: the
/// evaluator looks it up again), lower case, without the final dot.
fn host(name: &Name) -> String {
    name.iter()
        .map(|label| String::from_utf8_lossy(label).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

/// The name as DNS labels, byte for byte (a macro may put any printable character
/// in a label); `None` when no such name can exist.
fn dns_name(name: &str) -> Option<Name> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    Name::from_labels(name.split('.').map(str::as_bytes)).ok()
}

fn failure_text(e: &NetError) -> String {
    match failure(e) {
        Failure::Error(text) => text,
        Failure::Void => e.to_string(),
    }
}

fn failure(e: &NetError) -> Failure {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => Failure::Void,
            code => Failure::Error(format!("DNS answered {code}")),
        },
        _ => Failure::Error(e.to_string()),
    }
}
