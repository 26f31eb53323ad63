//! mailwarden: a mail-security milter for Postfix. Each module's own doc says what
//! it is for; this page says how they stand on each other.
//!
//! # Layers
//!
//! Imports point down only (`tests/layers.rs` fails on a cycle between top-level
//! modules; `scripts/layers.sh` prints the graph). A type two layers share lives in
//! the lower one.
//!
//! ```text
//!  daemon  admin  explain            the process: signals, reload, HTTP endpoint, `scan`
//!     │      │       │
//!  pipeline ─┴───────┘               one file per stage, in the order they run
//!     │
//!  reports                           DMARC report rows, their store, the report mails
//!     │
//!  session                           the milter conversation: Transaction in, Decision out
//!     │
//!  auth  sign  scan  content  policy the checks; fleet: the Redis a fleet shares
//!     │
//!  transaction  decision  direction  message facts: what arrived, what to do with it
//!     │
//!  observe                           log writer, metrics registry, anomaly detector
//!     │
//!  config                            the typed configuration model and its parser
//!     │
//!  milter  tls  reply                wire protocol, TLS material, SMTP replies
//!     │
//!  net  secret  bounded  shutdown  panic_guard  systemd
//! ```
//!
//! - `net`: listen addresses, binding sockets, one stream over TCP and UNIX sockets.
//! - `milter`: the protocol's codec, commands, responses, negotiation, MTA-side client.
//! - `reply`: SMTP replies that Postfix accepts by construction.
//! - `tls`: certificates, trust stores and server configs from PEM files; `secret`:
//!   secret files whose mode lets only their owner change them, nobody else read;
//!   `bounded`: capped maps for tables keyed by what senders choose.
//! - `config`: TOML into a checked `Config`, errors with file:line; reload rules.
//! - `observe`: the batched log writer, the metrics registry, anomaly alerts.
//! - `transaction`: one SMTP transaction as received; `decision`: edits and verdict,
//!   and the one header writer; `direction`: inbound or outbound, and why.
//! - `auth`: SPF, DKIM, ARC, iprev, DMARC, Authentication-Results; `sign`: DKIM
//!   keys and signing; `scan`: clamd; `content`: MIME walk, attachments, links;
//!   `policy`: rules and rate limits evaluated over the facts.
//! - `fleet`: fleet mode's Redis (one server or a Redis Cluster) with its
//!   time-outs and health, and the rate-limit windows counted there.
//! - `session`: the per-connection state machine, its driver and the accept loops.
//! - `reports`: the rows recorded per message for DMARC reports, the SQLite store,
//!   RFC 9990 aggregate and RFC 9991 failure report mails and their delivery.
//! - `pipeline`: the stages run for each message and the observation record.
//! - `daemon`: `serve`; `admin`: `/metrics`, `/healthz`, `/readyz`; `explain`: what
//!   `mailwarden scan` prints.
//!
//! Everything is private to the crate except what the binaries, the integration
//! tests and the benches use, re-exported below.

mod admin;
mod auth;
mod bounded;
mod calendar;
pub mod config;
mod content;
mod daemon;
mod decision;
mod direction;
mod explain;
mod fleet;
mod milter;
mod net;
mod observe;
mod panic_guard;
mod pipeline;
mod policy;
mod reply;
mod reports;
mod scan;
mod secret;
mod session;
mod shutdown;
mod sign;
mod systemd;
mod tls;
mod transaction;

pub use admin::{read_tokens, tls_config};
pub use auth::audit as dns_audit;
pub use daemon::{ServeOptions, serve};
pub use explain::ScanInput;
pub use net::{ListenAddr, Stream};
pub use observe::alerts::check as check_alerts;
pub use pipeline::Pipeline;
pub use reports::{
    SendOptions as ReportSendOptions, SendSummary as ReportSendSummary,
    fill_for_bench as reports_fill_for_bench, list as reports_list, send as reports_send,
};
pub use scan::Scanner;
pub use sign::{dnscheck, genkey, rotate};

/// What `mailwarden scan` prints for a message: text for people, JSON for scripts.
pub mod scan_report {
    pub use crate::explain::{json, run, text};
}

/// The MTA's side of the milter protocol, as the integration tests and the load
/// tool speak it to the daemon.
pub mod mta {
    pub use crate::milter::client::{ClientError, EomReply, MtaClient, SplitMessage};
    pub use crate::milter::codec::{DEFAULT_MAX_PACKET, decode_packet};
    pub use crate::milter::command::{ClientAddress, Command};
    pub use crate::milter::flags::Protocol;
    pub use crate::milter::response::Response;
}

/// The clamd client, for the load tool's straight-to-clamd yardstick.
pub mod clamd {
    pub use crate::scan::clamd::{CHUNK, Connection, Reply, parse_reply};
}

/// Entry points for the cargo-fuzz targets in `fuzz/`: everything that parses
/// what the outside sends. Built only with the `fuzzing` feature; not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Bytes from the MTA through framing, command decoding and a session.
    pub fn milter(data: &[u8]) {
        crate::session::drive::drive(data);
    }

    /// A message through the MIME walk, per-attachment decoding, archive member
    /// names and attachment stripping.
    pub fn mime(data: &[u8]) {
        if let Some(message) = crate::content::parse(data) {
            let parts = crate::content::scan_parts(&message);
            for (_, content) in &parts.parts {
                crate::content::archive::zip_names(content, 3);
            }
            let _ = crate::content::strip::strip(
                &message,
                data,
                memchr::memmem::find(data, b"\r\n\r\n").map_or(data.len(), |i| i + 4),
                |c| c.ext == "exe",
                |name| format!("removed {name}"),
            );
        }
        crate::content::parts_upper_bound(data);
    }

    /// A configuration file through the parser and checker.
    pub fn config(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::config::parse_str(text, None);
        }
    }

    /// An Authentication-Results value through the forged-header check.
    pub fn authres(data: &[u8]) {
        crate::auth::forged::claims(data, "mx.example.com");
    }

    /// A DMARC record through our parser.
    pub fn dmarc_record(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::auth::dmarc::parse_record(text);
        }
    }

    /// An SPF record through our RFC 7208 parser, and macro expansion.
    pub fn spf_record(data: &[u8]) {
        crate::auth::spf_record(data);
    }

    /// Header field values through the strict readers in front of mail-auth: From
    /// address lists, RFC 6376 tag lists (DKIM-Signature fields and key records),
    /// ARC header sets.
    pub fn auth_fields(data: &[u8]) {
        crate::auth::auth_fields(data);
    }
}

/// What the benches measure on its own: rule evaluation over a transaction, the
/// MIME walk, DKIM signing.
pub mod bench {
    pub use crate::content::parse as parse_mime;
    pub use crate::direction::Direction;
    pub use crate::policy::{Content, Facts, Limiter, Rates, evaluate};
    pub use crate::sign::{Signed, Signer, keys};
    pub use crate::transaction::{Client, EnvelopeAddress, HeaderField, Transaction};
}
