//! `mailwarden reports send`: build the aggregate reports of every finished
//! period (with `--all`, the current one too), then deliver every report mail
//! due, aggregate and failure alike: over SMTP to the configured server (the
//! local Postfix, so our own milter signs them), or into `.eml` files with
//! `--out`. A destination outside the policy domain's organization gets mail
//! only when it authorizes it in the DNS.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mail_send::SmtpClientBuilder;
use mail_send::smtp::message::{Address, Message};

use super::aggregate::Reporter;
use super::mail::{self, Envelope};
use super::recorder::unix_now;
use super::records::Period;
use super::store::{NewMail, Store, Subject};
use crate::auth::ReportDestinations;
use crate::auth::dmarc::Destination;
use crate::config::{Config, ReportsConfig};

/// Reports cover one UTC day.
pub const PERIOD: i64 = 86_400;
/// Attempts in one run before a mail waits for the next run, and in all.
const TRIES_PER_RUN: u32 = 3;
const MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Default)]
pub struct Options {
    pub out: Option<PathBuf>,
    pub all: bool,
}

/// What one run did, for the command's output and exit code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub built: usize,
    pub sent: usize,
    pub written: usize,
    pub failed: usize,
    pub deferred: usize,
    pub unauthorized: usize,
    /// One line per mail that was not delivered, and why.
    pub notes: Vec<String>,
}

pub async fn run(config: &Config, options: &Options) -> Result<Summary, String> {
    let reports = config
        .reports
        .as_ref()
        .ok_or("the configuration has no [reports] section: nothing is recorded")?;
    // One sender at a time: then a mail left `sending` was cut off by a run
    // that died (killed between its build and the server's 250) and is due again.
    let _lock = lock(&reports.store)?.ok_or_else(|| {
        format!(
            "another `mailwarden reports send` (or the daemon's failure-report round) holds {}.lock",
            reports.store.display()
        )
    })?;
    let mut store = Store::open(&reports.store)?;
    let mut summary = Summary::default();
    resume(&mut store, &mut summary)?;
    let fleet = match &config.cluster {
        Some(c) => Some(fleet_rows_in(c, &mut store, &mut summary).await?),
        None => None,
    };
    let result = build_and_deliver(config, reports, options, &mut store, &mut summary).await;
    if let Some(fleet) = fleet {
        let _ = fleet.unlock("reports").await;
    }
    result.map(|()| summary)
}

/// Fleet mode: one host at a time reports for the fleet, from every host's rows
/// on the stream. Takes the fleet's report lock (given back by the caller) and
/// reads the stream into `store`. An unreachable Redis is an error: reporting
/// only this host's rows would be reporting half the fleet.
async fn fleet_rows_in(
    cluster: &crate::config::ClusterConfig,
    store: &mut Store,
    summary: &mut Summary,
) -> Result<std::sync::Arc<crate::fleet::Fleet>, String> {
    let fleet = crate::fleet::Fleet::new(cluster)?;
    if !fleet.lock("reports", 3_600_000).await? {
        return Err("another host holds the fleet's report lock (it is sending reports)".into());
    }
    store.fleet_only = true;
    // This host's own rows first: those its daemon could not move (Redis was
    // away when it stopped for good) are reported too.
    let moved = async {
        let moved = super::fleet_rows::forward_all(store, &fleet).await?;
        let pulled = super::fleet_rows::pull(store, &fleet).await?;
        Ok::<_, String>((moved, pulled))
    };
    match moved.await {
        Ok((moved, n)) => {
            if moved > 0 {
                summary.notes.push(format!(
                    "{moved} of this host's rows moved to the fleet's stream"
                ));
            }
            summary
                .notes
                .push(format!("{n} rows from the fleet's stream"));
            Ok(fleet)
        }
        Err(e) => {
            let _ = fleet.unlock("reports").await;
            Err(format!("cannot read the fleet's report rows: {e}"))
        }
    }
}

async fn build_and_deliver(
    config: &Config,
    reports: &ReportsConfig,
    options: &Options,
    store: &mut Store,
    summary: &mut Summary,
) -> Result<(), String> {
    summary.built = build(store, reports, options.all)?;
    let destinations = ReportDestinations::new(&config.dns, config.inbound.dmarc_discovery)?;
    let out = options.out.as_deref();
    deliver(store, reports, &destinations, out, None, summary).await
}

