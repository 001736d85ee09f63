//! Cluster metadata: the topic image every shard reads, where partitions are placed, and the
//! controller (on shard 0) that changes the image: topics created, deleted, grown, and their
//! configs altered.

mod controller;
mod metadata_image;
mod new_partitions;
mod placement;
mod topic_config_change;
mod topic_name;

pub use controller::{Controller, ControllerError, ControllerRequest, NewTopic, TopicError, TopicRef, TopicResult};
pub use new_partitions::NewPartitions;
pub use topic_config_change::{ConfigAlteration, TopicConfigChange};
pub use metadata_image::{MetadataImage, TopicMeta};
pub use placement::owner_shard;
pub use topic_name::{
    invalid_topic_name, is_internal_topic, GROUP_METADATA_TOPIC_NAME, TRANSACTION_STATE_TOPIC_NAME,
};
