//! The validated configuration. Everything here has already been checked; the rest
//! of the daemon uses these values without re-checking them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::milter::SessionSettings;
use crate::net::ListenAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from; `None` when running on built-in defaults.
    pub source: Option<PathBuf>,
    pub server: ServerConfig,
    pub log: LogConfig,
    pub dns: DnsConfig,
    pub inbound: InboundConfig,
    pub signing: SigningConfig,
    /// `None`: no `[antivirus]` section, no scanning.
    pub antivirus: Option<AntivirusConfig>,
    /// `[[rules]]`, in order.
    pub rules: Vec<super::Rule>,
    /// `[[rate_limits]]`, referred to by the rules' `rate_limit` condition.
    pub rate_limits: Vec<super::RateLimit>,
    /// `[policy] mode = "monitor"`: every rule only logs what it would do.
    pub policy_monitor: bool,
    /// Rate-limit buckets kept (`[policy] rate_limit_keys`); see `bounded`.
    pub rate_limit_keys: usize,
    /// How many levels of zip inside zip the rules read member names from.
    pub archive_depth: u32,
    /// `None`: no admin endpoint, and no metrics are recorded.
    pub admin: Option<AdminConfig>,
    /// `None`: no anomaly tracking.
    pub alerts: Option<AlertsConfig>,
    /// `None`: no `[reports]` section, nothing recorded for DMARC reports.
    pub reports: Option<ReportsConfig>,
    /// `None`: no `[cluster]`, every counter in this process's memory.
    pub cluster: Option<ClusterConfig>,
}

/// `[cluster]`: the Redis the fleet shares.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    pub servers: RedisServers,
    pub password_file: Option<PathBuf>,
    /// `rediss://`: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The longest any one Redis call may take.
    pub timeout: Duration,
    /// The first part of every key.
    pub prefix: String,
    pub rate_limits_on_error: OnRedisError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisServers {
    /// `redis = "redis://HOST:PORT/DB"` (or `rediss://`).
    Single(String),
    /// `nodes = [...]`: seed nodes of a Redis Cluster.
    Cluster(Vec<String>),
}

/// What a feature does while Redis does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedisError {
    /// 451 4.3.0: the sender retries later.
    Tempfail,
    /// Count nothing: the limit does not apply meanwhile.
    Accept,
    /// Count in this process's memory meanwhile (and say so).
    Local,
}

/// `[reports]`: where DMARC report records are kept and how reports are sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportsConfig {
    /// The SQLite file.
    pub store: PathBuf,
    /// RFC 9990's `org_name`.
    pub org_name: String,
    /// The reports' sender (`From:`, MAIL FROM, `email` in the report).
    pub from: String,
    /// Where report mail is submitted (the local Postfix), `HOST:PORT`.
    pub smtp: String,
    /// Destinations per domain and report kind used at most.
    pub max_destinations: usize,
    /// A report mail larger than this is not sent to a destination.
    pub max_report_size: u64,
    /// Records kept in memory while the store cannot take them.
    pub backlog: usize,
    /// RFC 9991 failure reports (off by default).
    pub failure: bool,
    pub redact_local_part: bool,
    pub redact_body: bool,
    /// Failure reports per reported domain and hour at most.
    pub failure_per_hour: u32,
}

/// How DMARC finds policy records and organizational domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DmarcDiscovery {
    /// RFC 9989's DNS tree walk.
    #[default]
    TreeWalk,
    /// RFC 7489's Public Suffix List (and its `pct`).
    Psl,
}

impl DmarcDiscovery {
    /// As RFC 9990's `discovery_method` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcDiscovery::TreeWalk => "treewalk",
            DmarcDiscovery::Psl => "psl",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: Vec<ListenAddr>,
    /// Permission bits of unix listening sockets.
    pub socket_mode: u32,
    pub max_sessions: u32,
    pub negotiate_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub eom_timeout: Duration,
    pub progress_interval: Duration,
    /// How long SIGTERM waits for sessions to finish their message.
    pub shutdown_timeout: Duration,
    pub max_packet_size: usize,
    pub max_message_size: usize,
    /// Header fields a message may have, and their size in all; a message with
    /// more is refused (552 5.3.4) and never held in memory whole.
    pub max_header_fields: usize,
    pub max_header_size: usize,
    /// MIME parts the content checks (rules, per-attachment scanning) take apart;
    /// a message with more gets `on_oversize` there.
    pub max_mime_parts: usize,
    /// What a message gets when a rule needs its content and the content is over
    /// `max_mime_parts`: the rules cannot see it.
    pub on_oversize: OnOversize,
    /// Add `X-Mailwarden: <version> <queue id>` to every message.
    pub trace_header: bool,
}

