//! The rows waiting for a report. A message is one `records` row (its time and
//! the id of its tuple); a tuple (everything else RFC 9990's `record` holds) is
//! stored once, however many messages share it. So recording a message is one
//! small insert, and aggregating a day is one pass grouped by two integers.
//!
//! The writer keeps tuple ids in memory for the current UTC day only, and marks
//! each tuple `seen` on that day; `reports send` deletes only tuples no row
//! refers to and unseen since the day before, so no writer holds a deleted id.

use std::collections::{BTreeMap, HashMap};

use rusqlite::params;

use super::recorder::unix_now;
use super::row::Row;
use super::store::{NewMail, Store, insert_mail};

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
    /// The highest row id in the period (the report id's unique part).
    pub last_id: i64,
}

/// The periods due and what deleting their rows takes.
pub struct Due {
    pub periods: Vec<Period>,
    /// Rows before this time with ids up to `last_id` are the ones aggregated.
    cutoff: i64,
    last_id: i64,
    /// Fleet mode: only rows read from the fleet's stream were aggregated.
    fleet_only: bool,
}

const DAY: i64 = 86_400;

pub(super) const TUPLE_COLUMNS: &str =
    "policy_domain, header_from, source_ip, envelope_from, envelope_to,
    disposition, dkim_aligned, spf_aligned, override_type, override_comment, spf, dkim, policy,
    discovery, rua";

impl Store {
    /// Stores rows in one transaction.
    pub fn insert(&mut self, rows: &[Row]) -> Result<(), String> {
        self.insert_from(rows, None)
    }

