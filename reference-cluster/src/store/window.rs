//! The window of recent events that watches replay from, and the fan-out of live events.
//!
//! Both in-process backends publish every committed event here, in revision order. A watch
//! registers its subscription and copies its replay under the same lock that publishing takes,
//! so the cut between "replayed" and "live" is exact: nothing committed in between can fall
//! into neither part or into both. The stream still drops any event at or below the last
//! revision it yielded, which also makes a watch `from` a future revision wait quietly.
//!
//! Each watcher has its own bounded channel and publishing only ever `try_send`s into it, so a
//! slow watcher can never stall a writer. A watcher whose channel is full is cut off; its stream
//! yields the events it already holds and then ends with [`StoreError::Expired`], which makes
//! the client re-list, as kube-apiserver does with watchers that cannot keep up.
//!
//! Events are wrapped in an `Arc` once, at publication; every watcher and the replay buffer share
//! that allocation. Values are `Bytes`, so the per-delivery clone is a refcount bump plus the
//! key string.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::{Event, EventStream, Revision, StoreError, StoreResult};

/// Live events a watcher may have queued before it counts as too slow and is cut off.
pub const DEFAULT_WATCHER_BUFFER: usize = 4096;

/// Recent events for replay plus the set of live watchers.
pub struct EventWindow {
    inner: Mutex<Inner>,
    capacity: usize,
    watcher_buffer: usize,
}

struct Inner {
    /// The most recent events, in revision order.
    events: VecDeque<Arc<Event>>,
    /// Events at or below this revision can no longer be replayed (evicted, compacted, or
    /// committed before the window started), so a watch must start at or above it.
    floor: Revision,
    watchers: Vec<Subscriber>,
}

struct Subscriber {
    prefix: Box<str>,
    from: Revision,
    tx: mpsc::Sender<Arc<Event>>,
    cut_off: Arc<CutOff>,
}

/// Set by the publisher when it drops a watcher for being too slow: the revision of the
/// first event the watcher could not take. Zero while the watcher is healthy.
#[derive(Default)]
struct CutOff(AtomicI64);

impl EventWindow {
    /// `capacity`: events kept for replay; `watcher_buffer`: live events a watcher may have
    /// pending; `start`: the revision already committed when the window begins (a watch
    /// from before it cannot be served).
    pub fn new(capacity: usize, watcher_buffer: usize, start: Revision) -> Self {
        EventWindow {
            inner: Mutex::new(Inner {
                events: VecDeque::with_capacity(capacity.min(1024)),
                floor: start,
                watchers: Vec::new(),
            }),
            capacity,
            // tokio's bounded channel needs room for at least one item.
            watcher_buffer: watcher_buffer.max(1),
        }
    }

    /// Records committed events (in increasing revision order, all newer than anything
    /// published before) and delivers them to the watchers whose prefix they match.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        let events: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        if events.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        for event in &events {
            debug_assert!(inner
                .events
                .back()
                .is_none_or(|last| last.revision() < event.revision()));
            inner.events.push_back(Arc::clone(event));
        }
        while inner.events.len() > self.capacity {
            if let Some(evicted) = inner.events.pop_front() {
                inner.floor = inner.floor.max(evicted.revision());
            }
        }
        inner.watchers.retain(|w| w.deliver(&events));
    }

    /// Forgets events at or below `revision`; watches from before it become `Expired`.
    pub fn compact(&self, revision: Revision) {
        let mut inner = self.inner.lock();
        inner.floor = inner.floor.max(revision);
        while inner
            .events
            .front()
            .is_some_and(|e| e.revision() <= revision)
        {
            inner.events.pop_front();
        }
    }

    /// The oldest `from` a watch can start at.
    pub fn floor(&self) -> Revision {
        self.inner.lock().floor
    }

    /// Watchers currently registered (including ones dropped by their client but not yet
    /// noticed by a publication).
    pub fn watcher_count(&self) -> usize {
        self.inner.lock().watchers.len()
    }

    /// Events under `prefix` with revision greater than `from`: the replay from the window,
    /// then live events.
    pub fn watch(&self, prefix: &str, from: Revision) -> StoreResult<EventStream> {
        let (tx, rx) = mpsc::channel(self.watcher_buffer);
        let cut_off = Arc::new(CutOff::default());
        let mut inner = self.inner.lock();
        if from < inner.floor {
            return Err(StoreError::Expired {
                requested: from,
                oldest: inner.floor,
            });
        }
        let start = inner.events.partition_point(|e| e.revision() <= from);
        let replay: Vec<Arc<Event>> = inner
            .events
            .range(start..)
            .filter(|e| e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        inner.watchers.push(Subscriber {
            prefix: prefix.into(),
            from,
            tx,
            cut_off: Arc::clone(&cut_off),
        });
        drop(inner);
        Ok(Box::pin(WindowWatch {
            replay: replay.into_iter(),
            rx,
            cut_off,
            last: from,
            finished: false,
        }))
    }
}

