//! A least-recently-used map bounded in entries and in bytes, for what the server keeps of
//! clients' queries (persisted queries, parsed documents): a client cannot make it grow.

use std::{
    hash::Hash,
    num::NonZeroUsize,
    sync::{Mutex, MutexGuard, PoisonError},
};

use lru::LruCache;

pub(crate) struct BoundedLru<K: Hash + Eq, V> {
    store: Mutex<Store<K, V>>,
    max_bytes: usize,
}

struct Store<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    /// The sizes of every entry, summed.
    bytes: usize,
}

impl<K: Hash + Eq, V: Clone> BoundedLru<K, V> {
    pub(crate) fn new(max_entries: NonZeroUsize, max_bytes: usize) -> Self {
        Self { store: Mutex::new(Store { entries: LruCache::new(max_entries), bytes: 0 }), max_bytes }
    }

    /// The value of `key`, made the most recently used.
    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.lock().entries.get(key).map(|(value, _)| value.clone())
    }

    /// Keeps `value` under `key`, counted as `bytes`, the least recently used making room;
    /// one larger than the whole store is not kept.
    pub(crate) fn insert(&self, key: K, value: V, bytes: usize) {
        if bytes > self.max_bytes {
            return;
        }
        let mut store = self.lock();
        if store.entries.contains(&key) {
            store.entries.promote(&key);
            return;
        }
        while store.bytes + bytes > self.max_bytes
            && let Some((_, (_, evicted))) = store.entries.pop_lru()
        {
            store.bytes -= evicted;
        }
        store.bytes += bytes;
        if let Some((_, (_, evicted))) = store.entries.push(key, (value, bytes)) {
            store.bytes -= evicted;
        }
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The store is consistent after every statement that holds the lock, so a panic
    /// elsewhere while it was held leaves nothing to repair.
    fn lock(&self) -> MutexGuard<'_, Store<K, V>> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
