//! A map with a size cap and O(1) work per access, for tables keyed by what senders
//! choose (sender domains, client addresses, accounts): the anomaly detector's
//! windows and the rate limiter's buckets. Two generations: new and touched
//! entries go to the young one; when it is full it becomes the old one and the
//! previous old one is dropped whole. So at most `cap` entries live, an entry
//! touched at least once per `cap / 2` insertions survives, and nothing ever scans
//! the table. A flood of distinct keys costs each key one insertion, not a scan.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub struct BoundedMap<K, V> {
    young: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// A map holding at most `cap` entries (at least 2).
    pub fn new(cap: usize) -> Self {
        BoundedMap {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (cap / 2).max(1),
        }
    }

    /// The entry for `key`, made by `make` (and `key` copied by `own`) when it is
    /// in neither generation.
    pub fn get_or_insert<Q>(
        &mut self,
        key: &Q,
        own: impl FnOnce(&Q) -> K,
        make: impl FnOnce() -> V,
    ) -> &mut V
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.young.contains_key(key) {
            let value = self.old.remove(key).unwrap_or_else(make);
            if self.young.len() >= self.half {
                self.old = std::mem::take(&mut self.young);
            }
            self.young.insert(own(key), value);
        }
        self.young
            .get_mut(key)
            .unwrap_or_else(|| unreachable!("the key was just put in the young generation"))
    }

    #[cfg(test)]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    #[cfg(test)]
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.contains_key(key) || self.old.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_and_a_busy_key_survives_a_flood() {
        let mut map: BoundedMap<String, u32> = BoundedMap::new(1000);
        for i in 0..100_000 {
            *map.get_or_insert("busy", str::to_owned, || 0) += 1;
            let key = format!("flood-{i}");
            *map.get_or_insert(key.as_str(), str::to_owned, || 0) += 1;
            assert!(map.len() <= 1000);
        }
        assert_eq!(*map.get_or_insert("busy", str::to_owned, || 0), 100_000);
        assert!(!map.contains("flood-0"));
        assert!(map.contains("flood-99999"));
    }
}
