//! Running per-partition work concurrently on the current shard.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use strand_shards::task::spawn_local;

/// Runs every future as its own task on this shard and returns their outputs in order, so
/// partitions owned by different shards are worked on at once.
pub async fn join_all<T: 'static>(futures: Vec<impl Future<Output = T> + 'static>) -> Vec<T> {
    let tasks: Vec<_> = futures.into_iter().map(spawn_local).collect();
    let mut outputs = Vec::with_capacity(tasks.len());
    for task in tasks {
        outputs.push(task.await);
    }
    outputs
}

/// Resolves when the first of `futures` does (or never, if there are none).
pub async fn first_of(mut futures: Vec<Pin<Box<dyn Future<Output = ()>>>>) {
    futures_lite::future::poll_fn(|cx| {
        for future in &mut futures {
            if future.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
}
