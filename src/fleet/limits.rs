//! Rate limits counted in Redis: one sliding window per (limit, key value), a
//! sorted set of the admissions' times, checked and added to atomically by one
//! script on the server (with the server's clock, so hosts' clocks do not
//! matter). The key carries a hash tag, so a Redis Cluster keeps it whole on one
//! slot. A limit stays exact across hosts: `count` per `per`, whatever admits.

use std::sync::LazyLock;

use futures_util::future::join_all;

use super::Fleet;

/// One window check: the key value and the limit's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    /// The limit's name.
    pub limit: String,
    /// The key value (client IP, sender, ...), lower case.
    pub key: String,
    pub window: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u32,
    pub millis: u64,
}

/// ARGV[1] is a member unique to this call; for each key i, KEYS[i] is a window
/// and ARGV[2i..2i+1] its length (ms) and count. Returns, per key, 1 when
/// admitted (and counted) and 0 when its window is full, exactly as if each were
/// checked and added on its own, in order.
///
/// A window holds one entry per call that admitted through it, `N:member`
/// (N admissions) scored with the server's time in ms, and the window's total,
/// the sum of its live entries' N, as the score of member `#`, negated so that
/// trimming (scores 1 to now - length) never takes it. A call reads the total,
/// subtracts what it trims, and writes one entry per key however many of its
/// messages that key admits: a busy key costs one sorted-set insert per call,
/// not one per message.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out, total, added, window, trimmed = {}, {}, {}, {}, {}
for i, key in ipairs(KEYS) do
  if total[key] == nil then
    window[key] = tonumber(ARGV[2 * i])
    local n = -(tonumber(redis.call('ZSCORE', key, '#')) or 0)
    local cutoff = now - window[key]
    local expired = redis.call('ZRANGEBYSCORE', key, 1, cutoff)
    if #expired > 0 then
      for _, m in ipairs(expired) do
        n = n - (tonumber(string.match(m, '^(%d+):')) or 1)
      end
      redis.call('ZREMRANGEBYSCORE', key, 1, cutoff)
      trimmed[key] = true
    end
    total[key] = math.max(n, 0)
    added[key] = 0
  end
  if total[key] >= tonumber(ARGV[2 * i + 1]) then
    out[i] = 0
  else
    total[key] = total[key] + 1
    added[key] = added[key] + 1
    out[i] = 1
  end
end
for key, n in pairs(added) do
  if n > 0 then
    redis.call('ZADD', key, now, n .. ':' .. ARGV[1], -total[key], '#')
    redis.call('PEXPIRE', key, window[key])
  elseif trimmed[key] then
    redis.call('ZADD', key, -total[key], '#')
  end
end
return out
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SLIDING_WINDOW));

impl Fleet {
    /// Checks each window: `true` where the limit is exceeded. On one server the
    /// message's windows join those of the messages decided at the same time in
    /// one script call (see [`super::batch`]); on a Redis Cluster one call per
    /// window (their keys live on different slots), all at once on the
    /// multiplexed connection. `Err` when Redis did not answer within the
    /// time-out.
    pub async fn exceeded(&self, checks: Vec<LimitCheck>) -> Result<Vec<bool>, String> {
        if self.is_cluster() {
            let calls = checks.iter().map(|c| async move {
                self.run_script(&[c])
                    .await
                    .map(|v| v.first().copied().unwrap_or(false))
            });
            return join_all(calls).await.into_iter().collect();
        }
        let timeout = self.config.timeout;
        let call = async |all: &[&LimitCheck]| self.run_script(all).await;
        match tokio::time::timeout(timeout, self.batcher.submit(checks, call)).await {
            Ok(answer) => answer,
            Err(_) => {
                // This wait can end the call under way before its own time-out
                // does: Redis's health must still say so.
                let e = format!("no answer within {timeout:?}");
                self.note_failure(&e);
                Err(e)
            }
        }
    }

    /// One script call for `checks`, in order.
    pub(super) async fn run_script(&self, checks: &[&LimitCheck]) -> Result<Vec<bool>, String> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(SCRIPT.get_hash()).arg(checks.len());
        for c in checks {
            cmd.arg(format!(
                "{}:rate:{{{}:{}}}",
                self.config.prefix, c.limit, c.key
            ));
        }
        cmd.arg(self.member());
        for c in checks {
            cmd.arg(c.window.millis).arg(c.window.count);
        }
        let admitted: Vec<i64> = self.query(&cmd, Some(SLIDING_WINDOW)).await?;
        if admitted.len() != checks.len() {
            return Err(format!(
                "the script answered {} of {} windows",
                admitted.len(),
                checks.len()
            ));
        }
        Ok(admitted.into_iter().map(|a| a == 0).collect())
    }
}
