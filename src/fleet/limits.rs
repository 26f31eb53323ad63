//! Rate limits counted in Redis: one sliding window per (limit, key value), a
//! sorted set of the admitted messages' times, checked and added to atomically by
//! one script on the server (with the server's clock, so hosts' clocks do not
//! matter). The key carries a hash tag, so a Redis Cluster keeps it whole on one
//! slot. A limit stays exact across hosts: `count` per `per`, whatever admits.

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

/// KEYS[1]: the window; ARGV: its length (ms), the count, a unique member.
/// Returns 1 when admitted (and counted), 0 when the window is full.
const SLIDING_WINDOW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
";

impl Fleet {
    /// Checks each window, all at once on the multiplexed connection (one round
    /// trip): `true` where the limit is exceeded. `Err` when Redis did not answer
    /// every check within the time-out.
    pub async fn exceeded(&self, checks: &[LimitCheck]) -> Result<Vec<bool>, String> {
        let calls = checks.iter().map(|c| {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(SLIDING_WINDOW)
                .arg(1)
                .arg(format!(
                    "{}:rl:{{{}:{}}}",
                    self.config.prefix, c.limit, c.key
                ))
                .arg(c.window.millis)
                .arg(c.window.count)
                .arg(self.member());
            async move { self.query::<i64>(&cmd).await.map(|admitted| admitted == 0) }
        });
        join_all(calls).await.into_iter().collect()
    }
}
