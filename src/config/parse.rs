//! From TOML text to a [`Config`]: a raw layer that mirrors the file (with spans, so
//! every error has a line), then a conversion that checks every value and collects
//! all errors instead of stopping at the first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::check::{Checker, line_column};
use super::error::{ConfigError, ConfigErrors};
use super::model::*;

use crate::milter::codec::MAX_CHUNK;
use crate::net::ListenAddr;

pub(super) type S<T> = Option<Spanned<T>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: Option<RawServer>,
    log: Option<RawLog>,
    dns: Option<RawDns>,
    inbound: Option<RawInbound>,
    signing: Option<super::signing::RawSigning>,
    antivirus: S<super::antivirus::RawAntivirus>,
    policy: Option<super::rules::RawPolicy>,
    rules: Option<Vec<Spanned<super::rules::RawRule>>>,
    rate_limits: Option<Vec<Spanned<super::rules::RawRateLimit>>>,
    admin: S<super::admin::RawAdmin>,
    alerts: S<super::alerts::RawAlerts>,
    dmarc: Option<super::reports::RawDmarc>,
    reports: S<super::reports::RawReports>,
    cluster: S<super::cluster::RawCluster>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: S<Vec<Spanned<String>>>,
    socket_mode: S<String>,
    max_sessions: S<i64>,
    negotiate_timeout: S<String>,
    idle_timeout: S<String>,
    write_timeout: S<String>,
    eom_timeout: S<String>,
    progress_interval: S<String>,
    shutdown_timeout: S<String>,
    max_packet_size: S<String>,
    max_message_size: S<String>,
    max_header_fields: S<i64>,
    max_header_size: S<String>,
    max_mime_parts: S<i64>,
    on_oversize: S<String>,
    trace_header: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: S<String>,
    level: S<String>,
    syslog: Option<bool>,
    facility: S<String>,
    syslog_socket: S<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    nameservers: Option<Vec<Spanned<String>>>,
    timeout: S<String>,
    attempts: S<i64>,
    hosts_file: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInbound {
    authserv_id: S<String>,
    trusted_networks: Option<Vec<Spanned<String>>>,
    skip_authenticated: Option<bool>,
    dmarc_enforce: Option<bool>,
    on_dns_error: S<String>,
    on_oversize: S<String>,
    on_bad_from: S<String>,
    on_multiple_from: S<String>,
    trusted_arc_sealers: Option<Vec<Spanned<String>>>,
}

/// The directory relative paths in the configuration are read from: the config
/// file's own directory (the current directory for built-in defaults).
pub(super) fn config_dir(file: Option<&Path>) -> PathBuf {
    file.and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Reads and checks a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: Some(path.to_path_buf()),
            position: None,
            key: None,
            reason: format!("cannot read the file: {e}"),
        }])
    })?;
    parse_str(&source, Some(path))
}

/// The configuration with nothing configured.
pub fn built_in() -> Config {
    match parse_str("", None) {
        Ok(config) => config,
        Err(e) => unreachable!("the built-in defaults are valid: {e}"),
    }
}

pub fn parse_str(source: &str, file: Option<&Path>) -> Result<Config, ConfigErrors> {
    let raw: RawConfig = toml::from_str(source).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.map(Path::to_path_buf),
            position: e.span().map(|s| line_column(source, s.start)),
            key: None,
            reason: e.message().trim().to_owned(),
        }])
    })?;
    let mut c = Checker {
        file,
        source,
        errors: Vec::new(),
    };
    let server = check_server(&mut c, raw.server.unwrap_or_default());
    let log = check_log(&mut c, raw.log.unwrap_or_default());
    let dns = check_dns(&mut c, raw.dns.unwrap_or_default());
    let mut inbound = check_inbound(&mut c, raw.inbound.unwrap_or_default());
    inbound.dmarc_discovery = super::reports::check_dmarc(&mut c, raw.dmarc.unwrap_or_default());
    let signing = super::signing::check_signing(&mut c, raw.signing.unwrap_or_default(), file);
    let antivirus = raw
        .antivirus
        .map(|a| super::antivirus::check_antivirus(&mut c, a, &server));
    let admin = raw
        .admin
        .map(|a| super::admin::check_admin(&mut c, a, file));
    let alerts = raw
        .alerts
        .map(|a| super::alerts::check_alerts(&mut c, a, file));
    let reports = raw
        .reports
        .map(|r| super::reports::check_reports(&mut c, r, file));
    let cluster = raw
        .cluster
        .map(|r| super::cluster::check_cluster(&mut c, r, file));
    let (policy_monitor, rate_limit_keys, archive_depth) =
        super::rules::check_policy(&mut c, raw.policy.unwrap_or_default());
    let rate_limits = super::rules::check_rate_limits(&mut c, raw.rate_limits.unwrap_or_default());
    let rules =
        super::rules::check_rules(&mut c, raw.rules.unwrap_or_default(), file, &rate_limits);
    if c.errors.is_empty() {
        Ok(Config {
            source: file.map(PathBuf::from),
            server,
            log,
            dns,
            inbound,
            signing,
            antivirus,
            rules,
            rate_limits,
            policy_monitor,
            rate_limit_keys,
            archive_depth,
            admin,
            alerts,
            reports,
            cluster,
        })
    } else {
        Err(ConfigErrors(c.errors))
    }
}

