//! The report store: one SQLite file with the per-message rows waiting to be
//! aggregated and the report mails built from them, one per destination, with
//! their delivery state. Building a report, inserting its mails and deleting its
//! rows is one transaction, so a crash loses nothing and counts nothing twice;
//! a mail is marked sent only after the server's 250.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::row::Row;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
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
CREATE INDEX IF NOT EXISTS records_by_domain ON records (policy_domain, t);
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
    db: Connection,
}

/// One group of identical rows: RFC 9990's `record` with its `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub row: Row,
    pub count: u64,
}

/// The rows of one policy domain and period, grouped.
#[derive(Debug, Clone)]
pub struct Period {
    pub domain: String,
    pub begin: i64,
    pub end: i64,
    /// The latest row's published policy, discovery and destinations.
    pub latest: Row,
    pub groups: Vec<Group>,
    /// The highest row id aggregated (rows up to it are deleted on commit).
    pub last_id: i64,
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

impl Store {
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        db.busy_timeout(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        db.execute_batch(SCHEMA)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Store { db })
    }

    /// Inserts rows in one transaction.
    pub fn insert(&mut self, rows: &[Row]) -> Result<(), String> {
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO records (t, policy_domain, header_from, source_ip, envelope_from,
                     envelope_to, disposition, dkim_aligned, spf_aligned, override_type,
                     override_comment, spf, dkim, policy, discovery, rua)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(|e| e.to_string())?;
            for r in rows {
                stmt.execute(params![
                    r.t,
                    r.policy_domain,
                    r.header_from,
                    r.source_ip,
                    r.envelope_from,
                    r.envelope_to,
                    r.disposition,
                    r.dkim_aligned,
                    r.spf_aligned,
                    r.override_type,
                    r.override_comment,
                    r.spf,
                    r.dkim,
                    r.policy,
                    r.discovery,
                    r.rua
                ])
                .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// Rows waiting, by policy domain: (domain, rows, first, last time).
    pub fn pending_rows(&self) -> Result<Vec<(String, u64, i64, i64)>, String> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT policy_domain, COUNT(*), MIN(t), MAX(t) FROM records
                 GROUP BY policy_domain ORDER BY policy_domain",
            )
            .map_err(|e| e.to_string())?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?))
        })
        .and_then(Iterator::collect)
        .map_err(|e| e.to_string())
    }

    /// The periods ready for a report: every (domain, period) whose period of
    /// `length` seconds from midnight UTC ended by `now`; with `all`, the current
    /// one too, up to `now`.
    pub fn periods(&self, now: i64, length: i64, all: bool) -> Result<Vec<Period>, String> {
        let mut keys = self
            .db
            .prepare(
                "SELECT policy_domain, t / ?1, MIN(t), MAX(id) FROM records
                 GROUP BY policy_domain, t / ?1 ORDER BY policy_domain, t / ?1",
            )
            .map_err(|e| e.to_string())?;
        let keys: Vec<(String, i64, i64, i64)> = keys
            .query_map([length], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (domain, index, first, last_id) in keys {
            let (begin, end) = match (index + 1) * length {
                end if end <= now => (index * length, end),
                _ if all => (first, now + 1),
                _ => continue,
            };
            out.push(self.period(&domain, begin, end, last_id)?);
        }
        Ok(out)
    }

    fn period(&self, domain: &str, begin: i64, end: i64, last_id: i64) -> Result<Period, String> {
        let latest = self
            .db
            .query_row(
                &format!("SELECT {ROW_COLUMNS}, 1 FROM records WHERE id = ?1"),
                [last_id],
                read_group,
            )
            .map_err(|e| e.to_string())?
            .row;
        let mut stmt = self
            .db
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS}, COUNT(*) FROM records
                 WHERE policy_domain = ?1 AND t >= ?2 AND t < ?3 AND id <= ?4
                 GROUP BY source_ip, header_from, envelope_from, envelope_to, disposition,
                          dkim_aligned, spf_aligned, override_type, override_comment, spf, dkim
                 ORDER BY COUNT(*) DESC"
            ))
            .map_err(|e| e.to_string())?;
        let groups = stmt
            .query_map(params![domain, begin, end, last_id], read_group)
            .and_then(Iterator::collect)
            .map_err(|e| e.to_string())?;
        Ok(Period {
            domain: domain.to_owned(),
            begin,
            end,
            latest,
            groups,
            last_id,
        })
    }

    /// Stores a period's mails and deletes its rows, in one transaction.
    pub fn commit_period(&mut self, p: &Period, mails: &[NewMail], now: i64) -> Result<(), String> {
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        for m in mails {
            insert_mail(&tx, m, now)?;
        }
        tx.execute(
            "DELETE FROM records WHERE policy_domain = ?1 AND t >= ?2 AND t < ?3 AND id <= ?4",
            params![p.domain, p.begin, p.end, p.last_id],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
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

fn insert_mail(db: &Connection, m: &NewMail, now: i64) -> Result<(), String> {
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

const ROW_COLUMNS: &str = "t, policy_domain, header_from, source_ip, envelope_from, envelope_to,
    disposition, dkim_aligned, spf_aligned, override_type, override_comment, spf, dkim, policy,
    discovery, rua";

fn read_group(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        row: Row {
            t: r.get(0)?,
            policy_domain: r.get(1)?,
            header_from: r.get(2)?,
            source_ip: r.get(3)?,
            envelope_from: r.get(4)?,
            envelope_to: r.get(5)?,
            disposition: static_word(&r.get::<_, String>(6)?),
            dkim_aligned: r.get(7)?,
            spf_aligned: r.get(8)?,
            override_type: r.get::<_, Option<String>>(9)?.map(|t| static_word(&t)),
            override_comment: r.get(10)?,
            spf: r.get(11)?,
            dkim: r.get(12)?,
            policy: r.get(13)?,
            discovery: static_word(&r.get::<_, String>(14)?),
            rua: r.get(15)?,
        },
        count: r.get::<_, i64>(16)?.max(0) as u64,
    })
}

/// The stored words back as the constants the rows were written from.
fn static_word(word: &str) -> &'static str {
    const WORDS: &[&str] = &[
        "pass",
        "none",
        "quarantine",
        "reject",
        "trusted_forwarder",
        "policy_test_mode",
        "local_policy",
        "mailing_list",
        "other",
        "treewalk",
        "psl",
    ];
    WORDS
        .iter()
        .find(|w| **w == word)
        .copied()
        .unwrap_or("other")
}
