//! The shard's catch-up read scheduler: disk reads for fetches below the tail cache.
//!
//! Measured on this kind of machine, an unthrottled reader at depth 8 cut an fdatasync writer
//! from 21 MB/s to 0.5 MB/s, while depth 1 did no harm and still read 0.9 GB/s. So catch-up
//! reads are admitted at most `shard.catchup.reads.max` at a time and at most
//! `shard.catchup.read.bytes.per.second` (a token bucket), and run in the shard's background
//! task queue, so writes, fsyncs and tailing fetches keep priority.
//!
//! Each disk read is `shard.catchup.read.chunk.bytes` (within the bytes its caller says are
//! readable; more only when one batch is larger), or `shard.catchup.read.chunk.busy.bytes`
//! while the shard is writing (it wrote within `WRITE_ACTIVITY`). A write or fdatasync that
//! reaches a device with one queue waits for the read in flight, so while acknowledgements
//! wait on writes the reads are cut short, as Seastar's I/O scheduler splits large requests;
//! with no writes, reads are long and catch-up is fast. The signal is per shard: a shard that
//! is not writing reads long even when other shards write to the same disk, and the first
//! write after a quiet 100 ms may find a long read in flight. A fetch takes one read per
//! partition (more only for a first batch longer than the read), so with the clients' default max.partition.fetch.bytes (1 MiB) each fetch reads
//! its own chunk, from the index entry before its offset: the partial batch a chunk ends in is
//! read again by the next fetch. A fetch asking for less than a chunk leaves the rest in one
//! of the shard's `READAHEAD_SLOTS`, so a consumer fetching small amounts far behind is served
//! its next fetches from memory. The slots bound readahead memory per shard, however many
//! partitions there are.
//!
//! With fio on the bench VM, a 64 KiB O_DIRECT writer with fdatasync per write took 116 us per
//! sync alone, 1,458 us beside a 1 MiB reader (one read in flight) and 359 us beside a 256 KiB
//! reader, which still read 894 MiB/s. In W3 (16 partitions written at 151k msg/s) the tailing
//! p99 rose 1.26-1.32x with fixed 64 KiB reads against 2.23-2.25x with 256 KiB ones, and the
//! drain fell from 295 to 166 MiB/s (docs/benchmarks.md).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use strand_io::{FileReader, IoError};
use strand_shards::task::{sleep, spawn_background};

/// Readahead buffers kept per shard.
const READAHEAD_SLOTS: usize = 8;

/// A shard that wrote this recently reads in `busy_read_bytes`.
const WRITE_ACTIVITY: Duration = Duration::from_millis(100);

/// Bytes of a file read ahead of a fetch.
struct Readahead {
    path: PathBuf,
    position: u64,
    bytes: Bytes,
}

pub struct CatchUpReads {
    readahead: RefCell<VecDeque<Readahead>>,
    depth_max: usize,
    read_bytes: usize,
    busy_read_bytes: usize,
    /// When the shard last wrote to a log, and how long it counts as writing after that.
    last_write: Cell<Option<Instant>>,
    write_activity: Duration,
    in_flight: Cell<usize>,
    freed: Event,
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    bytes_read: Cell<u64>,
    disk_reads: Cell<u64>,
}

/// Held while a read is in flight.
struct Slot<'a> {
    reads: &'a CatchUpReads,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.reads.in_flight.set(self.reads.in_flight.get() - 1);
        self.reads.freed.notify(1);
    }
}

impl CatchUpReads {
    pub fn new(depth_max: usize, read_bytes: usize, busy_read_bytes: usize, bytes_per_second: u64) -> Self {
        Self {
            readahead: RefCell::new(VecDeque::new()),
            depth_max: depth_max.max(1),
            read_bytes: read_bytes.max(1),
            busy_read_bytes: busy_read_bytes.clamp(1, read_bytes.max(1)),
            last_write: Cell::new(None),
            write_activity: WRITE_ACTIVITY,
            in_flight: Cell::new(0),
            freed: Event::new(),
            rate: bytes_per_second,
            tokens: Cell::new(bytes_per_second as f64),
            refilled: Cell::new(Instant::now()),
            bytes_read: Cell::new(0),
            disk_reads: Cell::new(0),
        }
    }