impl Subscriber {
    /// Hands the matching events to this watcher; `false` when it must be unregistered.
    fn deliver(&self, events: &[Arc<Event>]) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        for event in events {
            if event.revision() <= self.from || !event.kv.key.starts_with(&*self.prefix) {
                continue;
            }
            match self.tx.try_send(Arc::clone(event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.cut_off.0.store(event.revision(), Ordering::Release);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}

struct WindowWatch {
    replay: std::vec::IntoIter<Arc<Event>>,
    rx: mpsc::Receiver<Arc<Event>>,
    cut_off: Arc<CutOff>,
    /// The revision of the last event yielded (initially the watch's `from`).
    last: Revision,
    finished: bool,
}

fn into_event(event: Arc<Event>) -> Event {
    Arc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone())
}

impl Stream for WindowWatch {
    type Item = StoreResult<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(event) = this.replay.next() {
            this.last = event.revision();
            return Poll::Ready(Some(Ok(into_event(event))));
        }
        loop {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    if event.revision() <= this.last {
                        continue;
                    }
                    this.last = event.revision();
                    return Poll::Ready(Some(Ok(into_event(event))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    let dropped_at = this.cut_off.0.load(Ordering::Acquire);
                    if dropped_at > 0 {
                        return Poll::Ready(Some(Err(StoreError::Expired {
                            requested: this.last,
                            oldest: dropped_at,
                        })));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, KeyValue};
    use bytes::Bytes;
    use futures::StreamExt;
    use std::time::Duration;

    fn put(key: &str, revision: Revision) -> Event {
        Event {
            kind: EventKind::Put,
            kv: KeyValue {
                key: key.to_string(),
                value: Bytes::from(format!("v{revision}")),
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        }
    }

    async fn next_revision(stream: &mut EventStream) -> Revision {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("event within 5s")
            .expect("stream still open")
            .expect("no error")
            .revision()
    }

    #[tokio::test]
    async fn replays_then_delivers_live_events_for_the_prefix_only() {
        let window = EventWindow::new(100, 16, 0);
        window.publish((1..=4).map(|r| put(if r % 2 == 0 { "/a/x" } else { "/b/x" }, r)));
        let mut stream = window.watch("/a/", 1).unwrap();
        window.publish([put("/a/y", 5), put("/b/y", 6), put("/a/z", 7)]);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(next_revision(&mut stream).await);
        }
        assert_eq!(seen, vec![2, 4, 5, 7]);
    }

    #[tokio::test]
    async fn evicted_history_is_expired_and_floor_moves_with_it() {
        let window = EventWindow::new(3, 16, 0);
        window.publish((1..=5).map(|r| put("/k", r)));
        assert_eq!(window.floor(), 2);
        assert_eq!(
            window.watch("/", 1).err(),
            Some(StoreError::Expired {
                requested: 1,
                oldest: 2
            })
        );
        let mut stream = window.watch("/", 2).unwrap();
        assert_eq!(next_revision(&mut stream).await, 3);
    }

    #[tokio::test]
    async fn compaction_raises_the_floor() {
        let window = EventWindow::new(100, 16, 0);
        window.publish((1..=5).map(|r| put("/k", r)));
        window.compact(4);
        assert!(matches!(
            window.watch("/", 3),
            Err(StoreError::Expired { oldest: 4, .. })
        ));
        let mut stream = window.watch("/", 4).unwrap();
        assert_eq!(next_revision(&mut stream).await, 5);
    }

    #[tokio::test]
    async fn future_from_waits_for_later_revisions() {
        let window = EventWindow::new(100, 16, 0);
        window.publish([put("/k", 1)]);
        let mut stream = window.watch("/", 3).unwrap();
        window.publish([put("/k", 2), put("/k", 3), put("/k", 4)]);
        assert_eq!(next_revision(&mut stream).await, 4);
    }

    #[tokio::test]
    async fn slow_watcher_is_cut_off_with_expired_without_blocking_publishers() {
        let window = EventWindow::new(1000, 4, 0);
        let mut slow = window.watch("/", 0).unwrap();
        // Publishing far more than the watcher's buffer must not block.
        for r in 1..=20 {
            window.publish([put("/k", r)]);
        }
        assert_eq!(window.watcher_count(), 0);
        let mut items = Vec::new();
        while let Some(item) = slow.next().await {
            items.push(item);
        }
        let revisions: Vec<Revision> = items
            .iter()
            .filter_map(|i| i.as_ref().ok().map(Event::revision))
            .collect();
        assert_eq!(revisions, vec![1, 2, 3, 4]);
        assert_eq!(
            items.last().unwrap().as_ref().err(),
            Some(&StoreError::Expired {
                requested: 4,
                oldest: 5
            })
        );
    }

    #[tokio::test]
    async fn dropped_watchers_are_unregistered_on_next_publish() {
        let window = EventWindow::new(10, 16, 0);
        let stream = window.watch("/only/", 0).unwrap();
        assert_eq!(window.watcher_count(), 1);
        drop(stream);
        window.publish([put("/other", 1)]);
        assert_eq!(window.watcher_count(), 0);
    }

    #[tokio::test]
    async fn window_start_is_the_initial_floor() {
        let window = EventWindow::new(10, 16, 7);
        assert!(matches!(
            window.watch("/", 6),
            Err(StoreError::Expired {
                requested: 6,
                oldest: 7
            })
        ));
        let mut stream = window.watch("/", 7).unwrap();
        window.publish([put("/k", 8)]);
        assert_eq!(next_revision(&mut stream).await, 8);
    }
}
