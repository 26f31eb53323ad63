//! `[dmarc]` (how policies are discovered) and `[reports]` (the DMARC report
//! store, the reports' sender, and failure reports).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::model::{DmarcDiscovery, ReportsConfig};
use super::parse::S;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDmarc {
    discovery: S<String>,
}

pub(super) fn check_dmarc(c: &mut Checker<'_>, raw: RawDmarc) -> DmarcDiscovery {
    c.value(
        raw.discovery,
        "dmarc.discovery",
        DmarcDiscovery::TreeWalk,
        |t| match t {
            "treewalk" => Ok(DmarcDiscovery::TreeWalk),
            "psl" => Ok(DmarcDiscovery::Psl),
            other => Err(format!(
                "{other:?} is not a discovery method: use \"treewalk\" (RFC 9989) or \"psl\" (RFC 7489)"
            )),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReports {
    store: S<String>,
    org_name: S<String>,
    from: S<String>,
    smtp: S<String>,
    max_destinations: S<i64>,
    max_report_size: S<String>,
    backlog: S<i64>,
    failure: Option<bool>,
    redact: S<Vec<Spanned<String>>>,
    failure_per_hour: S<i64>,
}

pub(super) fn check_reports(
    c: &mut Checker<'_>,
    raw: Spanned<RawReports>,
    file: Option<&Path>,
) -> ReportsConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let dir = super::parse::config_dir(file);
    let host = super::host_name();
    let from = c.value(
        raw.from,
        "reports.from",
        format!("dmarc-reports@{host}"),
        |t| match t.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && super::parse_domain(domain).is_ok()
                    && !t
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;".contains(c)) =>
            {
                Ok(t.to_owned())
            }
            _ => Err(format!(
                "{t:?} is not an address like dmarc-reports@example.net"
            )),
        },
    );
    let org_name = c.value(raw.org_name, "reports.org_name", host.clone(), |t| {
        if t.trim().is_empty() || t.chars().any(char::is_control) {
            Err("must be a non-empty name without control characters".into())
        } else {
            Ok(t.to_owned())
        }
    });
    let smtp = c.value(
        raw.smtp,
        "reports.smtp",
        "127.0.0.1:25".to_owned(),
        |t| match t.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(t.to_owned())
            }
            _ => Err(format!("{t:?} is not HOST:PORT")),
        },
    );
    let mut redact_local_part = true;
    let mut redact_body = true;
    if let Some(list) = raw.redact {
        redact_local_part = false;
        redact_body = false;
        for item in list.into_inner() {
            match item.get_ref().as_str() {
                "local-part" => redact_local_part = true,
                "body" => redact_body = true,
                other => c.error(
                    Some(item.span()),
                    "reports.redact",
                    format!("{other:?} is not redactable: use \"local-part\" and/or \"body\""),
                ),
            }
        }
    }
    let _ = span;
    ReportsConfig {
        store: c.value(
            raw.store,
            "reports.store",
            PathBuf::from("/var/lib/mailwarden/reports.db"),
            |t| Ok(dir.join(t)),
        ),
        org_name,
        from,
        smtp,
        max_destinations: c.integer(raw.max_destinations, "reports.max_destinations", 2, 1..11)
            as usize,
        max_report_size: c.size(
            raw.max_report_size,
            "reports.max_report_size",
            10 << 20,
            1024,
        ) as u64,
        backlog: c.integer(raw.backlog, "reports.backlog", 100_000, 1..10_000_001) as usize,
        failure: raw.failure.unwrap_or(false),
        redact_local_part,
        redact_body,
        failure_per_hour: c.integer(
            raw.failure_per_hour,
            "reports.failure_per_hour",
            10,
            1..100_001,
        ),
    }
}
