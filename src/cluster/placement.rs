//! Which shard owns a partition: deterministic, from the topic name and partition index, so
//! every shard computes the same owner without asking. Consecutive partitions of a topic land
//! on consecutive shards.

use strand_shards::ShardId;

pub fn owner_shard(topic: &str, partition: i32, shard_count: usize) -> ShardId {
    let seed = u64::from(crc32c::crc32c(topic.as_bytes()));
    let index = (seed + u64::from(partition.unsigned_abs())) % shard_count as u64;
    ShardId(u16::try_from(index).expect("shard count fits u16"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_a_topic_spread_over_all_shards() {
        let owners: Vec<ShardId> = (0..4).map(|p| owner_shard("orders", p, 2)).collect();
        assert_ne!(owners[0], owners[1]);
        assert_eq!(owners[0], owners[2]);
        assert_eq!(owner_shard("orders", 1, 2), owners[1]);
    }
}
