//! A bounded LRU cache that counts its hits, for query embeddings and trained-reranker logits
//! (the runtime's, shared across generations and cleared on a swap, see [`crate::runtime`])
//! and whole responses (in the API).

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

/// Hit and miss counts since the cache was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to compute.
    pub misses: u64,
}

/// An LRU cache of at most `capacity` entries, and of at most a byte budget where one is set
/// ([`Cache::with_byte_budget`]); capacity 0 disables it (every lookup misses and nothing is
/// stored, so the counts still tell the truth).
pub struct Cache<K: Hash + Eq, V: Clone> {
    /// The entries and the most there may be. Unbounded to the `lru` crate and bounded here:
    /// its bounded cache sets its table's room for every entry when made, which allocated
    /// 130 MB for an empty cache of 100 million, and aborted the process for larger ones.
    entries: Option<(Mutex<Entries<K, V>>, NonZeroUsize)>,
    /// The most bytes the values put with [`Cache::put_weighed`] may hold together.
    budget: Option<usize>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The entries, each with the bytes it was put with, and their sum.
struct Entries<K: Hash + Eq, V> {
    lru: LruCache<K, (V, usize)>,
    bytes: usize,
}

/// A value above this share of a cache's byte budget is not stored: one answer must not push
/// out most others (a `k` of 100 with `explain` is megabytes).
const MAX_SHARE_OF_BUDGET: usize = 16;

impl<K: Hash + Eq, V: Clone> Cache<K, V> {
    /// A cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Cache {
            entries: NonZeroUsize::new(capacity)
                .map(|c| (Mutex::new(Entries { lru: LruCache::unbounded(), bytes: 0 }), c)),
            budget: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache holding at most `capacity` entries whose values, weighed as they are put
    /// ([`Cache::put_weighed`]), hold at most `bytes` together; a value above a sixteenth of
    /// `bytes` is not stored. `bytes` 0 disables the cache as `capacity` 0 does. A count of
    /// entries alone bounds nothing when the values' sizes are the client's to choose: 1,000
    /// answers of 2 MB held 2 GB.
    pub fn with_byte_budget(capacity: usize, bytes: usize) -> Self {
        Cache { budget: Some(bytes), ..Cache::new(if bytes == 0 { 0 } else { capacity }) }
    }

    /// The bytes the stored values were put with ([`Cache::put_weighed`]).
    pub fn bytes(&self) -> usize {
        self.entries.as_ref().map_or(0, |(e, _)| lock(e).bytes)
    }

    /// The cached value for `key`, counting a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.lookup(key);
        if found.is_none() {
            self.count_miss();
        }
        found
    }

    /// The cached value for `key`, counting a hit when there is one; a miss is the caller's to
    /// count ([`Cache::count_miss`]) once it knows the lookup was for a value it could make (a
    /// response cache should not count requests refused as invalid, which are never stored).
    pub fn lookup(&self, key: &K) -> Option<V> {
        let found = self.entries.as_ref().and_then(|(e, _)| lock(e).lru.get(key).map(|(v, _)| v.clone()));
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Counts a miss of a [`Cache::lookup`].
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The cached value for `key`, neither counted nor made recent: a look at what the cache
    /// knows, for a question other than the lookups the counts are about.
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.as_ref().and_then(|(e, _)| lock(e).lru.peek(key).map(|(v, _)| v.clone()))
    }

    /// Stores `value` under `key`, evicting the least recently used entry when full.
    pub fn put(&self, key: K, value: V) {
        self.put_weighed(key, value, 0);
    }

    /// Stores `value`, which holds `bytes`, under `key`, evicting the least recently used
    /// entries until both the count and the byte budget have room; a value above a sixteenth
    /// of the budget is not stored (and one already under `key` is dropped, as stale).
    pub fn put_weighed(&self, key: K, value: V, bytes: usize) {
        let Some((entries, capacity)) = &self.entries else { return };
        let mut entries = lock(entries);
        if let Some((_, old)) = entries.lru.pop(&key) {
            entries.bytes -= old;
        }
        let budget = self.budget.unwrap_or(usize::MAX);
        if self.budget.is_some() && bytes > budget / MAX_SHARE_OF_BUDGET {
            return;
        }
        while entries.lru.len() >= capacity.get() || entries.bytes + bytes > budget {
            let Some((_, (_, old))) = entries.lru.pop_lru() else { break };
            entries.bytes -= old;
        }
        entries.bytes += bytes;
        entries.lru.put(key, (value, bytes));
    }

    /// The cached value, or `compute`'s result stored and returned. Errors are not cached.
    pub fn get_or_try<E>(&self, key: K, compute: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let value = compute()?;
        self.put(key, value.clone());
        Ok(value)
    }

