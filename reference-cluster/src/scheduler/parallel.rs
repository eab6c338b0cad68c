//! Filter and Score over node chunks on several threads, as upstream's `parallelizer` does
//! with `parallelism` workers. Chunks are handed out in order from a shared counter, and a
//! claimed chunk is always finished, so the nodes processed form a prefix of the order: the
//! result is the same as a sequential pass that went a little further.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Below this many items a second thread costs more than it saves.
pub const MIN_PARALLEL_ITEMS: usize = 64;

/// The CPUs this process may use (read once).
pub fn available_cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Threads worth using for `n` items with the configured `parallelism`: never more than
/// there are CPUs, one when the work is small.
pub fn workers_for(n: usize, parallelism: usize) -> usize {
    if n < MIN_PARALLEL_ITEMS {
        return 1;
    }
    parallelism.min(available_cpus()).max(1)
}

/// Upstream's chunk size: about √n, but small enough that every worker gets one.
pub fn chunk_size(n: usize, workers: usize) -> usize {
    let sqrt = (n as f64).sqrt() as usize;
    sqrt.min(n / workers.max(1) + 1).max(1)
}

/// Runs `work` over `0..n` in chunks on up to `workers` threads (the caller's included) and
/// returns each chunk's result with its start, in order. No new chunk is started once `stop`
/// says so.
pub fn for_chunks<R: Send>(
    n: usize,
    workers: usize,
    stop: &(dyn Fn() -> bool + Sync),
    work: &(dyn Fn(Range<usize>) -> R + Sync),
) -> Vec<(usize, R)> {
    let chunk = chunk_size(n, workers);
    let next = AtomicUsize::new(0);
    let run = || {
        let mut out = Vec::new();
        while !stop() {
            let s = next.fetch_add(chunk, Ordering::Relaxed);
            if s >= n {
                break;
            }
            out.push((s, work(s..(s + chunk).min(n))));
        }
        out
    };
    if workers <= 1 || n <= chunk {
        return run();
    }
    let mut all = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(run)).collect();
        let mut all = run();
        for h in helpers {
            match h.join() {
                Ok(part) => all.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    all.sort_unstable_by_key(|(s, _)| *s);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn chunk_sizes_follow_upstream() {
        assert_eq!(chunk_size(1000, 16), 31);
        assert_eq!(chunk_size(1000, 2), 31);
        assert_eq!(chunk_size(10, 16), 1);
        assert_eq!(chunk_size(0, 2), 1);
        assert_eq!(workers_for(10, 16), 1);
        assert!(workers_for(1000, 16) <= available_cpus());
        assert_eq!(workers_for(1000, 1), 1);
    }

    #[test]
    fn every_item_once_in_order() {
        for workers in [1, 2, 4] {
            let parts = for_chunks(1000, workers, &|| false, &|r| r.collect::<Vec<_>>());
            let flat: Vec<usize> = parts.into_iter().flat_map(|(_, v)| v).collect();
            assert_eq!(flat, (0..1000).collect::<Vec<_>>(), "{workers} workers");
        }
    }

    #[test]
    fn stopping_leaves_a_processed_prefix() {
        let seen = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let parts = for_chunks(1000, 2, &|| stop.load(Ordering::Relaxed), &|r| {
            if seen.fetch_add(r.len(), Ordering::Relaxed) + r.len() >= 100 {
                stop.store(true, Ordering::Relaxed);
            }
            r
        });
        let mut expect = 0;
        for (s, r) in &parts {
            assert_eq!((*s, r.start), (expect, expect), "no gaps");
            expect = r.end;
        }
        assert!((100..1000).contains(&expect), "stopped early at {expect}");
    }
}
