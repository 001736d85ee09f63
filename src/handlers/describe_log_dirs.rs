//! DescribeLogDirs: strand's one data directory (log.dirs) with the on-disk size of each
//! partition, gathered from every shard; offset lag 0 and no future logs (strand never moves a
//! partition between directories). From v4 also the filesystem's total and usable bytes.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use strand_shards::ShardId;
use tracing::warn;

use super::join::join_all;
use super::str_bytes;
use crate::shard::{PartitionSize, ShardRequest, ShardState};

pub async fn handle(shard: &Rc<ShardState>, request: DescribeLogDirsRequest, _version: i16) -> DescribeLogDirsResponse {
    // Null asks for every partition; a list asks for those of its partitions that exist here.
    let wanted: Option<HashSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p))).collect()
    });
    let log_dirs = &shard.config.log_dirs;
    let log_dir = std::path::absolute(log_dirs).unwrap_or_else(|_| log_dirs.clone());
    let result = DescribeLogDirsResult::default().with_log_dir(str_bytes(&log_dir.to_string_lossy()));
    let space = match strand_io::fs::filesystem_space(log_dirs).await {
        Ok(space) => space,
        Err(e) => {
            warn!(log_dir = %log_dir.display(), error = %e, "describing the log directory failed");
            let failed = result.with_error_code(ResponseError::KafkaStorageError.code());
            return DescribeLogDirsResponse::default().with_results(vec![failed]);
        }
    };
    let sizes = partition_sizes(shard).await;
    let result = result
        .with_topics(topics(sizes, wanted.as_ref()))
        .with_total_bytes(i64::try_from(space.total_bytes).unwrap_or(i64::MAX))
        .with_usable_bytes(i64::try_from(space.usable_bytes).unwrap_or(i64::MAX));
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Every partition's size, from every shard at once.
async fn partition_sizes(shard: &Rc<ShardState>) -> Vec<PartitionSize> {
    let asks = (0..shard.shard_count).map(|index| {
        let shard = Rc::clone(shard);
        let to = ShardId(u16::try_from(index).expect("shard count fits u16"));
        async move { shard.call(to, |reply| ShardRequest::PartitionSizes { reply }).await.unwrap_or_default() }
    });
    join_all(asks.collect()).await.into_iter().flatten().collect()
}

/// The sizes grouped by topic, partitions in order, restricted to `wanted` if given.
fn topics(sizes: Vec<PartitionSize>, wanted: Option<&HashSet<(String, i32)>>) -> Vec<DescribeLogDirsTopic> {
    let mut by_topic: BTreeMap<String, Vec<(i32, u64)>> = BTreeMap::new();
    for size in sizes {
        if wanted.is_none_or(|w| w.contains(&(size.topic.clone(), size.partition))) {
            by_topic.entry(size.topic).or_default().push((size.partition, size.size_bytes));
        }
    }
    by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_unstable();
            let partitions = partitions
                .into_iter()
                .map(|(index, size_bytes)| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(index)
                        .with_partition_size(i64::try_from(size_bytes).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false)
                })
                .collect();
            DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(topic: &str, partition: i32, size_bytes: u64) -> PartitionSize {
        PartitionSize { topic: topic.into(), partition, size_bytes }
    }

    #[test]
    fn sizes_are_grouped_by_topic_in_partition_order_and_filtered() {
        let sizes = vec![size("b", 1, 10), size("a", 0, 5), size("b", 0, 7)];
        let all = topics(sizes.clone(), None);
        let shape: Vec<(&str, Vec<(i32, i64)>)> = all
            .iter()
            .map(|t| (t.name.as_str(), t.partitions.iter().map(|p| (p.partition_index, p.partition_size)).collect()))
            .collect();
        assert_eq!(shape, [("a", vec![(0, 5)]), ("b", vec![(0, 7), (1, 10)])]);
        let wanted = HashSet::from([("b".to_owned(), 1), ("c".to_owned(), 0)]);
        let some = topics(sizes, Some(&wanted));
        assert_eq!(some.len(), 1);
        assert_eq!(some[0].partitions[0].partition_index, 1);
    }
}
