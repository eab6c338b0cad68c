//! Controller expectations (client-go's `ControllerExpectations` and
//! `UIDTrackingControllerExpectations`): after a controller asks for N creations or deletions
//! it waits until its informer has observed them, so a sync running on a cache that does not
//! yet show its own writes does not create or delete again. Expectations expire (5 minutes
//! upstream) so a lost watch event cannot wedge a controller forever.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug)]
struct Expectation {
    add: i64,
    del: i64,
    /// UIDs (or keys) of the objects whose deletion we wait for.
    deleting: HashSet<String>,
    at: Instant,
}

pub struct Expectations {
    ttl: Duration,
    map: Mutex<HashMap<String, Expectation>>,
}

impl Expectations {
    pub fn new(ttl: Duration) -> Self {
        Expectations {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// True when the controller `key` may act: nothing pending, all observed, or expired.
    pub fn satisfied(&self, key: &str) -> bool {
        let map = self.map.lock();
        match map.get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.at.elapsed() > self.ttl,
        }
    }

    pub fn expect_creations(&self, key: &str, n: usize) {
        self.set(key, n as i64, HashSet::new());
    }

    /// Expects the deletion of these objects (identified by `namespace/name` or UID).
    pub fn expect_deletions(&self, key: &str, ids: impl IntoIterator<Item = String>) {
        let ids: HashSet<String> = ids.into_iter().collect();
        self.set(key, 0, ids);
    }

    fn set(&self, key: &str, add: i64, deleting: HashSet<String>) {
        self.map.lock().insert(
            key.to_string(),
            Expectation {
                add,
                del: deleting.len() as i64,
                deleting,
                at: Instant::now(),
            },
        );
    }

    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// One fewer creation/deletion will be observed (the request failed or was skipped).
    pub fn lower(&self, key: &str, add: i64, del: i64) {
        if let Some(e) = self.map.lock().get_mut(key) {
            e.add -= add;
            e.del -= del;
        }
    }

    /// The object `id` is gone or going: counts once however often it is reported.
    pub fn deletion_observed(&self, key: &str, id: &str) {
        if let Some(e) = self.map.lock().get_mut(key) {
            if e.deleting.remove(id) {
                e.del -= 1;
            }
        }
    }

    pub fn delete(&self, key: &str) {
        self.map.lock().remove(key);
    }

    /// Pending (creations, deletions) for `key`.
    pub fn pending(&self, key: &str) -> (i64, i64) {
        self.map
            .lock()
            .get(key)
            .map(|e| (e.add, e.del))
            .unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_block_until_observed() {
        let e = Expectations::new(Duration::from_secs(300));
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.lower("ns/rs", 1, 0);
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn deletions_count_each_object_once() {
        let e = Expectations::new(Duration::from_secs(300));
        e.expect_deletions("k", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("k", "ns/a");
        e.deletion_observed("k", "ns/a");
        assert_eq!(e.pending("k"), (0, 1));
        assert!(!e.satisfied("k"));
        e.deletion_observed("k", "ns/unrelated");
        e.deletion_observed("k", "ns/b");
        assert!(e.satisfied("k"));
    }

    #[test]
    fn expectations_expire() {
        let e = Expectations::new(Duration::from_millis(1));
        e.expect_creations("k", 5);
        std::thread::sleep(Duration::from_millis(5));
        assert!(e.satisfied("k"));
        e.delete("k");
        assert_eq!(e.pending("k"), (0, 0));
    }
}
