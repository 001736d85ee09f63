//! CreatePartitions in the controller: a topic grows to a larger partition count, with Kafka's
//! checks and error messages (ReplicationControlManager.createPartitions). The new partitions'
//! shards follow from `owner_shard`; each shard opens its new partitions when it applies the
//! image, so the answer means they are writable.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tracing::info;

use super::controller::{Controller, TopicError, TopicResult};
use super::{is_internal_topic, MetadataImage, TopicMeta};

/// Kafka's bound on the records one controller operation may write
/// (QuorumController.MAX_RECORDS_PER_USER_OP): a topic may grow by at most this many
/// partitions in one request.
const NEW_PARTITIONS_MAX: i32 = 10_000;

/// A topic to grow.
#[derive(Debug, Clone)]
pub struct NewPartitions {
    pub name: String,
    /// The partition count after the change.
    pub count: i32,
    /// Manual replica assignments, one broker list per new partition, if the client gave them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl Controller {
    pub(super) async fn create_partitions(&mut self, topics: Vec<NewPartitions>, validate_only: bool) -> Vec<TopicResult> {
        let mut next = (*self.image).clone();
        let mut results = Vec::with_capacity(topics.len());
        for topic in topics {
            let result = self.grown(&next, &topic);
            if let Ok(meta) = &result {
                next = next.with_topic((**meta).clone());
            }
            results.push(result);
        }
        if !validate_only && results.iter().any(Result::is_ok) {
            let before = Arc::clone(&self.image);
            if let Some(failure) = self.publish_or_fail(next).await {
                return failure.fail_all(results);
            }
            for meta in results.iter().flatten() {
                let from = before.topic(&meta.name).map_or(0, |t| t.partitions);
                info!(topic = %meta.name, from, partitions = meta.partitions, "partitions created");
            }
        }
        results
    }

    /// The topic after growing as `topic` asks, or why it cannot.
    fn grown(&self, image: &MetadataImage, topic: &NewPartitions) -> TopicResult {
        let Some(meta) = image.topic(&topic.name) else {
            return Err(TopicError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{}' does not exist", topic.name),
            ));
        };
        // Groups are placed on __consumer_offsets partitions by the partition count: growing
        // it would move groups away from their stored offsets. Kafka leaves this to the ACLs;
        // strand has no principals, so no one holds that right (as for deleting it).
        if is_internal_topic(&meta.name) {
            return Err(TopicError::new(
                ResponseError::TopicAuthorizationFailed,
                format!("internal topic '{}' cannot get more partitions", meta.name),
            ));
        }
        let current = meta.partitions;
        if topic.count == current {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if topic.count < current {
            return Err(TopicError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "The topic {} currently has {current} partition(s); {} would not be an increase.",
                    topic.name, topic.count
                ),
            ));
        }
        let additional = topic.count - current;
        if additional > NEW_PARTITIONS_MAX {
            return Err(TopicError::new(
                ResponseError::PolicyViolation,
                format!("adding {additional} partitions at once is more than the {NEW_PARTITIONS_MAX} allowed"),
            ));
        }
        if let Some(assignments) = &topic.assignments {
            check_assignments(assignments, additional, self.shard.config.node_id)?;
        }
        Ok(Arc::new(TopicMeta { partitions: topic.count, ..(**meta).clone() }))
    }
}

/// Manual assignments on a single node: one per new partition, each naming this node alone
/// (the replication factor of every strand topic is 1). Kafka's checks and messages.
fn check_assignments(assignments: &[Vec<i32>], additional: i32, node_id: i32) -> Result<(), TopicError> {
    let invalid = |message: String| Err(TopicError::new(ResponseError::InvalidReplicaAssignment, message));
    if usize::try_from(additional).ok() != Some(assignments.len()) {
        return invalid(format!(
            "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
            assignments.len()
        ));
    }
    for replicas in assignments {
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return invalid("The manual partition assignment includes an empty replica list.".into());
        }
        if let Some(unknown) = sorted.iter().find(|&&id| id != node_id) {
            return invalid(format!(
                "The manual partition assignment includes broker {unknown}, but no such broker is registered."
            ));
        }
        if sorted.len() > 1 {
            return invalid(format!("The manual partition assignment includes the broker {node_id} more than once."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_must_name_this_node_once_per_new_partition() {
        assert!(check_assignments(&[vec![0], vec![0]], 2, 0).is_ok());
        let message = |r: Result<(), TopicError>| r.unwrap_err().message;
        assert!(message(check_assignments(&[vec![0]], 2, 0)).contains("only 1 assignment(s)"));
        assert!(message(check_assignments(&[vec![]], 1, 0)).contains("empty replica list"));
        assert!(message(check_assignments(&[vec![3]], 1, 0)).contains("broker 3, but no such broker"));
        assert!(message(check_assignments(&[vec![0, 0]], 1, 0)).contains("more than once"));
    }
}
