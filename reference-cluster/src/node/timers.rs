//! One timer queue for a whole fleet: every pod's next state change and every node's next lease
//! renewal and status check live in a single heap, so thousands of agents cost one task and one
//! sleep. Each key has at most one pending deadline; scheduling it again moves it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    by_seq: HashMap<u64, K>,
    by_key: HashMap<K, (Instant, u64)>,
    seq: u64,
}

impl<K: Hash + Eq + Clone> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            by_seq: HashMap::new(),
            by_key: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: Hash + Eq + Clone> Timers<K> {
    /// Sets `key`'s deadline to `at`, replacing any earlier setting.
    pub fn set(&mut self, key: K, at: Instant) {
        if let Some((old_at, _)) = self.by_key.get(&key) {
            if *old_at == at {
                return;
            }
        }
        self.cancel(&key);
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.by_seq.insert(self.seq, key.clone());
        self.by_key.insert(key, (at, self.seq));
    }

    /// Sets `key`'s deadline to `at` unless it is already due earlier.
    pub fn set_earliest(&mut self, key: K, at: Instant) {
        match self.by_key.get(&key) {
            Some((old, _)) if *old <= at => {}
            _ => self.set(key, at),
        }
    }

    pub fn cancel(&mut self, key: &K) {
        if let Some((_, seq)) = self.by_key.remove(key) {
            self.by_seq.remove(&seq);
        }
    }

    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.by_key.get(key).map(|(at, _)| *at)
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if self.by_seq.contains_key(&seq) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns one key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        while let Some(Reverse((at, seq))) = self.heap.peek().copied() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if let Some(key) = self.by_seq.remove(&seq) {
                self.by_key.remove(&key);
                return Some(key);
            }
        }
        None
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_fire_in_deadline_order_once() {
        let t0 = Instant::now();
        let mut t: Timers<&str> = Timers::default();
        t.set("b", t0 + Duration::from_secs(2));
        t.set("a", t0 + Duration::from_secs(1));
        t.set("c", t0 + Duration::from_secs(3));
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(t.pop_due(now), Some("a"));
        assert_eq!(t.pop_due(now), Some("b"));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn rescheduling_moves_and_cancelling_removes() {
        let t0 = Instant::now();
        let mut t: Timers<u32> = Timers::default();
        t.set(1, t0 + Duration::from_secs(5));
        t.set(1, t0 + Duration::from_secs(1));
        t.set(2, t0 + Duration::from_secs(1));
        t.cancel(&2);
        assert_eq!(t.pop_due(t0 + Duration::from_secs(1)), Some(1));
        assert_eq!(
            t.pop_due(t0 + Duration::from_secs(10)),
            None,
            "the moved and cancelled entries are gone"
        );
        t.set_earliest(3, t0 + Duration::from_secs(2));
        t.set_earliest(3, t0 + Duration::from_secs(9));
        assert_eq!(t.deadline(&3), Some(t0 + Duration::from_secs(2)));
        assert!(!t.is_empty());
    }
}
