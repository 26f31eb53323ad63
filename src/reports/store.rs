//! The report store: one SQLite file with the per-message rows waiting to be
//! aggregated (`records.rs`) and the report mails built from them, one per
//! destination, with their delivery state (here). Building the reports, inserting
//! their mails and deleting their rows is one transaction, so a crash loses
//! nothing and counts nothing twice; a mail is marked sent only after the 250.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::dmarc::Destination;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS tuples (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    seen INTEGER NOT NULL,
    policy_domain TEXT NOT NULL,
    header_from TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    disposition TEXT NOT NULL,
    dkim_aligned INTEGER NOT NULL,
    spf_aligned INTEGER NOT NULL,
    override_type TEXT,
    override_comment TEXT,
    spf TEXT NOT NULL,
    dkim TEXT NOT NULL,
    policy TEXT NOT NULL,
    discovery TEXT NOT NULL,
    rua TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    t INTEGER NOT NULL,
    tuple INTEGER NOT NULL,
    fleet INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS stream_seen (
    uid TEXT PRIMARY KEY,
    t INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    domain TEXT NOT NULL,
    report_id TEXT NOT NULL,
    begin_t INTEGER NOT NULL,
    end_t INTEGER NOT NULL,
    destination TEXT NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created INTEGER NOT NULL,
    done INTEGER
);
CREATE INDEX IF NOT EXISTS reports_by_state ON reports (state, next_attempt);
";

pub struct Store {
    pub(super) db: Connection,
    /// Tuple ids by key, for the UTC day in `.1` (see `records.rs`).
    pub(super) tuples: (std::collections::HashMap<String, i64>, i64),
    /// Fleet mode: reports are built from the rows read from the fleet's stream
    /// only; this host's own rows get there through its daemon's writer (so a
    /// row being moved while a report is built is never counted twice).
    pub(super) fleet_only: bool,
    /// This store's name in the fleet (host and path): with a row's id, the
    /// row's unique id on the fleet's stream, the same whichever process of
    /// this host moves it there.
    pub(super) origin: String,
}

/// One report mail to one destination, as stored.
#[derive(Debug, Clone)]
pub struct Mail {
    pub id: i64,
    pub kind: String,
    pub domain: String,
    pub report_id: String,
    pub destination: String,
    pub message: Vec<u8>,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A built report mail waiting to be stored.
pub struct NewMail {
    pub kind: &'static str,
    pub domain: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
    pub destination: String,
    pub message: Vec<u8>,
    /// `pending`, or a final state when it must not be sent (`too-large`).
    pub state: &'static str,
    pub note: Option<String>,
}

/// Which report, about what, for when: what a mail is stored under.
pub struct Subject<'a> {
    pub kind: &'static str,
    pub domain: &'a str,
    pub report_id: &'a str,
    pub begin: i64,
    pub end: i64,
}