    /// Drops every entry (the counts stay).
    pub fn clear(&self) {
        if let Some((entries, _)) = &self.entries {
            let mut entries = lock(entries);
            entries.lru.clear();
            entries.bytes = 0;
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |(e, _)| lock(e).lru.len())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats { hits: self.hits.load(Ordering::Relaxed), misses: self.misses.load(Ordering::Relaxed) }
    }
}

/// A poisoned cache lock only means another request panicked mid-update of an LRU list, which
/// leaves it consistent; keep serving.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_budget_evicts_by_size_and_refuses_a_value_past_its_share() {
        let cache = Cache::with_byte_budget(100, 1600);
        for key in 0..10 {
            cache.put_weighed(key, key, 100);
        }
        assert_eq!((cache.len(), cache.bytes()), (10, 1000));
        // 700 more bytes do not fit beside 1000 of 1600: the two least recent go (0, then 1 is
        // recent after a get, so 2).
        assert_eq!(cache.get(&1), Some(1));
        for key in 10..17 {
            cache.put_weighed(key, key, 100);
        }
        assert_eq!((cache.len(), cache.bytes()), (16, 1600));
        assert_eq!((cache.peek(&0), cache.peek(&1), cache.peek(&2)), (None, Some(1), Some(2)));
        cache.put_weighed(99, 99, 100);
        assert_eq!((cache.peek(&2), cache.bytes()), (None, 1600));
        // A value above a sixteenth of the budget is not kept, nor the one it replaces.
        cache.put_weighed(1, 1, 101);
        assert_eq!((cache.peek(&1), cache.bytes(), cache.len()), (None, 1500, 15));
        // Putting a key again replaces its bytes; clear forgets them.
        cache.put_weighed(99, 99, 50);
        assert_eq!(cache.bytes(), 1450);
        cache.clear();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        // A budget of 0 turns the cache off.
        let off = Cache::with_byte_budget(10, 0);
        off.put_weighed("a", 1, 0);
        assert!(off.is_empty());
    }

    #[test]
    fn evicts_the_least_recently_used_and_counts() {
        let cache = Cache::new(2);
        cache.put("a", 1);
        cache.put("b", 2);
        assert_eq!(cache.get(&"a"), Some(1)); // a is now the most recent
        cache.put("c", 3); // evicts b
        assert_eq!(cache.get(&"b"), None);
        assert_eq!(cache.get(&"c"), Some(3));
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 1 });
        cache.clear();
        assert!(cache.is_empty());
        // Replacing a key holds its place; the bound holds whatever the order of puts.
        cache.put("a", 1);
        cache.put("b", 2);
        cache.put("b", 20);
        assert_eq!((cache.len(), cache.peek("a"), cache.peek("b")), (2, Some(1), Some(20)));
    }

    #[test]
    fn a_huge_capacity_costs_nothing_until_used() {
        // The lru crate's bounded cache sized its table for every entry when made: this
        // aborted the process ("memory allocation of 2336462209040 bytes failed").
        let cache: Cache<u64, [f32; 384]> = Cache::new(usize::MAX);
        cache.put(1, [0.5; 384]);
        assert_eq!((cache.len(), cache.get(&1).map(|v| v[0])), (1, Some(0.5)));
    }

    #[test]
    fn a_peek_neither_counts_nor_refreshes() {
        let cache: Cache<String, i32> = Cache::new(2);
        cache.put("a".into(), 1);
        cache.put("b".into(), 2);
        assert_eq!((cache.peek("a"), cache.peek("z")), (Some(1), None));
        cache.put("c".into(), 3); // a stayed the least recent: evicted
        assert_eq!(cache.peek("a"), None);
        assert_eq!(cache.stats(), CacheStats::default());
    }

    #[test]
    fn capacity_zero_stores_nothing_and_counts_misses() {
        let cache = Cache::new(0);
        let mut calls = 0;
        for _ in 0..3 {
            let v: Result<i32, ()> = cache.get_or_try("q", || {
                calls += 1;
                Ok(7)
            });
            assert_eq!(v, Ok(7));
        }
        assert_eq!(calls, 3);
        assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 3 });
    }

    #[test]
    fn errors_are_not_cached() {
        let cache = Cache::new(4);
        assert_eq!(cache.get_or_try("q", || Err::<i32, &str>("boom")), Err("boom"));
        assert_eq!(cache.get_or_try("q", || Ok::<i32, &str>(1)), Ok(1));
        assert_eq!(cache.get(&"q"), Some(1));
    }
}
