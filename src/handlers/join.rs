//! Running per-partition work concurrently on the current shard.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

pub use strand_shards::task::join_all;
use strand_shards::{Reply, ShardId};

use crate::partition::PartitionError;
use crate::shard::{ShardRequest, ShardState};

/// `items` grouped by the shard that owns each (shards in the order they first appear, items
/// in theirs): what one message per owning shard carries.
pub fn group_by_owner<T>(items: impl IntoIterator<Item = (ShardId, T)>) -> Vec<(ShardId, Vec<T>)> {
    let mut groups: Vec<(ShardId, Vec<T>)> = Vec::new();
    for (owner, item) in items {
        match groups.iter_mut().find(|(shard, _)| *shard == owner) {
            Some((_, group)) => group.push(item),
            None => groups.push((owner, vec![item])),
        }
    }
    groups
}

/// How a shard answers a request about one partition.
type PartitionReply<T> = Reply<Result<T, PartitionError>>;

/// Asks the shard owning each of `partitions` (topic, partition, argument), all at once, with
/// the request `ask` makes; the answers come back in the same order. A partition the metadata
/// image does not have is UNKNOWN_TOPIC_OR_PARTITION, asked of no shard.
pub async fn ask_owners<A: 'static, T: 'static>(
    shard: &Rc<ShardState>,
    partitions: impl IntoIterator<Item = (String, i32, A)>,
    ask: fn(String, i32, A, PartitionReply<T>) -> ShardRequest,
) -> Vec<Result<T, PartitionError>> {
    let image = shard.image();
    let work = partitions
        .into_iter()
        .map(|(topic, partition, argument)| {
            let known = image.topic(&topic).is_some_and(|t| (0..t.partitions).contains(&partition));
            let shard = Rc::clone(shard);
            async move {
                if !known {
                    return Err(PartitionError::UnknownTopicOrPartition);
                }
                let owner = shard.owner(&topic, partition);
                shard.call(owner, |reply| ask(topic, partition, argument, reply)).await?
            }
        })
        .collect();
    join_all(work).await
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
