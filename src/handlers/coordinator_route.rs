//! Routing a group request to the shard that coordinates the group: the one owning the
//! group's __consumer_offsets partition (shared by the group API handlers).

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use strand_shards::ShardId;

use crate::cluster::{owner_shard, GROUP_METADATA_TOPIC_NAME};
use crate::group::{offsets_partition_for, GroupRequest, GroupResponse};
use crate::shard::{ShardRequest, ShardState};

/// The __consumer_offsets partition of `group_id` and its shard; COORDINATOR_NOT_AVAILABLE
/// while the topic does not exist.
pub fn coordinator_of(shard: &ShardState, group_id: &str) -> Result<(i32, ShardId), ResponseError> {
    let image = shard.image();
    let topic = image.topic(GROUP_METADATA_TOPIC_NAME).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let partition = offsets_partition_for(group_id, topic.partitions);
    Ok((partition, owner_shard(GROUP_METADATA_TOPIC_NAME, partition, shard.shard_count)))
}

/// Sends `request` for `group_id` to its coordinating shard and awaits the answer.
pub async fn call_coordinator(shard: &Rc<ShardState>, group_id: &str, request: GroupRequest) -> Result<GroupResponse, ResponseError> {
    let (partition, owner) = coordinator_of(shard, group_id)?;
    // A stopped shard is no coordinator any more: the client looks for it again.
    shard
        .call(owner, |reply| ShardRequest::Group { partition, request, reply })
        .await
        .map_err(|_| ResponseError::NotCoordinator)
}

/// Sends `request` to every shard (ListGroups) and returns their answers.
pub async fn call_every_coordinator(shard: &Rc<ShardState>, make: impl Fn() -> GroupRequest) -> Vec<Result<GroupResponse, ResponseError>> {
    let mut answers = Vec::with_capacity(shard.shard_count);
    for index in 0..shard.shard_count {
        let to = ShardId(u16::try_from(index).expect("shard count fits u16"));
        let request = make();
        let answer = shard
            .call(to, |reply| ShardRequest::Group { partition: -1, request, reply })
            .await
            .map_err(|_| ResponseError::NotCoordinator);
        answers.push(answer);
    }
    answers
}

/// The answer to an unexpected response variant: a bug, reported as UNKNOWN_SERVER_ERROR.
pub fn mismatched(api: &str) -> ResponseError {
    tracing::error!(api, "the coordinator answered with another API's response");
    ResponseError::UnknownServerError
}
