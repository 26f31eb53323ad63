//! The fleet's DMARC report rows: each host appends its rows to one Redis stream
//! (after keeping them in its own store, which is the spool while Redis is
//! away); the host that runs `mailwarden reports send` holds the fleet's report
//! lock, reads the stream into its store and deletes what it stored. Each row
//! carries the id its host gave it, so a row read twice is counted once.

use super::Fleet;

/// One row on the stream: the id its host gave it, its time, its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRow {
    pub uid: String,
    pub t: i64,
    pub key: String,
}

const APPEND: &str = r"
for i = 1, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'uid', ARGV[i], 't', ARGV[i + 1], 'row', ARGV[i + 2])
end
return #ARGV / 3
";

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

impl Fleet {
    fn stream_key(&self) -> String {
        format!("{}:dmarc-rows", self.config.prefix)
    }

    /// Appends rows to the stream, all in one call.
    pub async fn stream_add(&self, rows: &[StreamRow]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(APPEND).arg(1).arg(self.stream_key());
        for r in rows {
            cmd.arg(&r.uid).arg(r.t).arg(&r.key);
        }
        self.query::<i64>(&cmd, None).await.map(|_| ())
    }

    /// The oldest `count` rows on the stream, with their stream ids.
    pub async fn stream_read(&self, count: usize) -> Result<Vec<(String, StreamRow)>, String> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.stream_key())
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let entries: Vec<(String, Vec<String>)> = self.query(&cmd, None).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(id, fields)| {
                let field = |name: &str| {
                    fields
                        .chunks(2)
                        .find(|p| p.len() == 2 && p[0] == name)
                        .map(|p| p[1].clone())
                };
                Some((
                    id,
                    StreamRow {
                        uid: field("uid")?,
                        t: field("t")?.parse().ok()?,
                        key: field("row")?,
                    },
                ))
            })
            .collect())
    }

    /// Deletes stream entries once they are stored.
    pub async fn stream_delete(&self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("XDEL");
        cmd.arg(self.stream_key()).arg(ids);
        self.query::<i64>(&cmd, None).await.map(|_| ())
    }

    /// Takes the fleet-wide lock `name` for `ttl_ms` (`false`: another host
    /// holds it).
    pub async fn lock(&self, name: &str, ttl_ms: u64) -> Result<bool, String> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}:lock:{name}", self.config.prefix))
            .arg(&self.origin)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms);
        self.query::<Option<String>>(&cmd, None)
            .await
            .map(|ok| ok.is_some())
    }

    /// Gives the lock back if this host still holds it.
    pub async fn unlock(&self, name: &str) -> Result<(), String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(UNLOCK)
            .arg(1)
            .arg(format!("{}:lock:{name}", self.config.prefix))
            .arg(&self.origin);
        self.query::<i64>(&cmd, None).await.map(|_| ())
    }
}