    /// Stores rows; with `uids` (fleet mode: rows taken from the fleet's stream,
    /// each with the id its host gave it), a row whose id was stored before is
    /// skipped, so a row read twice is counted once, and the rows are marked as
    /// the fleet's (never forwarded again).
    pub(super) fn insert_from(
        &mut self,
        rows: &[Row],
        uids: Option<&[String]>,
    ) -> Result<(), String> {
        let day = unix_now() / DAY;
        if self.tuples.1 != day || self.tuples.0.len() > 200_000 {
            self.tuples = (HashMap::new(), day);
        }
        let mut fresh: HashMap<String, i64> = HashMap::new();
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        {
            let mut upsert = tx
                .prepare_cached(&format!(
                    "INSERT INTO tuples (key, seen, {TUPLE_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                     ON CONFLICT (key) DO UPDATE SET seen = excluded.seen RETURNING id"
                ))
                .map_err(|e| e.to_string())?;
            let mut record = tx
                .prepare_cached("INSERT INTO records (t, tuple, fleet) VALUES (?1, ?2, ?3)")
                .map_err(|e| e.to_string())?;
            let mut seen = tx
                .prepare_cached("INSERT OR IGNORE INTO stream_seen (uid, t) VALUES (?1, ?2)")
                .map_err(|e| e.to_string())?;
            for (i, r) in rows.iter().enumerate() {
                if let Some(uids) = uids {
                    let uid = uids.get(i).ok_or("a row without its id")?;
                    if seen.execute(params![uid, r.t]).map_err(|e| e.to_string())? == 0 {
                        continue;
                    }
                }
                let key = r.key();
                let known = self
                    .tuples
                    .0
                    .get(&key)
                    .copied()
                    .or_else(|| fresh.get(&key).copied());
                let id = match known {
                    Some(id) => id,
                    None => {
                        let id: i64 = upsert
                            .query_row(
                                params![
                                    key,
                                    day,
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
                                ],
                                |x| x.get(0),
                            )
                            .map_err(|e| e.to_string())?;
                        fresh.insert(key, id);
                        id
                    }
                };
                record
                    .execute(params![r.t, id, uids.is_some()])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        // Only ids of a committed transaction are remembered.
        self.tuples.0.extend(fresh);
        Ok(())
    }

    /// Rows waiting, by policy domain: (domain, rows, first, last time).
    pub fn pending_rows(&self) -> Result<Vec<(String, u64, i64, i64)>, String> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT k.policy_domain, COUNT(*), MIN(r.t), MAX(r.t)
                 FROM records r JOIN tuples k ON k.id = r.tuple
                 GROUP BY k.policy_domain ORDER BY k.policy_domain",
            )
            .map_err(|e| e.to_string())?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?))
        })
        .and_then(Iterator::collect)
        .map_err(|e| e.to_string())
    }

    /// The periods ready for a report: every (domain, period of `length` seconds
    /// from midnight UTC) that ended by `now`; with `all`, the current one too,
    /// from its first row to `now`.
    pub fn periods(&self, now: i64, length: i64, all: bool) -> Result<Due, String> {
        let cutoff = if all {
            now + 1
        } else {
            now - now.rem_euclid(length)
        };
        let mut stmt = self
            .db
            .prepare(
                "SELECT tuple, t / ?1, COUNT(*), MIN(t), MAX(id) FROM records
                 WHERE t < ?2 AND (?3 = 0 OR fleet = 1) GROUP BY tuple, t / ?1",
            )
            .map_err(|e| e.to_string())?;
        let counts: Vec<(i64, i64, i64, i64, i64)> = stmt
            .query_map(params![length, cutoff, self.fleet_only], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| e.to_string())?;
        let mut tuple = self
            .db
            .prepare_cached(&format!("SELECT {TUPLE_COLUMNS} FROM tuples WHERE id = ?1"))
            .map_err(|e| e.to_string())?;
        let mut rows: HashMap<i64, Row> = HashMap::new();
        let mut periods: BTreeMap<(String, i64), (Period, i64)> = BTreeMap::new();
        let mut last_id = 0;
        for (id, index, count, first, max_id) in counts {
            let row = match rows.entry(id) {
                std::collections::hash_map::Entry::Occupied(known) => known.get().clone(),
                std::collections::hash_map::Entry::Vacant(slot) => slot
                    .insert(
                        tuple
                            .query_row([id], |r| read_tuple(r, 0))
                            .map_err(|e| format!("tuple {id}: {e}"))?,
                    )
                    .clone(),
            };
            let row = Row { t: first, ..row };
            last_id = last_id.max(max_id);
            let key = (row.policy_domain.clone(), index);
            let (period, latest_id) = periods.entry(key).or_insert_with(|| {
                let (begin, end) = match (index + 1) * length {
                    end if end <= now => (index * length, end),
                    _ => (first, now + 1),
                };
                (
                    Period {
                        domain: row.policy_domain.clone(),
                        begin,
                        end,
                        latest: row.clone(),
                        groups: Vec::new(),
                        last_id: max_id,
                    },
                    max_id,
                )
            });
            if period.end == now + 1 {
                period.begin = period.begin.min(first);
            }
            if max_id >= *latest_id {
                *latest_id = max_id;
                period.latest = row.clone();
                period.last_id = max_id;
            }
            period.groups.push(Group {
                row,
                count: count as u64,
            });
        }
        let mut periods: Vec<Period> = periods.into_values().map(|(p, _)| p).collect();
        for p in &mut periods {
            p.groups
                .sort_by(|a, b| b.count.cmp(&a.count).then(a.row.t.cmp(&b.row.t)));
        }
        Ok(Due {
            periods,
            cutoff,
            last_id,
            fleet_only: self.fleet_only,
        })
    }

    /// Stores the reports' mails and deletes the rows they were made from, in one
    /// transaction; then forgets the tuples no row refers to any more.
    pub fn commit(&mut self, due: &Due, mails: &[NewMail], now: i64) -> Result<(), String> {
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        for m in mails {
            insert_mail(&tx, m, now)?;
        }
        tx.execute(
            "DELETE FROM records WHERE t < ?1 AND id <= ?2 AND (?3 = 0 OR fleet = 1)",
            params![due.cutoff, due.last_id, due.fleet_only],
        )
        .map_err(|e| e.to_string())?;
        // Fleet rows' ids are kept a week: a row read twice is counted once.
        tx.execute("DELETE FROM stream_seen WHERE t < ?1", [now - 7 * DAY])
            .map_err(|e| e.to_string())?;
        tx.execute(
            "DELETE FROM tuples WHERE seen < ?1
             AND NOT EXISTS (SELECT 1 FROM records WHERE records.tuple = tuples.id)",
            [now / DAY - 1],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }
}

/// The tuple columns of a row, from column `o` on.
pub(super) fn read_tuple(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        t: 0,
        policy_domain: r.get(o)?,
        header_from: r.get(o + 1)?,
        source_ip: r.get(o + 2)?,
        envelope_from: r.get(o + 3)?,
        envelope_to: r.get(o + 4)?,
        disposition: static_word(&r.get::<_, String>(o + 5)?),
        dkim_aligned: r.get(o + 6)?,
        spf_aligned: r.get(o + 7)?,
        override_type: r.get::<_, Option<String>>(o + 8)?.map(|t| static_word(&t)),
        override_comment: r.get(o + 9)?,
        spf: r.get(o + 10)?,
        dkim: r.get(o + 11)?,
        policy: r.get(o + 12)?,
        discovery: static_word(&r.get::<_, String>(o + 13)?),
        rua: r.get(o + 14)?,
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