/// The daemon's round for failure reports (every few seconds when
/// `[reports] failure = true`): delivers the failure report mails due. `None`
/// when `reports send` holds the lock (it delivers them itself).
pub(crate) async fn deliver_failures(config: &Config) -> Result<Option<Summary>, String> {
    let reports = config.reports.as_ref().ok_or("no [reports] section")?;
    let Some(_lock) = lock(&reports.store)? else {
        return Ok(None);
    };
    let mut store = Store::open(&reports.store)?;
    let mut summary = Summary::default();
    resume(&mut store, &mut summary)?;
    let destinations = ReportDestinations::new(&config.dns, config.inbound.dmarc_discovery)?;
    deliver(
        &mut store,
        reports,
        &destinations,
        None,
        Some("failure"),
        &mut summary,
    )
    .await?;
    Ok(Some(summary))
}

fn resume(store: &mut Store, summary: &mut Summary) -> Result<(), String> {
    let resumed = store.resume_interrupted()?;
    if resumed > 0 {
        summary.notes.push(format!(
            "{resumed} report mail(s) from an interrupted run are due again"
        ));
    }
    Ok(())
}

/// An exclusive lock on `<store>.lock` for the whole run, released when the file
/// is closed (also when the process dies); `None` when another process holds it.
fn lock(store: &Path) -> Result<Option<std::fs::File>, String> {
    use std::os::fd::AsRawFd;
    let mut path = store.as_os_str().to_owned();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", Path::new(&path).display()))?;
    // SAFETY: flock on a descriptor this File owns for as long as it lives.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(None);
    }
    Ok(Some(file))
}

/// Builds the reports of the periods that are due; returns how many.
fn build(store: &mut Store, config: &ReportsConfig, all: bool) -> Result<usize, String> {
    let now = unix_now();
    let due = store.periods(now, PERIOD, all)?;
    let who = Reporter {
        org_name: &config.org_name,
        email: &config.from,
    };
    let submitter = submitter(config);
    let mails: Vec<NewMail> = due
        .periods
        .iter()
        .flat_map(|p| mails_for(p, config, &who, submitter, now))
        .collect();
    store.commit(&due, &mails, now)?;
    Ok(due.periods.len())
}

pub(super) fn mails_for(
    p: &Period,
    config: &ReportsConfig,
    who: &Reporter<'_>,
    submitter: &str,
    now: i64,
) -> Vec<NewMail> {
    let report_id = super::aggregate::report_id(p);
    let about = Subject {
        kind: "aggregate",
        domain: &p.domain,
        report_id: &report_id,
        begin: p.begin,
        end: p.end - 1,
    };
    destinations(&p.latest.rua)
        .into_iter()
        .take(config.max_destinations)
        .map(|dest| {
            let message = mail::aggregate(
                p,
                who,
                &Envelope {
                    from: &config.from,
                    to: &dest.address,
                    submitter,
                    now,
                },
            );
            NewMail::for_destination(&about, &dest, message, config.max_report_size)
        })
        .collect()
}

/// The stored `address[!size]` list back as destinations.
fn destinations(rua: &str) -> Vec<Destination> {
    rua.split(',')
        .filter(|d| !d.is_empty())
        .map(|d| match d.rsplit_once('!') {
            Some((address, size)) => Destination {
                address: address.to_owned(),
                max_size: size.parse().ok(),
            },
            None => Destination {
                address: d.to_owned(),
                max_size: None,
            },
        })
        .collect()
}

/// RFC 9990's submitter: the domain of the reports' sender.
pub(super) fn submitter(config: &ReportsConfig) -> &str {
    config
        .from
        .rsplit_once('@')
        .map_or(config.from.as_str(), |(_, d)| d)
}