impl NewMail {
    /// The mail for `dest`: `pending`, or kept as `too-large` (never sent) when it
    /// is over the destination's `!size` or `[reports] max_report_size`.
    pub fn for_destination(
        about: &Subject<'_>,
        dest: &Destination,
        message: Vec<u8>,
        max_report_size: u64,
    ) -> NewMail {
        let limit = dest.max_size.unwrap_or(u64::MAX).min(max_report_size);
        let too_large = message.len() as u64 > limit;
        NewMail {
            kind: about.kind,
            domain: about.domain.to_owned(),
            report_id: about.report_id.to_owned(),
            begin: about.begin,
            end: about.end,
            destination: dest.address.clone(),
            message,
            state: if too_large { "too-large" } else { "pending" },
            note: too_large.then(|| format!("over {limit} bytes")),
        }
    }
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        db.busy_timeout(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        db.execute_batch(SCHEMA)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Store {
            db,
            tuples: (std::collections::HashMap::new(), -1),
            fleet_only: false,
            origin: format!(
                "{}:{}",
                crate::config::host_name(),
                std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.to_owned())
                    .display()
            ),
        })
    }

    /// Stores one mail (a failure report).
    pub fn add_mail(&mut self, m: &NewMail, now: i64) -> Result<(), String> {
        insert_mail(&self.db, m, now)
    }

    /// Mails a sender left `sending` when it died go back to `pending`; only
    /// the holder of the run lock calls this. Returns how many.
    pub fn resume_interrupted(&mut self) -> Result<usize, String> {
        self.db
            .execute(
                "UPDATE reports SET state = 'pending', next_attempt = 0 WHERE state = 'sending'",
                [],
            )
            .map_err(|e| e.to_string())
    }

    /// Claims the next mail due: `sending` until it is settled.
    pub fn claim(
        &mut self,
        now: i64,
        after: i64,
        kind: Option<&str>,
    ) -> Result<Option<Mail>, String> {
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        let mail = tx
            .query_row(
                "SELECT id, kind, domain, report_id, destination, message, state, attempts, last_error
                 FROM reports
                 WHERE id > ?2 AND state = 'pending' AND next_attempt <= ?1
                       AND (?3 IS NULL OR kind = ?3)
                 ORDER BY id LIMIT 1",
                params![now, after, kind],
                |r| {
                    Ok(Mail {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        domain: r.get(2)?,
                        report_id: r.get(3)?,
                        destination: r.get(4)?,
                        message: r.get(5)?,
                        state: r.get(6)?,
                        attempts: r.get(7)?,
                        last_error: r.get(8)?,
                    })
                },
            )
            .optional()
            .map_err(|e| e.to_string())?;
        if let Some(m) = &mail {
            tx.execute(
                "UPDATE reports SET state = 'sending', next_attempt = ?2 WHERE id = ?1",
                params![m.id, now],
            )
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(mail)
    }

    /// Settles a claimed mail: `sent`, `written`, `failed`, `unauthorized`, or
    /// back to `pending` with the next attempt at `retry_at`.
    pub fn settle(
        &mut self,
        id: i64,
        state: &str,
        error: Option<&str>,
        retry_at: i64,
        now: i64,
    ) -> Result<(), String> {
        self.db
            .execute(
                "UPDATE reports SET state = ?2, last_error = ?3, next_attempt = ?4,
                 attempts = attempts + (?2 = 'pending' OR ?2 = 'failed'),
                 done = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?5 END
                 WHERE id = ?1",
                params![id, state, error, retry_at, now],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every report mail (without its message), newest first, at most `limit`:
    /// the mail, its period and its size.
    pub fn mails(&self, limit: i64) -> Result<Vec<(Mail, i64, i64, i64)>, String> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, kind, domain, report_id, destination, state, attempts, last_error,
                        begin_t, end_t, length(message)
                 FROM reports ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| e.to_string())?;
        stmt.query_map([limit], |r| {
            Ok((
                Mail {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    domain: r.get(2)?,
                    report_id: r.get(3)?,
                    destination: r.get(4)?,
                    message: Vec::new(),
                    state: r.get(5)?,
                    attempts: r.get(6)?,
                    last_error: r.get(7)?,
                },
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .and_then(Iterator::collect)
        .map_err(|e| e.to_string())
    }

    /// Mails by kind and state, for the metrics.
    pub fn states(&self) -> Result<Vec<(String, String, i64)>, String> {
        let mut stmt = self
            .db
            .prepare("SELECT kind, state, COUNT(*) FROM reports GROUP BY kind, state")
            .map_err(|e| e.to_string())?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(|e| e.to_string())
    }
}

pub(super) fn insert_mail(db: &Connection, m: &NewMail, now: i64) -> Result<(), String> {
    db.execute(
        "INSERT INTO reports (kind, domain, report_id, begin_t, end_t, destination, message,
         state, last_error, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            m.kind,
            m.domain,
            m.report_id,
            m.begin,
            m.end,
            m.destination,
            m.message,
            m.state,
            m.note,
            now
        ],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
