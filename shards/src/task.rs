//! Tasks and timers on the current shard, in two task queues.
//!
//! The foreground queue (glommio's default, where `spawn_local` puts tasks) runs requests:
//! produce, tailing fetch, metadata. The background queue runs work that must not crowd them
//! out: catch-up reads, retention, compaction. When both have work the background queue gets
//! `BACKGROUND_SHARES` against the foreground's `FOREGROUND_SHARES`; when the foreground is
//! idle the background gets the whole core.

use std::cell::Cell;
use std::future::Future;

use glommio::{Latency, Shares, TaskQueueHandle};

pub use glommio::timer::{sleep, timeout, Timer};
pub use glommio::{spawn_local, yield_if_needed, Task};

/// glommio's default queue's shares.
pub const FOREGROUND_SHARES: usize = 1000;
/// The background queue's shares: a tenth of the foreground's.
pub const BACKGROUND_SHARES: usize = 100;

thread_local! {
    static BACKGROUND: Cell<Option<TaskQueueHandle>> = const { Cell::new(None) };
}

/// Spawns `future` on this shard's background queue.
pub fn spawn_background<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    let queue = BACKGROUND.with(|queue| match queue.get() {
        Some(handle) => handle,
        None => {
            let handle = glommio::executor().create_task_queue(
                Shares::Static(BACKGROUND_SHARES),
                Latency::NotImportant,
                "background",
            );
            queue.set(Some(handle));
            handle
        }
    });
    glommio::spawn_local_into(future, queue).expect("the background queue exists on this shard")
}

/// Runs every future as its own task on this shard and returns their outputs in order, so
/// work that waits on other shards or on the disk (partitions of one request) runs at once.
/// One future is awaited in place, without a task.
pub async fn join_all<T: 'static>(mut futures: Vec<impl Future<Output = T> + 'static>) -> Vec<T> {
    if futures.len() == 1 {
        let only = futures.pop().expect("one future");
        return vec![only.await];
    }
    let tasks: Vec<_> = futures.into_iter().map(spawn_local).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await);
    }
    outputs
}
