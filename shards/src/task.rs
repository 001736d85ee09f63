//! Tasks and timers on the current shard, in two task queues.
//!
//! The foreground queue (glommio's default, where `spawn_local` puts tasks) runs requests:
//! produce, tailing fetch, metadata. The background queue runs work that must not crowd them
//! out: catch-up reads, retention, compaction. When both have work the background queue gets
//! `BACKGROUND_SHARES` against the foreground's `FOREGROUND_SHARES`; when the foreground is
//! idle the background gets the whole core.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;

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

/// Runs `work` on every item on this shard, at most `limit` at once (each worker its own
/// task, taking the next item when its last is done), and returns when all are done: many
/// pieces of disk work (opening or closing partitions) with several in flight, not all.
pub async fn for_each_bounded<T: 'static, F: Future<Output = ()> + 'static>(
    items: impl IntoIterator<Item = T>,
    limit: usize,
    work: impl Fn(T) -> F + 'static,
) {
    let queue: Rc<RefCell<VecDeque<T>>> = Rc::new(RefCell::new(items.into_iter().collect()));
    let work = Rc::new(work);
    let workers = limit.max(1).min(queue.borrow().len());
    let workers: Vec<_> = (0..workers)
        .map(|_| {
            let (queue, work) = (Rc::clone(&queue), Rc::clone(&work));
            async move {
                loop {
                    let next = queue.borrow_mut().pop_front();
                    let Some(item) = next else { break };
                    work(item).await;
                }
            }
        })
        .collect();
    join_all(workers).await;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::run_one;

    #[test]
    fn bounded_work_runs_every_item_with_at_most_limit_in_flight() {
        let (done, most) = run_one(1 << 20, || async {
            let (in_flight, most, done) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)), Rc::new(RefCell::new(Vec::new())));
            let (f, m, d) = (Rc::clone(&in_flight), Rc::clone(&most), Rc::clone(&done));
            for_each_bounded(0..20u32, 3, move |item| {
                let (in_flight, most, done) = (Rc::clone(&f), Rc::clone(&m), Rc::clone(&d));
                async move {
                    in_flight.set(in_flight.get() + 1);
                    most.set(most.get().max(in_flight.get()));
                    sleep(Duration::from_millis(u64::from(item % 4))).await;
                    in_flight.set(in_flight.get() - 1);
                    done.borrow_mut().push(item);
                }
            })
            .await;
            let mut done = done.borrow().clone();
            done.sort_unstable();
            (done, most.get())
        });
        assert_eq!(done, (0..20).collect::<Vec<_>>());
        assert_eq!(most, 3);
    }

    #[test]
    fn no_items_and_a_zero_limit_are_fine() {
        let ran = run_one(1 << 20, || async {
            for_each_bounded(Vec::<u32>::new(), 4, |_| async {}).await;
            let ran = Rc::new(Cell::new(0));
            let r = Rc::clone(&ran);
            for_each_bounded(0..5u32, 0, move |_| {
                let r = Rc::clone(&r);
                async move { r.set(r.get() + 1) }
            })
            .await;
            ran.get()
        });
        assert_eq!(ran, 5);
    }
}
