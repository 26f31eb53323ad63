//! Named token buckets for the `rate_limit` condition: in memory, one bucket per
//! (limit, key value), the table bounded so a flood of distinct keys cannot grow it
//! without end.

use std::sync::Mutex;
use std::time::Instant;

use crate::bounded::BoundedMap;
use crate::config::RateLimit;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets for every configured limit, at most `max_keys` of them (see `bounded`:
/// a bucket untouched while half that many others were made is dropped; a dropped
/// bucket was full or nearly, or its sender has gone quiet).
pub struct Limiter {
    buckets: Mutex<BoundedMap<(usize, String), Bucket>>,
}

impl Limiter {
    pub fn new(max_keys: usize) -> Limiter {
        Limiter {
            buckets: Mutex::new(BoundedMap::new(max_keys)),
        }
    }

    /// Takes one message from the bucket of (`index`, `key`): `true` when the
    /// bucket was empty (the limit is exceeded). Constant work whatever the number
    /// of buckets.
    pub fn exceeded(&self, index: usize, limit: &RateLimit, key: &str, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let per_token = limit.per.as_secs_f64() / f64::from(limit.count.max(1));
        let burst = f64::from(limit.burst.max(1));
        let id = (index, key.to_ascii_lowercase());
        let bucket = buckets.get_or_insert(&id, Clone::clone, || Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() / per_token;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            false
        } else {
            true
        }
    }

    #[cfg(test)]
    fn buckets(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::LimitKey;

    fn limit(count: u32, per_secs: u64, burst: u32) -> RateLimit {
        RateLimit {
            name: "l".into(),
            key: LimitKey::Sender,
            count,
            per: Duration::from_secs(per_secs),
            burst,
        }
    }

    #[test]
    fn a_bucket_passes_its_burst_then_refills_at_the_rate() {
        let l = Limiter::new(100_000);
        let lim = limit(3, 60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(!l.exceeded(0, &lim, "a@x", t0));
        }
        assert!(l.exceeded(0, &lim, "A@X", t0), "keys ignore case");
        assert!(
            !l.exceeded(0, &lim, "b@x", t0),
            "other keys have their own bucket"
        );
        // One message per 20 s comes back; a refused attempt does not use any.
        assert!(l.exceeded(0, &lim, "a@x", t0 + Duration::from_secs(19)));
        let t40 = t0 + Duration::from_secs(40);
        assert!(!l.exceeded(0, &lim, "a@x", t40));
        assert!(!l.exceeded(0, &lim, "a@x", t40));
        assert!(l.exceeded(0, &lim, "a@x", t40));
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = Limiter::new(100);
        let lim = limit(1, 3600, 1);
        let t0 = Instant::now();
        for i in 0..1000 {
            l.exceeded(0, &lim, &format!("k{i}"), t0 + Duration::from_millis(i));
        }
        assert!(l.buckets() <= 100, "{}", l.buckets());
    }
}
