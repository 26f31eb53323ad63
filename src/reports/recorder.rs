//! The daemon's side of the report store: [`Recorder::record`] turns a decided
//! message into rows (and, when enabled, a failure report) and hands them to a
//! writer thread through a bounded queue, so nothing waits on the disk in a
//! milter session. The writer stores them in batches; while the store cannot be
//! opened or written, rows wait in memory up to `[reports] backlog`. Every row
//! that cannot be kept (queue full, backlog over) is counted in
//! `mailwarden_dmarc_report_records_total{class="lost"}` and logged.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::failure;
use super::row::{Row, rows};
use super::store::{NewMail, Store};
use crate::auth::AuthReport;
use crate::bounded::BoundedMap;
use crate::config::{Config, ReportsConfig};
use crate::decision::Decision;
use crate::fleet::Fleet;
use crate::observe::metrics::{ClassLabels, ReportLabels, metrics};
use crate::transaction::Transaction;

/// Messages' rows waiting for the writer; beyond this the queue is full (about
/// two seconds of a busy MX; the writer takes the queue every [`TICK`]).
const QUEUE: usize = 32_768;
/// Rows stored per transaction at most.
const BATCH: usize = 2_000;
/// How often the writer takes what is queued.
const TICK: Duration = Duration::from_millis(100);
/// How often a store that failed is tried again, and the gauges refreshed.
const RETRY: Duration = Duration::from_secs(5);
const GAUGES: Duration = Duration::from_secs(60);

enum Item {
    Rows(Vec<Row>),
    Mail(Box<NewMail>),
    Flush(SyncSender<()>),
}

