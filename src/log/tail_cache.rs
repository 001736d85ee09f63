//! The tail cache: the newest batches of each partition, kept in memory so that fetches at or
//! near the log end (tailing consumers) are served without disk I/O.
//!
//! One [`TailCache`] per shard holds the budget (`shard.tail.cache.bytes`) shared by the
//! shard's partitions; each partition keeps its cached batches in a [`PartitionTail`].
//! Batches enter when written (the same `Bytes` that went to disk, no copy) and leave oldest
//! first, across partitions, when the shard is over budget. Readers still check the high
//! watermark: a cached batch is served only once it is acknowledged.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use bytes::{Bytes, BytesMut};

/// The shard-wide budget and eviction order.
pub struct TailCache {
    budget_bytes: usize,
    used_bytes: Cell<usize>,
    order: RefCell<VecDeque<Eviction>>,
}

struct Eviction {
    partition: Weak<PartitionTail>,
    next_offset: i64,
}

struct CachedBatch {
    base_offset: i64,
    next_offset: i64,
    bytes: Bytes,
}

/// One partition's cached batches, contiguous in offsets.
pub struct PartitionTail {
    cache: Rc<TailCache>,
    batches: RefCell<VecDeque<CachedBatch>>,
}

impl TailCache {
    pub fn new(budget_bytes: usize) -> Rc<Self> {
        Rc::new(Self { budget_bytes, used_bytes: Cell::new(0), order: RefCell::new(VecDeque::new()) })
    }

    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }

    /// Evicts the oldest batches of the shard until it is within budget.
    fn maybe_evict(&self) {
        while self.used_bytes.get() > self.budget_bytes {
            let Some(eviction) = self.order.borrow_mut().pop_front() else { return };
            if let Some(partition) = eviction.partition.upgrade() {
                partition.drop_before(eviction.next_offset);
            }
        }
    }
}

impl PartitionTail {
    pub fn new(cache: &Rc<TailCache>) -> Rc<Self> {
        Rc::new(Self { cache: Rc::clone(cache), batches: RefCell::new(VecDeque::new()) })
    }

    /// Caches a batch just written at the log end.
    pub fn push(self: &Rc<Self>, base_offset: i64, next_offset: i64, bytes: Bytes) {
        if self.cache.budget_bytes == 0 {
            return;
        }
        let contiguous = self.batches.borrow().back().is_none_or(|b| b.next_offset == base_offset);
        if !contiguous {
            self.clear();
        }
        self.cache.used_bytes.set(self.cache.used_bytes.get() + bytes.len());
        self.batches.borrow_mut().push_back(CachedBatch { base_offset, next_offset, bytes });
        self.cache.order.borrow_mut().push_back(Eviction { partition: Rc::downgrade(self), next_offset });
        self.cache.maybe_evict();
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one), below
    /// `high_watermark`; None when `offset` is not cached.
    pub fn read(&self, offset: i64, max_bytes: usize, high_watermark: i64) -> Option<Bytes> {
        let batches = self.batches.borrow();
        let front = batches.front()?;
        if offset < front.base_offset {
            return None;
        }
        let first = batches.iter().position(|b| b.next_offset > offset)?;
        let mut picked: Vec<&Bytes> = Vec::new();
        let mut total = 0;
        for batch in batches.iter().skip(first) {
            if batch.base_offset >= high_watermark || (total > 0 && total + batch.bytes.len() > max_bytes) {
                break;
            }
            total += batch.bytes.len();
            picked.push(&batch.bytes);
        }
        match picked.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => {
                let mut joined = BytesMut::with_capacity(total);
                for bytes in many {
                    joined.extend_from_slice(bytes);
                }
                Some(joined.freeze())
            }
        }
    }

    /// Whether a fetch at `offset` is served from the cache (or waits at the log end).
    pub fn holds(&self, offset: i64) -> bool {
        self.batches.borrow().front().is_some_and(|b| b.base_offset <= offset)
    }

    /// Drops every cached batch (the log was truncated, or closed).
    pub fn clear(&self) {
        let freed: usize = self.batches.borrow_mut().drain(..).map(|b| b.bytes.len()).sum();
        self.cache.used_bytes.set(self.cache.used_bytes.get() - freed);
    }

    fn drop_before(&self, next_offset: i64) {
        let mut batches = self.batches.borrow_mut();
        while batches.front().is_some_and(|b| b.next_offset <= next_offset) {
            let batch = batches.pop_front().expect("checked");
            self.cache.used_bytes.set(self.cache.used_bytes.get() - batch.bytes.len());
        }
    }
}

impl Drop for PartitionTail {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn reads_at_the_tail_come_from_memory_and_stop_at_the_high_watermark() {
        let cache = TailCache::new(1 << 20);
        let tail = PartitionTail::new(&cache);
        tail.push(0, 10, batch(100));
        tail.push(10, 20, batch(100));
        tail.push(20, 30, batch(100));
        assert_eq!(tail.read(15, 1000, 30).map(|b| b.len()), Some(200));
        assert_eq!(tail.read(15, 1000, 20).map(|b| b.len()), Some(100));
        assert_eq!(tail.read(0, 150, 30).map(|b| b.len()), Some(100), "max_bytes, but at least one");
        assert_eq!(tail.read(30, 1000, 30), None);
    }

    #[test]
    fn the_shard_budget_evicts_the_oldest_batches_across_partitions() {
        let cache = TailCache::new(250);
        let a = PartitionTail::new(&cache);
        let b = PartitionTail::new(&cache);
        a.push(0, 1, batch(100));
        b.push(0, 1, batch(100));
        a.push(1, 2, batch(100));
        assert_eq!(cache.used_bytes(), 200);
        assert!(a.read(0, 1000, 2).is_none(), "a's oldest batch was evicted");
        assert!(a.read(1, 1000, 2).is_some());
        assert!(b.read(0, 1000, 1).is_some());
        drop(b);
        assert_eq!(cache.used_bytes(), 100, "a dropped partition returns its bytes");
    }
}