/// Delivers (or writes) every mail due, each claimed so that two runs never
/// send one twice.
async fn deliver(
    store: &mut Store,
    config: &ReportsConfig,
    destinations: &ReportDestinations,
    out: Option<&Path>,
    kind: Option<&str>,
    summary: &mut Summary,
) -> Result<(), String> {
    let mut after = 0;
    while let Some(mail) = store.claim(unix_now(), after, kind)? {
        after = mail.id;
        let now = unix_now();
        let dest_domain = mail
            .destination
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_owned();
        match destinations.authorized(&mail.domain, &dest_domain).await {
            Ok(true) => {}
            Ok(false) => {
                let why = format!(
                    "{dest_domain} does not authorize reports for {} ({}._report._dmarc.{dest_domain})",
                    mail.domain, mail.domain
                );
                summary
                    .notes
                    .push(format!("{} to {}: {why}", mail.report_id, mail.destination));
                store.settle(mail.id, "unauthorized", Some(&why), 0, now)?;
                summary.unauthorized += 1;
                continue;
            }
            Err(e) => {
                let why = format!("authorization lookup failed: {e}");
                summary
                    .notes
                    .push(format!("{} to {}: {why}", mail.report_id, mail.destination));
                store.settle(
                    mail.id,
                    "pending",
                    Some(&why),
                    now + backoff(mail.attempts),
                    now,
                )?;
                summary.deferred += 1;
                continue;
            }
        }
        if let Some(dir) = out {
            let path = dir.join(format!("{}-{}.eml", mail.id, file_safe(&mail.report_id)));
            std::fs::write(&path, &mail.message).map_err(|e| format!("{}: {e}", path.display()))?;
            store.settle(mail.id, "written", None, 0, now)?;
            summary.written += 1;
            continue;
        }
        let mut outcome = Err(Attempt::Transient(String::new()));
        for attempt in 0..TRIES_PER_RUN {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt * attempt))).await;
            }
            outcome = smtp(config, &mail.destination, &mail.message).await;
            if !matches!(outcome, Err(Attempt::Transient(_))) {
                break;
            }
        }
        let now = unix_now();
        match outcome {
            Ok(()) => {
                store.settle(mail.id, "sent", None, 0, now)?;
                summary.sent += 1;
            }
            Err(Attempt::Permanent(e)) => {
                summary.notes.push(format!(
                    "{} to {}: refused: {e}",
                    mail.report_id, mail.destination
                ));
                store.settle(mail.id, "failed", Some(&e), 0, now)?;
                summary.failed += 1;
            }
            Err(Attempt::Transient(e)) if mail.attempts + 1 >= MAX_ATTEMPTS => {
                summary.notes.push(format!(
                    "{} to {}: giving up: {e}",
                    mail.report_id, mail.destination
                ));
                store.settle(mail.id, "failed", Some(&e), 0, now)?;
                summary.failed += 1;
            }
            Err(Attempt::Transient(e)) => {
                summary.notes.push(format!(
                    "{} to {}: will retry: {e}",
                    mail.report_id, mail.destination
                ));
                store.settle(
                    mail.id,
                    "pending",
                    Some(&e),
                    now + backoff(mail.attempts),
                    now,
                )?;
                summary.deferred += 1;
            }
        }
    }
    Ok(())
}

/// Five minutes, doubling per attempt, at most six hours.
fn backoff(attempts: i64) -> i64 {
    (300_i64 << attempts.clamp(0, 7)).min(6 * 3600)
}

fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

enum Attempt {
    /// 5xx: the server will not take it.
    Permanent(String),
    /// Anything else: connection trouble, time-out, 4xx.
    Transient(String),
}

async fn smtp(config: &ReportsConfig, to: &str, message: &[u8]) -> Result<(), Attempt> {
    let (host, port) = config
        .smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            Attempt::Permanent(format!("reports.smtp {:?} is not HOST:PORT", config.smtp))
        })?;
    let transient = |e: mail_send::Error| match &e {
        mail_send::Error::UnexpectedReply(r) if r.code() >= 500 => {
            Attempt::Permanent(e.to_string())
        }
        _ => Attempt::Transient(e.to_string()),
    };
    let mut client = SmtpClientBuilder::new(host, port)
        .map_err(Attempt::Permanent)?
        .implicit_tls(false)
        .timeout(Duration::from_secs(60))
        .helo_host(crate::config::host_name())
        .connect_plain()
        .await
        .map_err(transient)?;
    let message = Message {
        mail_from: Address::from(config.from.as_str()),
        rcpt_to: vec![Address::from(to)],
        body: Cow::Borrowed(message),
    };
    client.send(message).await.map_err(transient)?;
    let _ = client.quit().await;
    Ok(())
}

/// `mailwarden reports list`: rows waiting per domain, then the report mails.
pub fn list(config: &Config, limit: i64) -> Result<String, String> {
    let reports = config
        .reports
        .as_ref()
        .ok_or("the configuration has no [reports] section: nothing is recorded")?;
    let store = Store::open(&reports.store)?;
    let mut out = String::from("records waiting for a report:\n");
    let pending = store.pending_rows()?;
    if pending.is_empty() {
        out.push_str("  (none)\n");
    }
    for (domain, rows, first, last) in pending {
        out.push_str(&format!("  {domain}  {rows} records  {first}..{last}\n"));
    }
    out.push_str("report mails (newest first):\n");
    let mails = store.mails(limit)?;
    if mails.is_empty() {
        out.push_str("  (none)\n");
    }
    for (m, begin, end, size) in mails {
        out.push_str(&format!(
            "  #{} {} {} {} -> {} {}..{} {} bytes attempts={}{}\n",
            m.id,
            m.kind,
            m.state,
            m.report_id,
            m.destination,
            begin,
            end,
            size,
            m.attempts,
            m.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    Ok(out)
}