    /// Bytes of one disk read now: a fetch's window below the tail cache is at most this long.
    pub fn read_bytes(&self) -> usize {
        match self.last_write.get() {
            Some(at) if at.elapsed() < self.write_activity => self.busy_read_bytes,
            _ => self.read_bytes,
        }
    }

    /// Tests on a loaded machine, where a write and its fdatasync may take longer than
    /// `WRITE_ACTIVITY`: a longer window.
    #[cfg(test)]
    pub fn with_write_activity(mut self, window: Duration) -> Self {
        self.write_activity = window;
        self
    }

    /// The shard just wrote to a log: reads are `busy_read_bytes` for a while.
    pub fn note_write(&self) {
        self.last_write.set(Some(Instant::now()));
    }

    /// Disk reads made since the shard started.
    pub fn disk_reads(&self) -> u64 {
        self.disk_reads.get()
    }

    /// Bytes read through the scheduler since the shard started.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Reads `len` bytes at `position` (of the `readable` bytes of the file): from a readahead
    /// buffer when one holds them, otherwise with one read of at least `read_bytes` once
    /// admitted, in the background queue.
    pub async fn read(&self, reader: &FileReader, position: u64, len: usize, readable: u64) -> Result<Bytes, IoError> {
        if let Some(hit) = self.read_ahead_hit(reader.path(), position, len) {
            return Ok(hit);
        }
        let want = len.max(self.read_bytes()).min(usize::try_from(readable.saturating_sub(position)).unwrap_or(usize::MAX)).max(len);
        let _slot = self.admit().await;
        self.take_tokens(want as u64).await;
        let owned = reader.clone();
        let bytes = spawn_background(async move { owned.read_at(position, want).await }).await?;
        self.bytes_read.set(self.bytes_read.get() + bytes.len() as u64);
        self.disk_reads.set(self.disk_reads.get() + 1);
        if bytes.len() > len {
            let mut slots = self.readahead.borrow_mut();
            slots.retain(|r| r.path != reader.path());
            if slots.len() == READAHEAD_SLOTS {
                slots.pop_front();
            }
            slots.push_back(Readahead { path: reader.path().to_owned(), position, bytes: bytes.clone() });
        }
        Ok(bytes.slice(..len.min(bytes.len())))
    }

    fn read_ahead_hit(&self, path: &Path, position: u64, len: usize) -> Option<Bytes> {
        let slots = self.readahead.borrow();
        let slot = slots.iter().find(|r| r.path == path)?;
        let from = usize::try_from(position.checked_sub(slot.position)?).ok()?;
        (from + len <= slot.bytes.len()).then(|| slot.bytes.slice(from..from + len))
    }

    /// Forgets what was read ahead of files at or under `path`: a file replaced (compaction) or
    /// removed (retention), or a partition closed (its directory may be reused by a new topic
    /// of the same name).
    pub fn invalidate(&self, path: &Path) {
        self.readahead.borrow_mut().retain(|r| !r.path.starts_with(path));
    }

    async fn admit(&self) -> Slot<'_> {
        loop {
            if self.in_flight.get() < self.depth_max {
                self.in_flight.set(self.in_flight.get() + 1);
                return Slot { reads: self };
            }
            let listener = self.freed.listen();
            if self.in_flight.get() < self.depth_max {
                continue;
            }
            listener.await;
        }
    }

    /// Waits until the bucket holds `len` bytes of tokens (a read larger than a second's worth
    /// waits for the bucket to fill, then goes).
    async fn take_tokens(&self, len: u64) {
        if self.rate == 0 {
            return;
        }
        let need = (len as f64).min(self.rate as f64);
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled.get()).as_secs_f64();
            let tokens = (self.tokens.get() + elapsed * self.rate as f64).min(self.rate as f64);
            self.refilled.set(now);
            if tokens >= need {
                self.tokens.set(tokens - need);
                return;
            }
            self.tokens.set(tokens);
            sleep(Duration::from_secs_f64((need - tokens) / self.rate as f64)).await;
        }
    }
}
