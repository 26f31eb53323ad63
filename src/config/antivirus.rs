//! The `[antivirus]` section: where clamd is, what happens to infected mail, to mail
//! clamd could not scan and to mail too large to send, and the limits that keep a
//! slow clamd from holding Postfix past its time-outs.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::model::{
    AntivirusConfig, ClamdAddr, OnInfected, OnOversize, OnScanError, ScanMode, ServerConfig,
};
use super::parse::S;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAntivirus {
    clamd: S<String>,
    on_infected: S<String>,
    on_error: S<String>,
    on_oversize: S<String>,
    max_size: S<String>,
    max_concurrent_scans: S<i64>,
    connect_timeout: S<String>,
    scan_timeout: S<String>,
    scan: S<String>,
    header: Option<bool>,
}

pub(super) fn check_antivirus(
    c: &mut Checker<'_>,
    raw: Spanned<RawAntivirus>,
    server: &ServerConfig,
) -> AntivirusConfig {
    let section = raw.span();
    let raw = raw.into_inner();
    if raw.clamd.is_none() {
        c.error(
            Some(section.clone()),
            "antivirus.clamd",
            "is required: \"tcp:HOST:PORT\" or \"unix:PATH\" (remove [antivirus] to scan nothing)",
        );
    }
    let clamd = c.value(
        raw.clamd,
        "antivirus.clamd",
        ClamdAddr::Tcp("127.0.0.1:3310".into()),
        parse_clamd,
    );
    let on_infected = c.value(
        raw.on_infected,
        "antivirus.on_infected",
        OnInfected::Reject,
        |t| match t {
            "reject" => Ok(OnInfected::Reject),
            "discard" => Ok(OnInfected::Discard),
            "quarantine" => Ok(OnInfected::Quarantine),
            "tag" => Ok(OnInfected::Tag),
            other => Err(format!(
                "{other:?} is not an action: use \"reject\", \"discard\", \"quarantine\" or \"tag\""
            )),
        },
    );
    let on_error = c.value(
        raw.on_error,
        "antivirus.on_error",
        OnScanError::Tempfail,
        |t| match t {
            "tempfail" => Ok(OnScanError::Tempfail),
            "accept" => Ok(OnScanError::Accept),
            "reject" => Ok(OnScanError::Reject),
            other => Err(format!(
                "{other:?} is not an action: use \"tempfail\" (Postfix retries), \"accept\" (delivered unscanned, with a header) or \"reject\""
            )),
        },
    );
    let on_oversize = c.value(
        raw.on_oversize,
        "antivirus.on_oversize",
        OnOversize::Tempfail,
        parse_on_oversize,
    );
    let max_size_span = raw.max_size.as_ref().map(Spanned::span);
    let max_size = c.size(raw.max_size, "antivirus.max_size", 25 << 20, 1);
    if max_size > server.max_message_size {
        c.error(
            max_size_span,
            "antivirus.max_size",
            format!(
                "is larger than server.max_message_size ({} bytes): mailwarden keeps no more of a message than that",
                server.max_message_size
            ),
        );
    }
    let connect_timeout = c.duration(
        raw.connect_timeout,
        "antivirus.connect_timeout",
        Duration::from_secs(5),
    );
    let scan_timeout = c.duration_within_eom(
        raw.scan_timeout,
        "antivirus.scan_timeout",
        Duration::from_secs(120),
        server.eom_timeout,
        "so a slow clamd ends in on_error and not in Postfix's own time-out",
    );
    AntivirusConfig {
        clamd,
        on_infected,
        on_error,
        on_oversize,
        max_size,
        max_concurrent_scans: c.integer(
            raw.max_concurrent_scans,
            "antivirus.max_concurrent_scans",
            10,
            1..10_001,
        ),
        connect_timeout: connect_timeout.min(scan_timeout),
        scan_timeout,
        mode: c.value(raw.scan, "antivirus.scan", ScanMode::Message, |t| match t {
            "message" => Ok(ScanMode::Message),
            "attachments" => Ok(ScanMode::Attachments),
            other => Err(format!(
                "{other:?} is not a scan mode: use \"message\" (the whole message; clamd decodes it) or \"attachments\" (each decoded attachment, named in the verdict)"
            )),
        }),
        header: raw.header.unwrap_or(true),
    }
}

/// `on_oversize` of `[antivirus]` and `[inbound]`: what a message we could not check
/// whole gets.
pub(super) fn parse_on_oversize(t: &str) -> Result<OnOversize, String> {
    match t {
        "accept" => Ok(OnOversize::Accept),
        "tempfail" => Ok(OnOversize::Tempfail),
        "reject" => Ok(OnOversize::Reject),
        other => Err(format!(
            "{other:?} is not an action: use \"tempfail\" (the default), \"reject\" or \"accept\" (delivered unchecked, tagged)"
        )),
    }
}

fn parse_clamd(t: &str) -> Result<ClamdAddr, String> {
    if let Some(path) = t.strip_prefix("unix:") {
        if path.starts_with('/') {
            return Ok(ClamdAddr::Unix(PathBuf::from(path)));
        }
        return Err(format!("{t:?}: the socket path must be absolute"));
    }
    if let Some(host_port) = t.strip_prefix("tcp:") {
        let valid = host_port.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && port.parse::<u16>().is_ok_and(|p| p > 0)
                && host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'))
        });
        if valid {
            return Ok(ClamdAddr::Tcp(host_port.to_owned()));
        }
    }
    Err(format!(
        "{t:?} is not a clamd address: use \"tcp:HOST:PORT\" or \"unix:/path/to/clamd.ctl\""
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_clamd;
    use crate::config::ClamdAddr;

    #[test]
    fn clamd_addresses() {
        assert_eq!(
            parse_clamd("tcp:127.0.0.1:3310"),
            Ok(ClamdAddr::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            parse_clamd("tcp:clamav:3310"),
            Ok(ClamdAddr::Tcp("clamav:3310".into()))
        );
        assert_eq!(
            parse_clamd("tcp:[::1]:3310"),
            Ok(ClamdAddr::Tcp("[::1]:3310".into()))
        );
        assert_eq!(
            parse_clamd("unix:/run/clamav/clamd.ctl"),
            Ok(ClamdAddr::Unix("/run/clamav/clamd.ctl".into()))
        );
        for bad in [
            "127.0.0.1:3310",
            "tcp:127.0.0.1",
            "tcp:host:0",
            "tcp::3310",
            "tcp:a b:1",
            "unix:clamd.ctl",
        ] {
            assert!(parse_clamd(bad).is_err(), "{bad}");
        }
    }
}
