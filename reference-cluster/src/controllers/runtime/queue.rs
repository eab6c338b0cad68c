//! A work queue with client-go's guarantees: an item is queued at most once however often it
//! is added, it is never handed to two workers at once (an add while it is being processed
//! queues it again once `done` is called), and failures requeue with per-item exponential
//! back-off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-item exponential back-off: `base * 2^failures`, capped (client-go's
/// `ItemExponentialFailureRateLimiter`, 5ms to 1000s by default).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1000),
        }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2f64.powi(failures.min(60) as i32);
        let d = self.base.as_secs_f64() * factor;
        if d >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(d)
        }
    }
}

struct State<T> {
    queue: VecDeque<T>,
    /// Items waiting in `queue` or re-added while processing.
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    /// The earliest pending delayed add of each item.
    waiting: HashMap<T, Instant>,
    shut_down: bool,
}

pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    backoff: Backoff,
}

impl<T> WorkQueue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    pub fn new(backoff: Backoff) -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                waiting: HashMap::new(),
                shut_down: false,
            }),
            notify: Notify::new(),
            backoff,
        })
    }

    pub fn add(&self, item: T) {
        let mut s = self.state.lock();
        if s.shut_down || s.dirty.contains(&item) {
            return;
        }
        s.dirty.insert(item.clone());
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        drop(s);
        self.notify.notify_one();
    }

    /// Adds `item` once `delay` has passed; an earlier pending add of the same item wins.
    pub fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        if delay.is_zero() {
            self.add(item);
            return;
        }
        let at = Instant::now() + delay;
        {
            let mut s = self.state.lock();
            if s.shut_down {
                return;
            }
            if s.waiting.get(&item).is_some_and(|t| *t <= at) {
                return;
            }
            s.waiting.insert(item.clone(), at);
        }
        let q = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some(q) = q.upgrade() else { return };
            let due = {
                let mut s = q.state.lock();
                // A later, earlier-scheduled timer may have replaced ours; only the one that
                // matches the recorded time fires.
                if s.waiting.get(&item) == Some(&at) {
                    s.waiting.remove(&item);
                    true
                } else {
                    false
                }
            };
            if due {
                q.add(item);
            }
        });
    }

    /// Requeues after the item's back-off and counts one more failure.
    pub fn add_rate_limited(self: &Arc<Self>, item: T) {
        let failures = {
            let mut s = self.state.lock();
            let f = s.failures.entry(item.clone()).or_insert(0);
            let now = *f;
            *f += 1;
            now
        };
        self.add_after(item, self.backoff.delay(failures));
    }

    /// Clears the failure count of an item (it synced successfully).
    pub fn forget(&self, item: &T) {
        self.state.lock().failures.remove(item);
    }

    pub fn failures(&self, item: &T) -> u32 {
        self.state.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// The next item to process; `None` once the queue is shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock();
                if let Some(item) = s.queue.pop_front() {
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    return Some(item);
                }
                if s.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks an item processed; if it was added meanwhile it is queued again.
    pub fn done(&self, item: &T) {
        let mut s = self.state.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) && !s.shut_down {
            s.queue.push_back(item.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shut_down(&self) {
        self.state.lock().shut_down = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_item_is_queued_once_and_requeued_after_done() {
        let q = WorkQueue::new(Backoff::default());
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        let a = q.get().await.unwrap();
        assert_eq!(a, "a");
        // Added while processing: not handed out again until done.
        q.add("a".to_string());
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&a);
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test]
    async fn delayed_adds_fire_once_at_the_earliest_time() {
        let q = WorkQueue::new(Backoff::default());
        q.add_after("x".to_string(), Duration::from_millis(300));
        q.add_after("x".to_string(), Duration::from_millis(20));
        q.add_after("x".to_string(), Duration::from_millis(200));
        let started = std::time::Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(2), q.get())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("x"));
        assert!(started.elapsed() < Duration::from_millis(250));
        q.done(&"x".to_string());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(q.is_empty(), "later timers were superseded");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0), Duration::from_millis(5));
        assert_eq!(b.delay(3), Duration::from_millis(40));
        assert_eq!(b.delay(20), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn rate_limited_adds_count_failures_until_forgotten() {
        let q = WorkQueue::new(Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(10),
        });
        q.add_rate_limited(1u32);
        q.add_rate_limited(1u32);
        assert_eq!(q.failures(&1), 2);
        q.forget(&1);
        assert_eq!(q.failures(&1), 0);
        let got = tokio::time::timeout(Duration::from_secs(1), q.get())
            .await
            .unwrap();
        assert_eq!(got, Some(1));
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q: Arc<WorkQueue<u8>> = WorkQueue::new(Backoff::default());
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.get().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shut_down();
        assert_eq!(waiter.await.unwrap(), None);
    }
}
