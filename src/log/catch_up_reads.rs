//! The shard's catch-up read scheduler: disk reads for fetches below the tail cache.
//!
//! Measured on this kind of machine, an unthrottled reader at depth 8 cut an fdatasync writer
//! from 21 MB/s to 0.5 MB/s, while depth 1 did no harm and still read 0.9 GB/s. So catch-up
//! reads are admitted at most `shard.catchup.reads.max` at a time and at most
//! `shard.catchup.read.bytes.per.second` (a token bucket), and run in the shard's background
//! task queue, so writes, fsyncs and tailing fetches keep priority.

use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::Event;
use strand_io::{FileReader, IoError};
use strand_shards::task::{sleep, spawn_background};

pub struct CatchUpReads {
    depth_max: usize,
    in_flight: Cell<usize>,
    freed: Event,
    /// Bytes per second; 0 means unlimited.
    rate: u64,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    bytes_read: Cell<u64>,
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
    pub fn new(depth_max: usize, bytes_per_second: u64) -> Self {
        Self {
            depth_max: depth_max.max(1),
            in_flight: Cell::new(0),
            freed: Event::new(),
            rate: bytes_per_second,
            tokens: Cell::new(bytes_per_second as f64),
            refilled: Cell::new(Instant::now()),
            bytes_read: Cell::new(0),
        }
    }

    /// Bytes read through the scheduler since the shard started.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Reads `len` bytes at `position` once admitted, in the background queue.
    pub async fn read(&self, reader: &FileReader, position: u64, len: usize) -> Result<Bytes, IoError> {
        let _slot = self.admit().await;
        self.take_tokens(len as u64).await;
        let reader = reader.clone();
        let bytes = spawn_background(async move { reader.read_at(position, len).await }).await?;
        self.bytes_read.set(self.bytes_read.get() + bytes.len() as u64);
        Ok(bytes)
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