impl ServerConfig {
    pub fn session_settings(&self) -> SessionSettings {
        SessionSettings {
            negotiate_timeout: self.negotiate_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            eom_timeout: self.eom_timeout,
            progress_interval: self.progress_interval,
            max_packet: self.max_packet_size,
            max_body: self.max_message_size,
            max_headers: self.max_header_fields,
            max_header_bytes: self.max_header_size,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `mailwarden=debug`.
    pub level: String,
    /// `syslog = true`: lines go to the syslog socket with this facility code
    /// (RFC 5424 numbering: mail is 2), not to standard error.
    pub syslog: Option<u8>,
    /// The syslog socket (`/dev/log`).
    pub syslog_socket: std::path::PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Empty: use the system resolver configuration (`/etc/resolv.conf`).
    pub nameservers: Vec<SocketAddr>,
    pub timeout: Duration,
    pub attempts: u32,
    /// Answer from `/etc/hosts` before DNS. Off unless configured: a hosts entry
    /// would change iprev and SPF `a`/`mx` results behind the admin's back.
    pub hosts_file: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDnsError {
    Tempfail,
    Accept,
}

/// A message whose From fields give no author domain (none, or unparseable):
/// DMARC cannot be evaluated (RFC 7489 §6.6.1 leaves it to local policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBadFrom {
    Reject,
    Accept,
}

/// Several author domains (addresses or From fields): evaluate each and let the
/// worst decide (RFC 7489 §6.6.1), or refuse the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMultipleFrom {
    Evaluate,
    Reject,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundConfig {
    pub authserv_id: String,
    pub trusted_networks: Vec<IpNet>,
    pub skip_authenticated: bool,
    pub dmarc_enforce: bool,
    /// `[dmarc] discovery`.
    pub dmarc_discovery: DmarcDiscovery,
    pub on_dns_error: OnDnsError,
    /// A DMARC failure that the body beyond `server.max_message_size` might turn
    /// into a pass (an aligned DKIM signature whose body hash could not be checked).
    pub on_oversize: OnOversize,
    pub on_bad_from: OnBadFrom,
    pub on_multiple_from: OnMultipleFrom,
    /// ARC sealers (domains) whose `arc=pass` overrides a DMARC failure: the
    /// mailing lists and forwarders the admin trusts to have checked the original.
    pub trusted_arc_sealers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::RsaSha256 => "rsa-sha256",
            KeyAlgorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonicalization {
    Relaxed,
    Simple,
}

/// What happens to outbound mail that cannot be signed (no From, several From
/// domains, a signing error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignError {
    /// Deliver it unsigned, with a log line.
    Accept,
    /// 451: the sender's MTA or application retries.
    Tempfail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeyConfig {
    /// The `d=` domain, lower case.
    pub domain: String,
    pub selector: String,
    /// Resolved against the configuration file's directory when relative.
    pub key_file: PathBuf,
    /// When given, the key file must hold a key of this kind.
    pub algorithm: Option<KeyAlgorithm>,
    /// Also sign mail whose From is a subdomain of `domain` (with `d=domain`).
    pub subdomains: bool,
    /// Header fields to sign; From is signed once more than it appears
    /// (oversigned) so a second From cannot be added.
    pub headers: Vec<String>,
    /// Adds `x=` this long after `t=`.
    pub expire: Option<Duration>,
    /// (header, body) canonicalization.
    pub canonicalization: (Canonicalization, Canonicalization),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningConfig {
    pub keys: Vec<SigningKeyConfig>,
    pub on_error: OnSignError,
    /// Who may have mail signed for which From addresses (`[[signing.senders]]`).
    /// Empty: every outbound sender may use every key.
    pub senders: Vec<SenderBinding>,
    pub on_unauthorized: OnUnauthorized,
}

/// One `[[signing.senders]]` entry: a sender identity and the From addresses it
/// may send as.
#[derive(Debug, Clone, PartialEq)]
pub struct SenderBinding {
    pub who: SenderId,
    pub from: Vec<FromPattern>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SenderId {
    /// The SASL login (`{auth_authen}`), exactly.
    User(String),
    /// A client in this network (a trusted network's host).
    Network(IpNet),
    /// Postfix's sendmail/pickup path.
    Local,
}

/// A From address a sender may use, as written in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum FromPattern {
    /// `example.com`: any address at that domain.
    Domain(String),
    /// `*.example.com`: any address at a subdomain of it (not the domain itself).
    Subdomains(String),
    /// `noreply@example.com`: that address only.
    Address(String),
}

impl FromPattern {
    /// `address` is lower case.
    pub fn allows(&self, address: &str) -> bool {
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        let domain = domain.trim_end_matches('.');
        match self {
            FromPattern::Domain(d) => domain == d,
            FromPattern::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|p| p.ends_with('.')),
            FromPattern::Address(a) => address == a,
        }
    }
}

/// What happens to outbound mail whose sender may not use its From address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnauthorized {
    /// Delivered without our signature (receivers see it unsigned), logged.
    Unsigned,
    /// 550 5.7.1.
    Reject,
}

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddr {
    /// `tcp:HOST:PORT`; HOST may be a name (resolved at each connection).
    Tcp(String),
    /// `unix:PATH`.
    Unix(PathBuf),
}

impl std::fmt::Display for ClamdAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddr::Tcp(hp) => write!(f, "tcp:{hp}"),
            ClamdAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What happens to a message clamd found a virus in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInfected {
    /// 554 5.7.1 naming the signature.
    Reject,
    /// Accept and drop.
    Discard,
    /// Postfix's hold queue, with the signature in the reason.
    Quarantine,
    /// Deliver with `X-Virus-Status: Infected (NAME)`.
    Tag,
}

/// What happens when clamd cannot give a verdict (down, timed out, an error reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnScanError {
    /// 451: Postfix's client retries later. Nothing passes unscanned.
    Tempfail,
    /// Deliver with `X-Virus-Scanned: error` and a warning in the log.
    Accept,
    /// 554 5.7.1.
    Reject,
}

/// What happens to a message too large to check whole: over `antivirus.max_size`
/// (or `server.max_message_size`) for the virus scan; for DMARC, a failure that a
/// DKIM signature over the part not kept might have turned into a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOversize {
    /// Deliver unchecked, tagged (`X-Virus-Scanned: skipped (size)`; for DMARC the
    /// Authentication-Results header says why).
    Accept,
    Tempfail,
    /// 552 5.3.4.
    Reject,
}

