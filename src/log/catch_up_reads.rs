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
//! while the broker is writing (a shard wrote within `WRITE_ACTIVITY`). A write or fdatasync
//! that reaches a device with one queue waits for the read in flight, so while acknowledgements
//! wait on writes the reads are cut short, as Seastar's I/O scheduler splits large requests;
//! with no writes, reads are long and catch-up is fast. The signal is the broker's
//! ([`BrokerWrites`]): its shards share the disk, so a shard with nothing to write still reads
//! short while another writes. The first write after a quiet 100 ms may find a long read in
//! flight.
//!
//! A fetch takes one read per partition (more only for a first batch longer than the read),
//! from the index entry before its offset. Once it is served, the log reads ahead where the
//! consumer's next fetch will start ([`CatchUpReads::read_ahead`]), so the disk reads while
//! the answer travels and the consumer handles it, instead of idling until the next fetch
//! comes; that fetch takes the bytes, or waits for the read in flight. Reads ahead are
//! admitted like any other, one at a time by default, so they add no depth a write would
//! queue behind. A fetch asking for less than a read keeps the rest, so a consumer fetching
//! small amounts far behind is served its next fetches from memory. What is held this way
//! is at most `shard.catchup.readahead.bytes` (and a few hundred slots) per shard, however many
//! partitions there are. Room is made by dropping the least recently used bytes, but not a
//! read ahead no fetch has used yet unless it is a second old (readahead.rs): what does not fit
//! beside those is not read ahead, or not kept.
//!
//! With fio on the bench VM, a 64 KiB O_DIRECT writer with fdatasync per write took 116 us per
//! sync alone, 1,458 us beside a 1 MiB reader (one read in flight) and 359 us beside a 256 KiB
//! reader, which still read 894 MiB/s. In W3 (16 partitions written at 151k msg/s) the tailing
//! p99 rose 1.26-1.32x with fixed 64 KiB reads against 2.23-2.25x with 256 KiB ones, and the
//! drain fell from 295 to 166 MiB/s (docs/benchmarks.md).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use strand_io::{FileReader, IoError};
use strand_shards::task::{sleep, spawn_background, Task};

use super::broker_writes::BrokerWrites;
use super::readahead::{make_room, Fill, Lookup, Readahead};

/// A shard that wrote this recently reads in `busy_read_bytes`.
const WRITE_ACTIVITY: Duration = Duration::from_millis(100);

/// The shard's catch-up limits (the `shard.catchup.*` keys).
#[derive(Debug, Clone, Copy)]
pub struct CatchUpLimits {
    /// Disk reads in flight at once.
    pub reads_max: usize,
    pub read_bytes: usize,
    /// The read size while the broker writes; above `read_bytes` it acts as that.
    pub busy_read_bytes: usize,
    /// 0 means unlimited.
    pub bytes_per_second: u64,
    /// Memory for bytes read before a fetch asks for them; 0 turns readahead off.
    pub readahead_bytes: usize,
}

pub struct CatchUpReads {
    readahead: RefCell<VecDeque<Readahead>>,
    limits: CatchUpLimits,
    /// When the broker last wrote to a log, and how long it counts as writing after that.
    writes: Arc<BrokerWrites>,
    write_activity: Duration,
    in_flight: Cell<usize>,
    freed: Event,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    bytes_read: Cell<u64>,
    disk_reads: Cell<u64>,
    readahead_hits: Cell<u64>,
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
    pub fn new(limits: CatchUpLimits, writes: Arc<BrokerWrites>) -> Self {
        let read_bytes = limits.read_bytes.max(1);
        let limits = CatchUpLimits {
            reads_max: limits.reads_max.max(1),
            read_bytes,
            busy_read_bytes: limits.busy_read_bytes.clamp(1, read_bytes),
            ..limits
        };
        Self {
            readahead: RefCell::new(VecDeque::new()),
            limits,
            writes,
            write_activity: WRITE_ACTIVITY,
            in_flight: Cell::new(0),
            freed: Event::new(),
            tokens: Cell::new(limits.bytes_per_second as f64),
            refilled: Cell::new(Instant::now()),
            bytes_read: Cell::new(0),
            disk_reads: Cell::new(0),
            readahead_hits: Cell::new(0),
        }
    }

    /// Bytes of one disk read now: a fetch's window below the tail cache is at most this long.
    pub fn read_bytes(&self) -> usize {
        if self.writes.within(self.write_activity) {
            self.limits.busy_read_bytes
        } else {
            self.limits.read_bytes
        }
    }

