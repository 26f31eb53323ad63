//! The DNS questions our own checks ask (SPF's, and the DKIM key records read
//! before mail-auth verifies), as a trait so they can be tested against an
//! in-memory zone, and its implementation on our hickory resolver (its timeouts,
//! attempts and cache are the ones `[dns]` configures).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};

/// Why a question has no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// NXDOMAIN or no records of the type: a "void lookup" (§4.6.4). A name that
    /// cannot exist in the DNS (an empty or over-long label) is void too.
    Void,
    /// Time-out, SERVFAIL, REFUSED, no server: the check's `temperror`.
    Error(String),
}

pub(crate) type Answer<T> = Result<Vec<T>, Failure>;

pub(crate) trait Dns: Sync {
    /// TXT records, each one's strings joined.
    fn txt(&self, name: &str) -> impl Future<Output = Answer<Vec<u8>>> + Send;
    fn a(&self, name: &str) -> impl Future<Output = Answer<Ipv4Addr>> + Send;
    fn aaaa(&self, name: &str) -> impl Future<Output = Answer<Ipv6Addr>> + Send;
    /// Exchange names in preference order, lower case, without the final dot.
    fn mx(&self, name: &str) -> impl Future<Output = Answer<String>> + Send;
    /// Host names, lower case, without the final dot.
    fn ptr(&self, ip: IpAddr) -> impl Future<Output = Answer<String>> + Send;
}

impl Dns for TokioResolver {
    async fn txt(&self, name: &str) -> Answer<Vec<u8>> {
        let lookup = query(self, name, RecordType::TXT).await?;
        Ok(lookup
            .iter()
            .filter_map(|r| match r {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        let lookup = query(self, name, RecordType::A).await?;
        Ok(lookup
            .iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    async fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        let lookup = query(self, name, RecordType::AAAA).await?;
        Ok(lookup
            .iter()
            .filter_map(|r| match r {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    async fn mx(&self, name: &str) -> Answer<String> {
        let lookup = query(self, name, RecordType::MX).await?;
        let mut exchanges: Vec<(u16, String)> = lookup
            .iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some((mx.preference, host(&mx.exchange))),
                _ => None,
            })
            .collect();
        exchanges.sort_by_key(|(preference, _)| *preference);
        Ok(exchanges.into_iter().map(|(_, name)| name).collect())
    }

    async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        let name = Name::from(ip);
        let answer = self.lookup(name, RecordType::PTR).await.map_err(failure)?;
        Ok(answer
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(ptr) => Some(host(&ptr.0)),
                _ => None,
            })
            .collect())
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

async fn query(
    resolver: &TokioResolver,
    name: &str,
    kind: RecordType,
) -> Result<Vec<RData>, Failure> {
    let name = dns_name(name).ok_or(Failure::Void)?;
    let lookup = resolver.lookup(name, kind).await.map_err(failure)?;
    Ok(lookup.answers().iter().map(|r| r.data.clone()).collect())
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

fn failure(e: NetError) -> Failure {
    match &e {
        NetError::Dns(DnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => Failure::Void,
            code => Failure::Error(format!("DNS answered {code}")),
        },
        _ => Failure::Error(e.to_string()),
    }
}
