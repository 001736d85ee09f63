//! Counting a shard's open connections, so shutdown can wait for them to drain.

use std::cell::Cell;
use std::time::Duration;

use event_listener::Event;
use futures_lite::future;
use strand_shards::task::sleep;

#[derive(Default)]
pub struct Connections {
    open: Cell<usize>,
    closed: Event,
}

/// Held by a connection while it is open.
pub struct ConnectionGuard<'a> {
    connections: &'a Connections,
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.connections.open.set(self.connections.open.get() - 1);
        self.connections.closed.notify(usize::MAX);
    }
}

impl Connections {
    pub fn open(&self) -> ConnectionGuard<'_> {
        self.open.set(self.open.get() + 1);
        ConnectionGuard { connections: self }
    }

    pub fn count(&self) -> usize {
        self.open.get()
    }

    /// Waits until no connection is open, or `limit` passes. Returns how many are still open.
    pub async fn drain(&self, limit: Duration) -> usize {
        let all_closed = async {
            while self.open.get() > 0 {
                let listener = self.closed.listen();
                if self.open.get() == 0 {
                    break;
                }
                listener.await;
            }
        };
        future::or(all_closed, async {
            sleep(limit).await;
        })
        .await;
        self.open.get()
    }
}
