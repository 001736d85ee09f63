//! The one place where strand's errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::group::WriteError;
use crate::log::{LogError, SequenceError};
use crate::partition::PartitionError;
use crate::protocol::record_batch::BatchError;

pub fn partition_error_code(error: &PartitionError) -> ResponseError {
    match error {
        PartitionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        PartitionError::Batch(BatchError::UnsupportedMagic(_)) => ResponseError::UnsupportedForMessageFormat,
        PartitionError::Batch(_) => ResponseError::CorruptMessage,
        PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        PartitionError::InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
        PartitionError::InvalidRecord(_) => ResponseError::InvalidRecord,
        PartitionError::PolicyViolation(_) => ResponseError::PolicyViolation,
        PartitionError::Log(log) => log_error_code(log),
        // The owning shard is stopping: the client retries, as after a leader move.
        PartitionError::Shard(_) => ResponseError::NotLeaderOrFollower,
    }
}

fn log_error_code(error: &LogError) -> ResponseError {
    match error {
        LogError::Io(_) | LogError::Offline(_) | LogError::OutOfSpace(_) | LogError::Corrupt { .. } => {
            ResponseError::KafkaStorageError
        }
        LogError::Closing => ResponseError::NotLeaderOrFollower,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Decode(_) => ResponseError::CorruptMessage,
        LogError::Sequence(SequenceError::InvalidProducerEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        LogError::Sequence(SequenceError::OutOfOrder { .. }) => ResponseError::OutOfOrderSequenceNumber,
    }
}

/// The code a coordinator answers when its records could not be made durable (Kafka's
/// GroupCoordinatorService.handleOperationException and appendGroupMetadataErrorToResponseError):
/// the client looks for the coordinator again, or gives up on an oversized request.
pub fn write_error_code(error: &WriteError) -> ResponseError {
    match error {
        WriteError::NotCoordinator(_) => ResponseError::NotCoordinator,
        WriteError::TooLarge(_) | WriteError::Refused(_) => ResponseError::UnknownServerError,
    }
}

/// The code of a result: 0 for success.
pub fn code_of<T>(result: &Result<T, PartitionError>) -> i16 {
    result.as_ref().err().map_or(0, |e| partition_error_code(e).code())
}
