//! Fleet mode for the anomaly detector: each host adds its per-key message
//! counts to the fleet's counters in Redis every second and reads back the
//! fleet's count for the current window (wall-clock aligned, so every host means
//! the same window) and for the one before, which stands for the fleet's
//! baseline. The detector then compares the fleet's volume, not this host's,
//! with its thresholds: a burst spread over many hosts is seen. And an alert
//! goes to the sinks once per fleet ([`FleetGate`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;

/// The fleet's counts per key, in this window and the one before, when Redis
/// answered.
pub type FleetTotals<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<(u64, u64)>, String>> + Send + 'a>>;

/// Adds counts to the fleet's counters (implemented by the fleet's Redis).
pub trait FleetCounter: Send + Sync {
    /// For window `index` (of `window_secs`), adds each key's count and returns,
    /// per key, the fleet's count in this window and in the previous one.
    fn add_counts<'a>(
        &'a self,
        index: u64,
        window_secs: u64,
        counts: &'a [(String, u64)],
    ) -> FleetTotals<'a>;
}

/// Fleet mode: whether this host is the first of the fleet to raise an alert
/// within its cool-down (so the fleet sends it once). `Err`: cannot tell.
pub trait FleetGate: Send + Sync {
    fn first_in_fleet<'a>(
        &'a self,
        kind: &'a str,
        key: &'a str,
        cooldown: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// Keys sent per second at most; the rest wait for the next second.
const PER_SYNC: usize = 2_000;

pub struct FleetCounts {
    counter: Arc<dyn FleetCounter>,
    window_secs: u64,
    /// This host's counts not yet added to the fleet's.
    pending: Mutex<HashMap<String, u64>>,
    /// Per key: the window index, the fleet's count in it, the count before it.
    totals: Mutex<HashMap<String, (u64, u64, u64)>>,
    max_keys: usize,
}

fn index(window_secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        / window_secs.max(1)
}

impl FleetCounts {
    /// Starts the counts and the task that sends them every second (it ends
    /// when the detector holding them is dropped).
    pub fn start(counter: Arc<dyn FleetCounter>, window: Duration, max_keys: usize) -> Arc<Self> {
        let counts = Arc::new(FleetCounts {
            counter,
            window_secs: window.as_secs().max(1),
            pending: Mutex::new(HashMap::new()),
            totals: Mutex::new(HashMap::new()),
            max_keys,
        });
        let weak: Weak<FleetCounts> = Arc::downgrade(&counts);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(counts) = weak.upgrade() else { return };
                counts.sync().await;
            }
        });
        counts
    }

    /// One more message under `key` on this host.
    pub fn note(&self, key: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pending.get_mut(key) {
            *n += 1;
        } else if pending.len() < self.max_keys {
            pending.insert(key.to_owned(), 1);
        }
    }

    /// The fleet's count for `key` in the current window (this host's unsent
    /// messages included) and in the previous window.
    pub fn view(&self, key: &str) -> (u64, u64) {
        let now = index(self.window_secs);
        let unsent = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0);
        let known = self
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied();
        match known {
            Some((i, count, before)) if i == now => (count + unsent, before),
            Some((i, count, _)) if i + 1 == now => (unsent, count),
            _ => (unsent, 0),
        }
    }

    async fn sync(&self) {
        let batch: Vec<(String, u64)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<String> = pending.keys().take(PER_SYNC).cloned().collect();
            keys.into_iter()
                .filter_map(|k| pending.remove(&k).map(|n| (k, n)))
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        let now = index(self.window_secs);
        match self.counter.add_counts(now, self.window_secs, &batch).await {
            Ok(fleet) => {
                let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
                if totals.len() > self.max_keys {
                    totals.clear();
                }
                for ((key, _), (count, before)) in batch.into_iter().zip(fleet) {
                    totals.insert(key, (now, count, before));
                }
            }
            Err(e) => {
                warn!(
                    "anomaly counts not added to the fleet's ({e}); this host counts alone meanwhile"
                );
                // Put them back: they are added when Redis answers again.
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (key, n) in batch {
                    *pending.entry(key).or_insert(0) += n;
                }
            }
        }
    }
}
