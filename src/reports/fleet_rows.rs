//! Fleet mode for the report rows: every host keeps its rows in its own store
//! first (the spool while Redis is away) and its writer moves them to the fleet's
//! stream; `reports send`, holding the fleet's report lock, reads the stream into
//! its store before building, so one host reports for the fleet, once.

use rusqlite::params;

use super::records::{TUPLE_COLUMNS, read_tuple};
use super::row::Row;
use super::store::Store;
use crate::fleet::{Fleet, StreamRow};

/// Rows moved or read per call.
const BATCH: usize = 1_000;

impl Store {
    /// This host's rows not yet on the stream, oldest first, with their ids.
    fn local_rows(&self, limit: usize) -> Result<Vec<(i64, Row)>, String> {
        let mut stmt = self
            .db
            .prepare_cached(&format!(
                "SELECT r.id, r.t, {} FROM records r JOIN tuples k ON k.id = r.tuple
                 WHERE r.fleet = 0 ORDER BY r.id LIMIT ?1",
                TUPLE_COLUMNS
                    .split(',')
                    .map(|c| format!("k.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .map_err(|e| e.to_string())?;
        stmt.query_map([limit as i64], |r| {
            let id: i64 = r.get(0)?;
            let t: i64 = r.get(1)?;
            let row = read_tuple(r, 2)?;
            Ok((id, Row { t, ..row }))
        })
        .and_then(Iterator::collect)
        .map_err(|e| e.to_string())
    }

    fn forget(&mut self, ids: &[i64]) -> Result<(), String> {
        let tx = self.db.transaction().map_err(|e| e.to_string())?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM records WHERE id = ?1")
                .map_err(|e| e.to_string())?;
            for id in ids {
                del.execute(params![id]).map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

/// Moves up to a batch of this host's rows to the stream; returns how many.
/// A crash between the append and the delete sends them again, and the reader
/// counts them once (their ids).
pub(crate) async fn forward(store: &mut Store, fleet: &Fleet) -> Result<usize, String> {
    let rows = store.local_rows(BATCH)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let entries: Vec<StreamRow> = rows
        .iter()
        .map(|(id, row)| StreamRow {
            uid: format!("{}:{id}", store.origin),
            t: row.t,
            key: row.key(),
        })
        .collect();
    fleet.stream_add(&entries).await?;
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    store.forget(&ids)?;
    Ok(ids.len())
}

/// Moves all of this host's rows to the stream; returns how many.
pub(crate) async fn forward_all(store: &mut Store, fleet: &Fleet) -> Result<usize, String> {
    let mut moved = 0;
    loop {
        match forward(store, fleet).await? {
            0 => return Ok(moved),
            n => moved += n,
        }
    }
}

/// Reads the whole stream into `store`; returns how many rows were new.
pub(crate) async fn pull(store: &mut Store, fleet: &Fleet) -> Result<usize, String> {
    let mut stored = 0;
    loop {
        let batch = fleet.stream_read(BATCH).await?;
        if batch.is_empty() {
            return Ok(stored);
        }
        let mut rows = Vec::with_capacity(batch.len());
        let mut uids = Vec::with_capacity(batch.len());
        for (_, entry) in &batch {
            match Row::from_key(entry.t, &entry.key) {
                Some(row) => {
                    rows.push(row);
                    uids.push(entry.uid.clone());
                }
                None => {
                    tracing::warn!(uid = %entry.uid, "a fleet report row that does not parse, skipped")
                }
            }
        }
        stored += rows.len();
        store.insert_from(&rows, Some(&uids))?;
        let ids: Vec<String> = batch.into_iter().map(|(id, _)| id).collect();
        fleet.stream_delete(&ids).await?;
    }
}
