//! What a connection's reader and writer share on its shard: when it last made progress, how
//! many requests are being processed, how many response bytes wait to be written, and whether
//! it is closing. Together they bound what one client can make the broker hold.

use std::cell::Cell;
use std::time::{Duration, Instant};

use event_listener::Event;
use strand_shards::task::sleep;

pub struct ConnectionState {
    closed: Cell<bool>,
    /// When a whole request was read or a whole response written. Progress is counted per
    /// frame, not per byte, so a client that dribbles a frame a byte at a time is still idle.
    last_activity: Cell<Instant>,
    /// Requests dispatched whose handler has not returned. While one runs (a JoinGroup waiting
    /// for its rebalance, a Fetch waiting for data), the connection is not idle.
    processing: Cell<usize>,
    /// Bytes of responses encoded and not yet written, and room held for the responses of
    /// requests being processed (a Fetch's max_bytes).
    response_bytes_buffered: Cell<usize>,
    /// Notified when `closed` is set.
    closing: Event,
    /// Notified when `response_bytes_buffered` fell.
    drained: Event,
}

impl ConnectionState {
    pub fn new() -> Self {
        Self {
            closed: Cell::new(false),
            last_activity: Cell::new(Instant::now()),
            processing: Cell::new(0),
            response_bytes_buffered: Cell::new(0),
            closing: Event::new(),
            drained: Event::new(),
        }
    }

    /// The writer stops (a failed write, or a request that cannot be answered); the reader
    /// stops with it.
    pub fn close(&self) {
        self.closed.set(true);
        self.closing.notify(usize::MAX);
    }

    pub async fn closed(&self) {
        wait_until(&self.closing, || self.closed.get()).await;
    }

    /// A request was read; room for `reserved` bytes of its response is held until it is
    /// processed.
    pub fn request_read(&self, reserved: usize) {
        self.last_activity.set(Instant::now());
        self.processing.set(self.processing.get() + 1);
        self.response_bytes_buffered.set(self.response_bytes_buffered.get() + reserved);
    }

    /// A handler returned; `response_bytes` wait for the writer in place of the `reserved`.
    pub fn request_processed(&self, reserved: usize, response_bytes: usize) {
        self.last_activity.set(Instant::now());
        self.processing.set(self.processing.get() - 1);
        self.response_bytes_buffered.set(self.response_bytes_buffered.get() - reserved + response_bytes);
        if response_bytes < reserved {
            self.drained.notify(usize::MAX);
        }
    }

    pub fn response_written(&self, response_bytes: usize) {
        self.last_activity.set(Instant::now());
        self.response_bytes_buffered.set(self.response_bytes_buffered.get() - response_bytes);
        self.drained.notify(usize::MAX);
    }

    /// Waits until fewer than `max` response bytes are buffered or reserved. The reader waits
    /// here before reading the next request, so a client that never reads its responses stops
    /// being read: what one connection holds is `max` plus one Fetch's max_bytes, plus the
    /// small responses of other requests in flight.
    pub async fn response_buffer_below(&self, max: usize) {
        wait_until(&self.drained, || self.response_bytes_buffered.get() < max).await;
    }

    /// Returns once no request is being processed and neither a request was read nor a
    /// response written for `idle` (connections.max.idle.ms). A stalled writer does not count
    /// as progress: a client that stops reading its responses goes idle too.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let quiet = self.last_activity.get().elapsed();
            if quiet >= idle && self.processing.get() == 0 {
                return;
            }
            // While a request runs, look again a whole `idle` later: its end counts as activity.
            let wait = if quiet < idle { idle - quiet } else { idle };
            sleep(wait).await;
        }
    }
}

/// Waits until `done`, looking again each time `event` is notified.
async fn wait_until(event: &Event, done: impl Fn() -> bool) {
    while !done() {
        let listener = event.listen();
        if done() {
            return;
        }
        listener.await;
    }
}