    /// Tests on a loaded machine, where a write and its fdatasync may take longer than
    /// `WRITE_ACTIVITY`: a longer window.
    #[cfg(test)]
    pub fn with_write_activity(mut self, window: Duration) -> Self {
        self.write_activity = window;
        self
    }

    /// The shard is writing to a log (a write started or landed, or an fdatasync ended): every
    /// shard's reads are `busy_read_bytes` for a while.
    pub fn note_write(&self) {
        self.writes.note();
    }

    /// Disk reads made since the shard started, read ahead or not.
    pub fn disk_reads(&self) -> u64 {
        self.disk_reads.get()
    }

    /// Bytes read through the scheduler since the shard started.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Reads served from bytes read before they were asked for.
    pub fn readahead_hits(&self) -> u64 {
        self.readahead_hits.get()
    }

    /// Reads `len` bytes at `position` (of the `readable` bytes of the file): from the
    /// readahead when it holds them (waiting for a read ahead of this position still in
    /// flight), otherwise with one read of at least `read_bytes` once admitted, in the
    /// background queue. What the read brings past `len` is kept for the next fetch. A read
    /// ahead of this position may hold fewer than `len` bytes; the caller gets those.
    pub async fn read(&self, reader: &FileReader, position: u64, len: usize, readable: u64) -> Result<Bytes, IoError> {
        loop {
            match self.lookup(reader, position, len) {
                Lookup::Hit(bytes) => {
                    self.readahead_hits.set(self.readahead_hits.get() + 1);
                    return Ok(bytes);
                }
                Lookup::Wait(landed) => landed.await,
                Lookup::Miss => break,
            }
        }
        let want = len.max(self.read_bytes()).min(usize::try_from(readable.saturating_sub(position)).unwrap_or(usize::MAX)).max(len);
        let bytes = {
            let _slot = self.admit().await;
            self.take_tokens(want as u64).await;
            let owned = reader.clone();
            spawn_background(async move { owned.read_at(position, want).await }).await?
        };
        self.count_read(&bytes);
        if bytes.len() > len {
            let mut slots = self.readahead.borrow_mut();
            slots.retain(|r| !(r.file.is(reader) && r.position == position && matches!(r.fill, Fill::Ready(_))));
            if make_room(&mut slots, bytes.len(), self.limits.readahead_bytes) {
                slots.push_back(Readahead::new(reader, position, Fill::Ready(bytes.clone()), false));
            }
        }
        Ok(bytes.slice(..len.min(bytes.len())))
    }

    /// Starts reading `[position, position + max(read_bytes, next_len))` of the file (within
    /// its `readable` bytes) for a fetch expected to want `next_len` bytes there next, unless
    /// the readahead already holds them or has no room. The reads are admitted like any other,
    /// so they wait for the reads asked for before them. The task that reads, when one was
    /// started: the log detaches it, a test may await it.
    pub fn read_ahead(self: &Rc<Self>, reader: &FileReader, position: u64, next_len: usize, readable: u64) -> Option<Task<()>> {
        let left = usize::try_from(readable.saturating_sub(position)).ok()?;
        let want = next_len.max(self.read_bytes()).min(left);
        if want == 0 {
            return None;
        }
        let done = Rc::new(Event::new());
        {
            let mut slots = self.readahead.borrow_mut();
            if slots.iter().any(|r| r.serves(reader, position, next_len.min(want))) {
                return None;
            }
            if !make_room(&mut slots, want, self.limits.readahead_bytes) {
                return None;
            }
            let fill = Fill::Reading { len: want, done: Rc::clone(&done) };
            slots.push_back(Readahead::new(reader, position, fill, true));
        }
        let reads = Rc::clone(self);
        let reader = reader.clone();
        Some(spawn_background(async move {
            let read = reads.read_in_pieces(&reader, position, want, &done).await;
            reads.land(&done, read);
        }))
    }

    /// Reads `len` bytes at `position` in reads of at most the current read size, each
    /// admitted on its own, so writes wait behind no longer read than a fetch's; ends early at
    /// the end of the file, or when the slot of `done` is gone (evicted or invalidated).
    async fn read_in_pieces(&self, reader: &FileReader, position: u64, len: usize, done: &Rc<Event>) -> Result<Bytes, IoError> {
        let mut pieces = Vec::new();
        let mut got = 0;
        while got < len && self.slot_of(done).is_some() {
            let want = (len - got).min(self.read_bytes());
            let piece = {
                let _slot = self.admit().await;
                self.take_tokens(want as u64).await;
                reader.read_at(position + got as u64, want).await?
            };
            self.count_read(&piece);
            got += piece.len();
            let short = piece.len() < want;
            pieces.push(piece);
            if short {
                break;
            }
        }
        Ok(match pieces.as_slice() {
            [one] => one.clone(),
            _ => pieces.concat().into(),
        })
    }