pub struct Recorder {
    queue: SyncSender<Item>,
    config: ReportsConfig,
    authserv_id: String,
    /// Failure reports per reported domain this hour: (hour, count).
    failures: Mutex<BoundedMap<String, (u64, u32)>>,
    /// When the last "queue full" warning was logged.
    warned: Mutex<Option<Instant>>,
    /// Tells the failure-report round to end (when this recorder is replaced).
    stop: Arc<AtomicBool>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Recorder {
    /// Starts the writer thread, and with `failure = true` the round that
    /// delivers failure reports every [`FAILURE_ROUND`]. The store is opened there;
    /// a store that cannot be opened is a warning, not an error: mail flows and
    /// rows wait in memory.
    pub fn start(full: &Config, config: &ReportsConfig) -> Arc<Recorder> {
        let stop = Arc::new(AtomicBool::new(false));
        if config.failure {
            start_failure_round(full.clone(), stop.clone());
        }
        let (queue, rx) = sync_channel(QUEUE);
        let fleet = full.cluster.as_ref().and_then(|c| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| error!("no runtime for the fleet's report stream: {e}"))
                .ok()?;
            match Fleet::new(c) {
                Ok(fleet) => Some((fleet, runtime)),
                Err(e) => {
                    error!("report rows stay on this host: {e}");
                    None
                }
            }
        });
        let writer = Writer {
            path: config.store.clone(),
            backlog_cap: config.backlog,
            store: None,
            backlog: VecDeque::new(),
            failed_at: None,
            fleet,
            stream_failed: false,
        };
        let spawned = std::thread::Builder::new()
            .name("mailwarden-reports".into())
            .spawn(move || writer.run(rx));
        if let Err(e) = spawned {
            error!("cannot start the DMARC report writer: {e}; no report records are kept");
        }
        Arc::new(Recorder {
            queue,
            config: config.clone(),
            authserv_id: full.inbound.authserv_id.clone(),
            stop,
            failures: Mutex::new(BoundedMap::new(10_000)),
            warned: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &ReportsConfig {
        &self.config
    }

    /// Records one decided message. Never blocks.
    pub fn record(&self, tx: &Transaction, decision: &Decision, auth: &AuthReport) {
        let rows = rows(tx, decision, auth);
        if !rows.is_empty() {
            let n = rows.len() as u64;
            self.send(Item::Rows(rows), n);
        }
        if self.config.failure {
            for mail in failure::reports(&self.config, &self.authserv_id, tx, decision, auth) {
                if self.allow_failure(&mail.domain) {
                    self.send(Item::Mail(Box::new(mail)), 0);
                }
            }
        }
    }

    fn allow_failure(&self, domain: &str) -> bool {
        let hour = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 3600);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_or_insert(domain, str::to_owned, || (hour, 0));
        if entry.0 != hour {
            *entry = (hour, 0);
        }
        let allowed = entry.1 < self.config.failure_per_hour;
        entry.1 += u32::from(allowed);
        let class = if allowed { "queued" } else { "rate_limited" };
        metrics()
            .failure_reports
            .get_or_create(&ClassLabels { class })
            .inc();
        allowed
    }

    fn send(&self, item: Item, rows: u64) {
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                lost(rows);
                let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    *warned = Some(Instant::now());
                    error!(
                        "DMARC report queue full or writer gone: records lost (counted in mailwarden_dmarc_report_records_total)"
                    );
                }
            }
        }
    }

    /// Stores everything queued so far (on SIGTERM); waits at most `limit`.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = sync_channel(1);
        let deadline = Instant::now() + limit;
        let mut item = Item::Flush(done);
        loop {
            match self.queue.try_send(item) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    item = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// How often the daemon delivers the failure reports due.
const FAILURE_ROUND: Duration = Duration::from_secs(10);

/// Delivers failure reports while the recorder lives (a thread of its own with a
/// small runtime: SQLite and SMTP never wait on a milter worker).
fn start_failure_round(config: Config, stop: Arc<AtomicBool>) {
    let round = move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            error!("cannot start the failure report round; they wait for `reports send`");
            return;
        };
        loop {
            let until = Instant::now() + FAILURE_ROUND;
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            match rt.block_on(super::send::deliver_failures(&config)) {
                Ok(Some(summary)) => {
                    for note in &summary.notes {
                        warn!("DMARC failure report: {note}");
                    }
                    if summary.sent > 0 {
                        info!(sent = summary.sent, "DMARC failure reports sent");
                    }
                }
                Ok(None) => {}
                Err(e) => warn!("DMARC failure reports not delivered this round: {e}"),
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("mailwarden-failure-reports".into())
        .spawn(round)
    {
        error!("cannot start the failure report round ({e}); they wait for `reports send`");
    }
}

fn lost(rows: u64) {
    if rows > 0 {
        metrics()
            .report_records
            .get_or_create(&ClassLabels { class: "lost" })
            .inc_by(rows);
    }
}

struct Writer {
    path: std::path::PathBuf,
    backlog_cap: usize,
    store: Option<Store>,
    backlog: VecDeque<Row>,
    failed_at: Option<Instant>,
    /// Fleet mode: the stream this host's rows move to, and the writer's own
    /// runtime for the Redis calls.
    fleet: Option<(Arc<Fleet>, tokio::runtime::Runtime)>,
    /// Whether the last move to the stream failed (said once, not every tick).
    stream_failed: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Item>) {
        let mut mails: Vec<NewMail> = Vec::new();
        // Open the store at once, so a store that cannot be opened is said at start.
        self.store_all(&mut mails);
        let mut gauges = Instant::now() - GAUGES;
        loop {
            // Wake on a clock, never on a message: a receiver blocked in the
            // channel would cost every sender a futex wake-up (a system call and a
            // context switch per message on the milter's hot path).
            std::thread::sleep(TICK);
            let mut flushes = Vec::new();
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok(Item::Rows(rows)) => self.backlog.extend(rows),
                    Ok(Item::Mail(m)) => mails.push(*m),
                    Ok(Item::Flush(done)) => flushes.push(done),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.store_all(&mut mails);
            self.forward();
            if gauges.elapsed() >= GAUGES {
                gauges = Instant::now();
                self.gauges();
            }
            for done in flushes {
                let _ = done.try_send(());
            }
            if closed {
                if !self.backlog.is_empty() {
                    error!(
                        rows = self.backlog.len(),
                        "DMARC report records not stored at exit"
                    );
                    lost(self.backlog.len() as u64);
                }
                return;
            }
        }
    }

    /// Opens the store when it is not open (at most every [`RETRY`]), writes the
    /// backlog in batches, and drops the oldest rows beyond the cap.
    fn store_all(&mut self, mails: &mut Vec<NewMail>) {
        if self.store.is_none() && self.failed_at.is_none_or(|t| t.elapsed() >= RETRY) {
            match Store::open(&self.path) {
                Ok(store) => {
                    if self.failed_at.take().is_some() {
                        info!(store = %self.path.display(), "DMARC report store open again");
                    }
                    self.store = Some(store);
                }
                Err(e) => self.failed(&e),
            }
        }
        if let Some(store) = &mut self.store {
            let now = unix_now();
            while !self.backlog.is_empty() {
                let n = self.backlog.len().min(BATCH);
                let batch: Vec<Row> = self.backlog.range(..n).cloned().collect();
                match store.insert(&batch) {
                    Ok(()) => {
                        self.backlog.drain(..n);
                        metrics()
                            .report_records
                            .get_or_create(&ClassLabels { class: "written" })
                            .inc_by(n as u64);
                    }
                    Err(e) => {
                        self.store = None;
                        self.failed(&e);
                        break;
                    }
                }
            }
            if let Some(store) = &mut self.store {
                mails.retain(|m| match store.add_mail(m, now) {
                    Ok(()) => false,
                    Err(e) => {
                        warn!("DMARC failure report not stored: {e}");
                        true
                    }
                });
            }
        }
        let over = self.backlog.len().saturating_sub(self.backlog_cap);
        if over > 0 {
            self.backlog.drain(..over);
            lost(over as u64);
            error!(
                rows = over,
                backlog = self.backlog_cap,
                "DMARC report records dropped: the store is unavailable and [reports] backlog is full"
            );
        }
        mails.truncate(1_000);
    }

    /// Fleet mode: moves this host's stored rows to the fleet's stream. While
    /// Redis is away they stay in the store (the spool) and move when it is back.
    fn forward(&mut self) {
        let (Some(store), Some((fleet, runtime))) = (&mut self.store, &self.fleet) else {
            return;
        };
        loop {
            match runtime.block_on(super::fleet_rows::forward(store, fleet)) {
                Ok(n) if n > 0 => {
                    if std::mem::take(&mut self.stream_failed) {
                        info!("DMARC report rows move to the fleet's stream again");
                    }
                }
                Ok(_) => return,
                Err(e) => {
                    if !std::mem::replace(&mut self.stream_failed, true) {
                        warn!(
                            "DMARC report rows stay in this host's store until Redis answers: {e}"
                        );
                    }
                    return;
                }
            }
        }
    }

    fn failed(&mut self, e: &str) {
        metrics().report_store_errors.inc();
        if self.failed_at.is_none() {
            warn!(
                store = %self.path.display(),
                backlog = self.backlog_cap,
                "DMARC report store unavailable ({e}); records wait in memory, mail is not affected"
            );
        }
        self.failed_at = Some(Instant::now());
    }

    fn gauges(&self) {
        let Some(store) = &self.store else { return };
        if let Ok(states) = store.states() {
            for (kind, state, n) in states {
                metrics()
                    .report_mails
                    .get_or_create(&ReportLabels {
                        kind: if kind == "failure" {
                            "failure"
                        } else {
                            "aggregate"
                        },
                        state,
                    })
                    .set(n);
            }
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
