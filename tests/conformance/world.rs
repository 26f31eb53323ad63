//! One DNS world for a suite's cases: knot serving the suite's zone, a filter in
//! front of it for the queries the suite says time out or fail, and a mailwarden
//! that resolves through it. Cases are played through the milter protocol as
//! Postfix speaks it, and the Authentication-Results header we add is read back.

use std::net::IpAddr;
use std::time::Duration;

use mailwarden::ListenAddr;
use mailwarden::mta::{MtaClient, Response, SplitMessage};

use crate::common::dns_fault::{DnsFilter, Drop};
use crate::common::knot::Knot;
use crate::common::mailwarden::Mailwarden;
use crate::zone::Zone;

/// libfaketime's multithreaded library (Debian's libfaketime package).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Whether knot and kdig are here (under CI a missing one fails the test).
pub fn knot_present() -> bool {
    crate::common::require("knotd", "knot") && crate::common::require("kdig", "knot-dnsutils")
}

pub struct World {
    mw: Mailwarden,
    _filter: DnsFilter,
    _knot: Knot,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// What an MTA tells the milter about one message.
pub struct Envelope<'a> {
    pub ip: &'a str,
    pub helo: &'a str,
    /// MAIL FROM as the client gave it, without brackets; may be empty.
    pub mail_from: &'a str,
    pub message: &'a [u8],
}

/// One `method=result` entry of our header.
#[derive(Debug, Clone)]
pub struct Method {
    pub method: String,
    pub result: String,
    /// The first comment after the result.
    pub reason: String,
    pub props: Vec<(String, String)>,
}

impl Method {
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Played {
    pub methods: Vec<Method>,
    pub decision: Response,
}

impl Played {
    pub fn of(&self, method: &str) -> Vec<&Method> {
        self.methods.iter().filter(|m| m.method == method).collect()
    }

    /// The result of SPF for MAIL FROM (our header also carries the HELO check).
    pub fn spf_mailfrom(&self) -> String {
        self.of("spf")
            .into_iter()
            .find(|m| m.prop("smtp.mailfrom").is_some())
            .map_or("(none)".into(), |m| m.result.clone())
    }
}

impl World {
    /// `inbound` is added to the `[inbound]` section; `extra` after it.
    pub fn start(
        name: &str,
        zone: &Zone,
        drops: Vec<(String, u16, Drop)>,
        inbound: &str,
        extra: &str,
    ) -> World {
        Self::start_at(name, zone, drops, inbound, extra, None)
    }

    /// With the daemon's clock pinned to `clock` (seconds since the epoch) by
    /// libfaketime, for cases whose signatures expire.
    pub fn start_at(
        name: &str,
        zone: &Zone,
        drops: Vec<(String, u16, Drop)>,
        inbound: &str,
        extra: &str,
        clock: Option<u64>,
    ) -> World {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mw-conf-{name}"))
            .tempdir()
            .expect("temp dir");
        let knot = Knot::start_zones(dir.path(), &[(".".to_owned(), zone.root())]);
        let filter = DnsFilter::start(knot.address().parse().expect("knot address"), drops);
        let port = crate::common::free_port();
        let config = format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
             [inbound]\nauthserv_id = \"mx.harness.test\"\ntrusted_networks = []\n\
             on_dns_error = \"accept\"\n{inbound}\n\n{extra}\n",
            filter.address()
        );
        let env = match clock {
            None => Vec::new(),
            Some(at) => vec![
                ("LD_PRELOAD".into(), FAKETIME_LIB.into()),
                ("FAKETIME_FMT".into(), "%s".into()),
                ("FAKETIME".into(), format!("@{at}")),
                ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
            ],
        };
        let mw = Mailwarden::start_with_env(dir.path(), port, &config, env);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        World {
            mw,
            _filter: filter,
            _knot: knot,
            rt,
            _dir: dir,
        }
    }

    pub fn play(&self, env: &Envelope<'_>) -> Played {
        let addr: ListenAddr = format!("inet:127.0.0.1:{}", self.mw.port)
            .parse()
            .expect("listen address");
        let ip: IpAddr = env.ip.parse().expect("case IP");
        let split = SplitMessage::parse(env.message);
        let reply = self.rt.block_on(async {
            let mut mta = MtaClient::open_session(&addr, ip, env.helo)
                .await
                .expect("milter session")
                .with_reply_timeout(Duration::from_secs(60));
            mta.mail(&format!("<{}>", env.mail_from), &[])
                .await
                .expect("mail");
            mta.rcpt("<postmaster@harness.test>").await.expect("rcpt");
            mta.macros(b'T', &[("i", "CONFORM1")]);
            mta.data().await.expect("data");
            for (name, value) in &split.headers {
                mta.header(name, value).await.expect("header");
            }
            mta.eoh().await.expect("eoh");
            mta.body(&split.body).await.expect("body");
            let reply = mta.eom().await.expect("eom");
            mta.abort();
            reply
        });
        let methods = reply
            .added_header("Authentication-Results")
            .map(parse_results)
            .unwrap_or_default();
        if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
            eprintln!("{} from {}: {methods:#?}", env.mail_from, env.ip);
        }
        Played {
            methods,
            decision: reply.decision,
        }
    }
}

/// RFC 8601 results from our header value: comments kept as reasons, the
/// authserv-id dropped. (The header's syntax itself is checked with Python's
/// authres in tests/postfix_auth.rs; this reads only what we wrote.)
pub fn parse_results(value: &str) -> Vec<Method> {
    let value = value.replace(['\r', '\n'], "");
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0usize, String::new());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            // A quoted-pair: the next character is literal (and stays escaped).
            '\\' => {
                current.push(c);
                current.extend(chars.next());
                continue;
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .skip(1)
        .filter_map(|part| {
            let (mut reason, mut plain, mut depth) = (String::new(), String::new(), 0usize);
            let mut first_comment_done = false;
            let mut chars = part.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if depth > 0 => {
                        let next = chars.next().unwrap_or(c);
                        if !first_comment_done {
                            reason.push(next);
                        }
                    }
                    '(' => {
                        depth += 1;
                        if depth > 1 && !first_comment_done {
                            reason.push(c);
                        }
                    }
                    ')' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            first_comment_done = true;
                            plain.push(' ');
                        } else if !first_comment_done {
                            reason.push(c);
                        }
                    }
                    _ if depth > 0 => {
                        if !first_comment_done {
                            reason.push(c);
                        }
                    }
                    _ => plain.push(c),
                }
            }
            let mut words = plain.split_whitespace();
            let (method, result) = words.next()?.split_once('=')?;
            let props = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some(Method {
                method: method.to_ascii_lowercase(),
                result: result.to_ascii_lowercase(),
                reason: reason.trim().to_owned(),
                props,
            })
        })
        .collect()
}
