//! Rate limits counted in Redis: one sliding window per (limit, key value), a
//! sorted set of the admitted messages' times, checked and added to atomically by
//! one script on the server (with the server's clock, so hosts' clocks do not
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

/// For each key i: KEYS[i] is a window, ARGV[3i-2..3i] its length (ms), its
/// count and a unique member. Returns, per key, 1 when admitted (and counted)
/// and 0 when its window is full. Each window counts on its own.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[3 * i - 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 * i - 1]) then
    out[i] = 0
  else
    redis.call('ZADD', key, now, ARGV[3 * i])
    redis.call('PEXPIRE', key, window)
    out[i] = 1
  end
end
return out
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SLIDING_WINDOW));

impl Fleet {
    /// Checks each window: `true` where the limit is exceeded. One script call
    /// for the whole message on one server; on a Redis Cluster one per window
    /// (their keys live on different slots), all at once on the multiplexed
    /// connection. `Err` when Redis did not answer within the time-out.
    pub async fn exceeded(&self, checks: &[LimitCheck]) -> Result<Vec<bool>, String> {
        if self.is_cluster() {
            let calls = checks.iter().map(|c| async move {
                self.run_script(std::slice::from_ref(c))
                    .await
                    .map(|v| v.first().copied().unwrap_or(false))
            });
            join_all(calls).await.into_iter().collect()
        } else {
            self.run_script(checks).await
        }
    }

    async fn run_script(&self, checks: &[LimitCheck]) -> Result<Vec<bool>, String> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(SCRIPT.get_hash()).arg(checks.len());
        for c in checks {
            cmd.arg(format!(
                "{}:rl:{{{}:{}}}",
                self.config.prefix, c.limit, c.key
            ));
        }
        for c in checks {
            cmd.arg(c.window.millis)
                .arg(c.window.count)
                .arg(self.member());
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
