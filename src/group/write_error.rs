//! Why records of the coordinator could not be made durable.

use crate::partition::PartitionError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The partition is not (or no longer) writable here: offline, closing, or not owned.
    #[error("__consumer_offsets partition is not writable here: {0}")]
    NotCoordinator(String),
    /// The batch is over the partition's max.message.bytes.
    #[error("records are too large for __consumer_offsets: {0}")]
    TooLarge(String),
    /// Anything else the append refused (a bug: the coordinator builds its own batches).
    #[error("appending to __consumer_offsets failed: {0}")]
    Refused(String),
}

impl WriteError {
    pub fn from_append(error: &PartitionError) -> Self {
        match error {
            PartitionError::MessageTooLarge { .. } => Self::TooLarge(error.to_string()),
            PartitionError::Log(_) | PartitionError::Shard(_) | PartitionError::UnknownTopicOrPartition => {
                Self::NotCoordinator(error.to_string())
            }
            _ => Self::Refused(error.to_string()),
        }
    }
}