/// What is sent to clamd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// The whole message as received; clamd decodes MIME and archives itself.
    Message,
    /// Each decoded attachment as its own stream, so a verdict names the file.
    Attachments,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AntivirusConfig {
    pub clamd: ClamdAddr,
    pub on_infected: OnInfected,
    pub on_error: OnScanError,
    pub on_oversize: OnOversize,
    /// Never send more than this to clamd.
    pub max_size: usize,
    pub max_concurrent_scans: u32,
    pub connect_timeout: Duration,
    /// The whole scan: waiting for a free slot, connecting, sending, the verdict.
    pub scan_timeout: Duration,
    pub mode: ScanMode,
    /// Add `X-Virus-Scanned` to scanned mail.
    pub header: bool,
}

/// `[admin]`: the HTTP endpoint for metrics and health.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer tokens, one per line.
    pub token_file: PathBuf,
    /// Serve `/metrics` without a token.
    pub public_metrics: bool,
    /// HTTPS: certificate chain and private key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Mutual TLS: clients must present a certificate issued by this CA (PEM).
    pub client_ca: Option<PathBuf>,
    /// Connections served at once; more are closed at once, so the endpoint can
    /// never take the descriptors the milter sessions need.
    pub max_connections: u32,
    /// The longest a connection may take: TLS handshake, the request's header, and
    /// the answer. A client slower than that is cut off.
    pub timeout: Duration,
}

/// `[alerts]`: anomaly thresholds per window, and the sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    pub window: Duration,
    /// After an alert, the same alert for the same key is quiet this long.
    pub cooldown: Duration,
    /// A key's message count in one window must reach this before its rate can alert.
    pub min_messages: u32,
    /// Alert when a window's count is this many times the key's moving baseline.
    pub rate_factor: f64,
    /// Alert when this share of a window's inbound mail fails DMARC, SPF or DKIM
    /// (with at least `min_messages` inbound messages in it).
    pub auth_fail_share: f64,
    /// Per window, across all mail.
    pub viruses: u32,
    pub rejects: u32,
    /// clamd and DNS failures.
    pub errors: u32,
    /// Keys tracked per kind (account, sender domain, client address), and alerts
    /// remembered for the cool-down; the oldest untouched go first.
    pub max_keys: usize,
    pub webhook: Option<WebhookSink>,
    pub email: Option<EmailSink>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSink {
    /// `https://host[:port]/path`
    pub url: String,
    pub token_file: Option<PathBuf>,
    /// Trust this CA (PEM) instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailSink {
    pub to: String,
    pub from: String,
    /// `host:port` of the SMTP relay (our own Postfix).
    pub relay: String,
}