fn check_server(c: &mut Checker, raw: RawServer) -> ServerConfig {
    let listen = match raw.listen {
        None => vec![ListenAddr::Inet(SocketAddr::from(([127, 0, 0, 1], 8891)))],
        Some(list) => {
            let span = list.span();
            let parsed = c.list(list.into_inner(), "server.listen", ListenAddr::from_str);
            if parsed.is_empty() {
                c.error(Some(span), "server.listen", "needs at least one address");
            }
            parsed
        }
    };
    let socket_mode =
        c.value(
            raw.socket_mode,
            "server.socket_mode",
            0o660,
            |t| match u32::from_str_radix(t, 8) {
                Ok(m) if m <= 0o777 && t.len() <= 4 => Ok(m),
                _ => Err(format!(
                    "{t:?} is not an octal permission mode like \"0660\""
                )),
            },
        );
    let eom_timeout = c.duration(
        raw.eom_timeout,
        "server.eom_timeout",
        Duration::from_secs(250),
    );
    let progress_interval = c.duration_within_eom(
        raw.progress_interval,
        "server.progress_interval",
        Duration::from_secs(10),
        eom_timeout,
        "or Postfix never hears that we are still working",
    );
    ServerConfig {
        listen,
        socket_mode,
        max_sessions: c.integer(raw.max_sessions, "server.max_sessions", 2000, 1..1_000_001),
        negotiate_timeout: c.duration(
            raw.negotiate_timeout,
            "server.negotiate_timeout",
            Duration::from_secs(10),
        ),
        idle_timeout: c.duration(
            raw.idle_timeout,
            "server.idle_timeout",
            Duration::from_secs(1800),
        ),
        write_timeout: c.duration(
            raw.write_timeout,
            "server.write_timeout",
            Duration::from_secs(10),
        ),
        eom_timeout,
        progress_interval,
        shutdown_timeout: c.duration(
            raw.shutdown_timeout,
            "server.shutdown_timeout",
            Duration::from_secs(30),
        ),
        // Below one body chunk plus framing, Postfix's normal packets would be refused.
        max_packet_size: c.size(
            raw.max_packet_size,
            "server.max_packet_size",
            1 << 20,
            MAX_CHUNK + 16,
        ),
        max_message_size: c.size(raw.max_message_size, "server.max_message_size", 64 << 20, 1),
        max_header_fields: c.integer(
            raw.max_header_fields,
            "server.max_header_fields",
            1000,
            10..1_000_001,
        ) as usize,
        max_header_size: c.size(raw.max_header_size, "server.max_header_size", 1 << 20, 1024),
        max_mime_parts: c.integer(
            raw.max_mime_parts,
            "server.max_mime_parts",
            1000,
            1..1_000_001,
        ) as usize,
        on_oversize: c.value(
            raw.on_oversize,
            "server.on_oversize",
            OnOversize::Tempfail,
            super::antivirus::parse_on_oversize,
        ),
        trace_header: raw.trace_header.unwrap_or(true),
    }
}

fn check_log(c: &mut Checker, raw: RawLog) -> LogConfig {
    let format = c.value(raw.format, "log.format", LogFormat::Text, parse_log_format);
    let level = c.value(raw.level, "log.level", "info".to_owned(), |t| {
        tracing_subscriber::EnvFilter::builder()
            .parse(t)
            .map(|_| t.to_owned())
            .map_err(|e| {
                format!("{t:?} is not a log filter such as \"info\" or \"mailwarden=debug\": {e}")
            })
    });
    let facility = c.value(raw.facility, "log.facility", 2, |t| {
        const NAMES: [(&str, u8); 12] = [
            ("mail", 2),
            ("daemon", 3),
            ("local0", 16),
            ("local1", 17),
            ("local2", 18),
            ("local3", 19),
            ("local4", 20),
            ("local5", 21),
            ("local6", 22),
            ("local7", 23),
            ("user", 1),
            ("auth", 4),
        ];
        NAMES
            .iter()
            .find(|(n, _)| *n == t)
            .map(|(_, code)| *code)
            .ok_or_else(|| {
                format!("{t:?} is not a facility: mail, daemon, user, auth or local0..local7")
            })
    });
    let syslog_socket = c.value(
        raw.syslog_socket,
        "log.syslog_socket",
        "/dev/log".into(),
        |t| Ok(std::path::PathBuf::from(t)),
    );
    LogConfig {
        format,
        level,
        syslog: raw.syslog.unwrap_or(false).then_some(facility),
        syslog_socket,
    }
}

