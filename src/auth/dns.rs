//! The resolver every check uses: hickory over the configured name servers (or the
//! system's resolv.conf) with our per-query timeout and attempts, plus the caches of
//! parsed records. A DNS failure surfaces as an error value, never as a hang: each
//! query is bounded by `timeout × attempts` per server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use mail_auth::{MX, MessageAuthenticator, Parameters, RecordSet, Txt};

use super::cache::TtlCache;
use crate::config::DnsConfig;

/// Entries per record kind. A busy MX sees a few thousand distinct domains an hour;
/// this keeps the hot ones without letting a flood of unique names grow memory.
pub(crate) const CACHE_ENTRIES: usize = 20_000;

pub(crate) fn authenticator(config: &DnsConfig) -> Result<MessageAuthenticator, String> {
    let (resolver_config, options) = resolver(config)?;
    MessageAuthenticator::new(resolver_config, options)
        .map_err(|e| format!("cannot build the DNS resolver: {e}"))
}

/// The resolver's servers and options: ours, or the system's with our timeouts;
/// `/etc/hosts` only when `[dns] hosts_file = true`.
fn resolver(config: &DnsConfig) -> Result<(ResolverConfig, ResolverOpts), String> {
    let (resolver_config, mut options) = if config.nameservers.is_empty() {
        read_system_conf().map_err(|e| {
            format!(
                "cannot read the system resolver configuration (/etc/resolv.conf): {e}; \
                 set [dns] nameservers"
            )
        })?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    options.timeout = config.timeout;
    options.attempts = config.attempts as usize;
    // Names are always fully qualified; never append a search domain.
    options.ndots = 0;
    options.use_hosts_file = if config.hosts_file {
        ResolveHosts::Always
    } else {
        ResolveHosts::Never
    };
    Ok((resolver_config, options))
}

/// Parsed-record caches, shared by every session.
pub(crate) struct Caches {
    pub txt: TtlCache<Box<str>, Txt>,
    pub mx: TtlCache<Box<str>, RecordSet<MX>>,
    pub ipv4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

/// The `mail-auth` parameter bundle with all our caches attached.
pub(crate) type Cached<'x, P> = Parameters<
    'x,
    P,
    TtlCache<Box<str>, Txt>,
    TtlCache<Box<str>, RecordSet<MX>>,
    TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    TtlCache<IpAddr, RecordSet<Box<str>>>,
>;

impl Caches {
    pub(crate) fn new(entries: usize) -> Self {
        Caches {
            txt: TtlCache::new(entries),
            mx: TtlCache::new(entries),
            ipv4: TtlCache::new(entries),
            ipv6: TtlCache::new(entries),
            ptr: TtlCache::new(entries),
        }
    }

    pub(crate) fn params<P>(&self, params: P) -> Cached<'_, P> {
        Parameters::new(params)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }
}
