//! A hash map split into shards, so it never grows all at once. The transaction tables hold hundreds of
//! thousands of entries at a few thousand calls a second (Timers J and L keep finished transactions for 32 s),
//! and a single `HashMap` doubling at that size rehashes and copies everything in one go: the SIP driver then
//! stalls for tens of milliseconds, which callers see as slow answers. With the entries spread over
//! [`SHARDS`] maps each doubling moves a sixty-fourth of them; the total work is the same. Values are boxed,
//! so the buckets stay small (a key and a pointer): a growing shard allocates and copies little, and the
//! entries' memory comes from the allocator a bit at a time, reusing what finished transactions gave back,
//! instead of as one large fresh block whose pages all fault in at once (a 1.5 s stall at 5,000 calls/s,
//! when every shard reached the same size together).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::ops::Index;

/// Shards per map: a power of two.
const SHARDS: usize = 64;

pub struct ShardedMap<K, V> {
    shards: Vec<HashMap<K, Box<V>>>,
    /// Picks the shard (keyed at random, like `HashMap`'s own hashing, so a peer cannot aim at one shard).
    pick: RandomState,
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    pub fn new() -> ShardedMap<K, V> {
        ShardedMap { shards: (0..SHARDS).map(|_| HashMap::new()).collect(), pick: RandomState::new() }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The top bits: the shard's own map uses its own hash, so the choice does not bias its buckets.
        (self.pick.hash_one(key) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key).map(|v| &**v)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.shard(key);
        self.shards[i].get_mut(key).map(|v| &mut **v)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.shard(&key);
        self.shards[i].insert(key, Box::new(value)).map(|v| *v)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.shard(key);
        self.shards[i].remove(key).map(|v| *v)
    }

    /// The largest shard's size, for tests that check the spread.
    #[cfg(test)]
    fn largest_shard(&self) -> usize {
        self.shards.iter().map(HashMap::len).max().unwrap_or(0)
    }
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap::new()
    }
}

impl<K, Q, V> Index<&Q> for ShardedMap<K, V>
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    /// Panics when the key is absent, like `HashMap`'s.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in the sharded map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map_and_spreads_its_entries() {
        let mut m: ShardedMap<String, u32> = ShardedMap::new();
        for i in 0..10_000u32 {
            assert_eq!(m.insert(format!("z9hG4bK-{i}"), i), None);
        }
        assert_eq!(m.insert("z9hG4bK-7".into(), 70), Some(7), "a second insert replaces and keeps the count");
        assert_eq!(m.len(), 10_000);
        assert_eq!(m["z9hG4bK-7"], 70);
        assert_eq!(m.get("z9hG4bK-9999"), Some(&9999));
        *m.get_mut("z9hG4bK-1").unwrap() += 1;
        assert_eq!(m["z9hG4bK-1"], 2);
        assert!(m.contains_key("z9hG4bK-2") && !m.contains_key("z9hG4bK-10000"));
        assert_eq!(m.remove("z9hG4bK-2"), Some(2));
        assert_eq!((m.remove("z9hG4bK-2"), m.len()), (None, 9_999), "removing twice counts once");
        // 10,000 over 64 shards is 156 each on average; no shard holds a large share.
        assert!(m.largest_shard() < 300, "largest shard {}", m.largest_shard());
    }
}