    /// The index of the slot a read ahead signals through `done`, while it is there.
    fn slot_of(&self, done: &Rc<Event>) -> Option<usize> {
        let slots = self.readahead.borrow();
        slots.iter().position(|r| matches!(&r.fill, Fill::Reading { done: d, .. } if Rc::ptr_eq(d, done)))
    }

    /// A read ahead landed: its bytes fill its slot (if it is still there), or on an error the
    /// slot goes and the fetch reads for itself (and meets the error).
    fn land(&self, done: &Rc<Event>, read: Result<Bytes, IoError>) {
        if let Some(index) = self.slot_of(done) {
            let mut slots = self.readahead.borrow_mut();
            match read {
                Ok(bytes) if !bytes.is_empty() => {
                    slots[index].fill = Fill::Ready(bytes);
                    slots[index].touched = Instant::now();
                }
                Ok(_) => drop(slots.remove(index)),
                Err(e) => {
                    tracing::debug!(path = %slots[index].path.display(), error = %e, "read ahead failed");
                    drop(slots.remove(index));
                }
            }
        }
        done.notify(usize::MAX);
    }

    fn count_read(&self, bytes: &Bytes) {
        self.bytes_read.set(self.bytes_read.get() + bytes.len() as u64);
        self.disk_reads.set(self.disk_reads.get() + 1);
    }

    fn lookup(&self, reader: &FileReader, position: u64, len: usize) -> Lookup {
        let mut slots = self.readahead.borrow_mut();
        // A slot holding the bytes before one still reading them.
        let ready = slots.iter().position(|r| matches!(r.fill, Fill::Ready(_)) && r.serves(reader, position, len));
        let Some(index) = ready.or_else(|| slots.iter().position(|r| r.serves(reader, position, len))) else {
            return Lookup::Miss;
        };
        let from = usize::try_from(position - slots[index].position).unwrap_or(usize::MAX);
        let bytes = match &slots[index].fill {
            Fill::Reading { done, .. } => return Lookup::Wait(done.listen()),
            // From a read ahead of exactly this position, as far as it goes; otherwise the
            // whole range is there (`serves`).
            Fill::Ready(bytes) => bytes.slice(from..bytes.len().min(from.saturating_add(len))),
        };
        // Most recently used last: the first to go when room is needed is the longest unused.
        if let Some(mut slot) = slots.remove(index) {
            slot.ahead = false;
            slot.touched = Instant::now();
            slots.push_back(slot);
        }
        Lookup::Hit(bytes)
    }

    /// Forgets what was read ahead of files at or under `path`: a file replaced (compaction) or
    /// removed (retention), or a partition closed (its directory may be reused by a new topic
    /// of the same name). A read in flight for such a file lands nowhere.
    pub fn invalidate(&self, path: &Path) {
        self.readahead.borrow_mut().retain(|r| !r.path.starts_with(path));
    }

    async fn admit(&self) -> Slot<'_> {
        loop {
            if self.in_flight.get() < self.limits.reads_max {
                self.in_flight.set(self.in_flight.get() + 1);
                return Slot { reads: self };
            }
            let listener = self.freed.listen();
            if self.in_flight.get() < self.limits.reads_max {
                continue;
            }
            listener.await;
        }
    }

    /// Waits until the bucket holds `len` bytes of tokens (a read larger than a second's worth
    /// waits for the bucket to fill, then goes).
    async fn take_tokens(&self, len: u64) {
        let rate = self.limits.bytes_per_second;
        if rate == 0 {
            return;
        }
        let need = (len as f64).min(rate as f64);
        loop {
            let now = Instant::now();
            let elapsed = now.duration_since(self.refilled.get()).as_secs_f64();
            let tokens = (self.tokens.get() + elapsed * rate as f64).min(rate as f64);
            self.refilled.set(now);
            if tokens >= need {
                self.tokens.set(tokens - need);
                return;
            }
            self.tokens.set(tokens);
            sleep(Duration::from_secs_f64((need - tokens) / rate as f64)).await;
        }
    }
}
