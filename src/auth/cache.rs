//! One cache type for every DNS record kind `mail-auth` asks for (TXT, MX, A, AAAA,
//! PTR) and for our own DMARC lookups. Entries expire when their DNS TTL says so;
//! the number of entries is bounded, so a flood of unique names cannot grow memory
//! without limit.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::ResolverCache;

pub(crate) struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic while holding the lock leaves a consistent map (every operation is
        // a single insert or remove), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut entries = self.lock();
        match entries.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let now = Instant::now();
        if valid_until <= now {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop an eighth of them (whichever the
                // map yields first) rather than one per insert, so a full cache does
                // not pay a scan on every miss.
                let drop = (self.capacity / 8).max(1);
                let mut removed = 0;
                entries.retain(|_, _| {
                    removed += 1;
                    removed > drop
                });
            }
        }
        entries.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_expire_with_their_ttl() {
        let cache: TtlCache<Box<str>, u32> = TtlCache::new(10);
        cache.insert("live.".into(), 1, Instant::now() + Duration::from_secs(60));
        cache.insert("dead.".into(), 2, Instant::now() + Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get("live."), Some(1));
        assert_eq!(cache.get("dead."), None);
        // Already expired on arrival: not stored at all.
        cache.insert("past.".into(), 3, Instant::now());
        assert_eq!(cache.get("past."), None);
    }

    #[test]
    fn size_is_bounded() {
        let cache: TtlCache<u32, u32> = TtlCache::new(64);
        let until = Instant::now() + Duration::from_secs(60);
        for i in 0..10_000 {
            cache.insert(i, i, until);
            assert!(cache.len() <= 64);
        }
        assert_eq!(cache.get(&9_999), Some(9_999), "the newest entry is kept");
    }
}