pub fn parse_log_format(t: &str) -> Result<LogFormat, String> {
    match t {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "{other:?} is not a log format: use \"text\" or \"json\""
        )),
    }
}

fn check_dns(c: &mut Checker, raw: RawDns) -> DnsConfig {
    let nameservers = c.list(
        raw.nameservers.unwrap_or_default(),
        "dns.nameservers",
        |t| {
            t.parse::<SocketAddr>().map_err(|_| {
                format!("{t:?} is not IP:PORT (e.g. \"127.0.0.1:53\" or \"[::1]:53\")")
            })
        },
    );
    DnsConfig {
        nameservers,
        timeout: c.duration(raw.timeout, "dns.timeout", Duration::from_secs(3)),
        attempts: c.integer(raw.attempts, "dns.attempts", 2, 1..11),
        hosts_file: raw.hosts_file.unwrap_or(false),
    }
}

fn check_inbound(c: &mut Checker, raw: RawInbound) -> InboundConfig {
    let authserv_id = c.value(raw.authserv_id, "inbound.authserv_id", host_name(), |t| {
        let valid = !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if valid {
            Ok(t.to_owned())
        } else {
            Err(format!(
                "{t:?} is not a host name (letters, digits, '-', '.' and '_')"
            ))
        }
    });
    let trusted = raw
        .trusted_networks
        .map(|list| c.list(list, "inbound.trusted_networks", parse_network));
    InboundConfig {
        authserv_id,
        trusted_networks: trusted.unwrap_or_else(|| {
            vec![
                IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
                IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ]
        }),
        skip_authenticated: raw.skip_authenticated.unwrap_or(true),
        dmarc_enforce: raw.dmarc_enforce.unwrap_or(true),
        dmarc_discovery: DmarcDiscovery::TreeWalk,
        on_dns_error: c.value(
            raw.on_dns_error,
            "inbound.on_dns_error",
            OnDnsError::Tempfail,
            |t| match t {
                "tempfail" => Ok(OnDnsError::Tempfail),
                "accept" => Ok(OnDnsError::Accept),
                other => Err(format!(
                    "{other:?} is not an action: use \"tempfail\" or \"accept\""
                )),
            },
        ),
        on_bad_from: c.value(
            raw.on_bad_from,
            "inbound.on_bad_from",
            OnBadFrom::Reject,
            |t| match t {
                "reject" => Ok(OnBadFrom::Reject),
                "accept" => Ok(OnBadFrom::Accept),
                o => Err(format!(
                    "{o:?} is not an action: use \"reject\" or \"accept\""
                )),
            },
        ),
        on_multiple_from: c.value(
            raw.on_multiple_from,
            "inbound.on_multiple_from",
            OnMultipleFrom::Evaluate,
            |t| match t {
                "evaluate" => Ok(OnMultipleFrom::Evaluate),
                "reject" => Ok(OnMultipleFrom::Reject),
                o => Err(format!(
                    "{o:?} is not an action: use \"evaluate\" or \"reject\""
                )),
            },
        ),
        on_oversize: c.value(
            raw.on_oversize,
            "inbound.on_oversize",
            OnOversize::Tempfail,
            super::antivirus::parse_on_oversize,
        ),
        trusted_arc_sealers: c.list(
            raw.trusted_arc_sealers.unwrap_or_default(),
            "inbound.trusted_arc_sealers",
            parse_domain,
        ),
    }
}

/// A domain name such as `lists.example.org`, stored in lower case.
pub fn parse_domain(t: &str) -> Result<String, String> {
    let labels_ok = t.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if labels_ok && t.contains('.') && t.len() <= 253 {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!(
            "{t:?} is not a domain name like \"lists.example.org\""
        ))
    }
}

/// A CIDR block, or a single address meaning just that host.
fn parse_network(t: &str) -> Result<IpNet, String> {
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{t:?} is not a network like \"192.0.2.0/24\" or an IP address"))
}

/// The machine's host name, the default authserv-id.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length and gethostname writes at most
    // that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}
