//! `[admin]`: the HTTP endpoint for metrics and health, its credentials and TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::model::AdminConfig;
use super::parse::S;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    listen: S<String>,
    token_file: S<String>,
    public_metrics: Option<bool>,
    tls_cert: S<String>,
    tls_key: S<String>,
    client_ca: S<String>,
    max_connections: S<i64>,
    timeout: S<String>,
}

pub(super) fn check_admin(
    c: &mut Checker<'_>,
    raw: Spanned<RawAdmin>,
    file: Option<&Path>,
) -> AdminConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let listen = c.value(
        raw.listen,
        "admin.listen",
        SocketAddr::from(([127, 0, 0, 1], 8892)),
        |t| {
            t.strip_prefix("inet:")
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .ok_or_else(|| format!("{t:?} is not an address like \"inet:127.0.0.1:8892\""))
        },
    );
    let dir = super::parse::config_dir(file);
    let relative = |t: &str| dir.join(t);
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (Some(cert), Some(key)) => Some((relative(cert.get_ref()), relative(key.get_ref()))),
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => {
            c.error(
                Some(one.span()),
                "admin.tls_cert",
                "tls_cert and tls_key go together",
            );
            None
        }
    };
    let client_ca = raw.client_ca.as_ref().map(|ca| relative(ca.get_ref()));
    if let (Some(ca), None) = (&raw.client_ca, &tls) {
        c.error(
            Some(ca.span()),
            "admin.client_ca",
            "needs tls_cert and tls_key: client certificates are checked only over TLS",
        );
    }
    let token_file = match raw.token_file {
        Some(t) => relative(t.get_ref()),
        None => {
            c.error(
                Some(span),
                "admin.token_file",
                "is required: a file of bearer tokens, one per line (the endpoint never runs without credentials)",
            );
            PathBuf::new()
        }
    };
    let max_connections = c.integer(raw.max_connections, "admin.max_connections", 16, 1..1025);
    let timeout = c.duration(raw.timeout, "admin.timeout", Duration::from_secs(10));
    AdminConfig {
        max_connections,
        timeout,
        listen,
        token_file,
        public_metrics: raw.public_metrics.unwrap_or(false),
        tls,
        client_ca,
    }
}
