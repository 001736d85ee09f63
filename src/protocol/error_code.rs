//! The one place where strand's errors become Kafka error codes.

use kafka_protocol::error::ResponseError;

use crate::group::WriteError;
use crate::log::{LogError, SequenceError};
use crate::partition::PartitionError;
use crate::protocol::record_batch::BatchError;
use crate::protocol::record_validator::RecordError;

pub fn partition_error_code(error: &PartitionError) -> ResponseError {
    match error {
        PartitionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        PartitionError::Batch(batch) => batch_error_code(batch),
        PartitionError::Record(record) => record_error_code(record),
        PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        PartitionError::InvalidRequiredAcks(_) => ResponseError::InvalidRequiredAcks,
        PartitionError::PolicyViolation(_) => ResponseError::PolicyViolation,
        PartitionError::Log(log) => log_error_code(log),
        // The owning shard is stopping: the client retries, as after a leader move.
        PartitionError::Shard(_) => ResponseError::NotLeaderOrFollower,
    }
}

/// Kafka answers CORRUPT_MESSAGE where the bytes are damaged (a CRC mismatch, a batch_length
/// too small for a header: DefaultRecordBatch.isValid, ByteBufferLogInputStream.nextBatchSize)
/// and INVALID_RECORD where they are whole but break a rule: ProduceRequest.validateRecords
/// (magic other than 2, no whole batch) and LogValidator.validateBatch (count against offsets,
/// control batches, sequences).
fn batch_error_code(error: &BatchError) -> ResponseError {
    match error {
        BatchError::Corrupt | BatchError::CrcMismatch => ResponseError::CorruptMessage,
        BatchError::UnsupportedMagic(_)
        | BatchError::InvalidRecordCount { .. }
        | BatchError::Incomplete
        | BatchError::ControlBatch
        | BatchError::InvalidSequence { .. } => ResponseError::InvalidRecord,
    }
}

/// LogValidator's record errors: INVALID_TIMESTAMP for timestamps, INVALID_RECORD for the rest
/// (DefaultRecord.readFrom's "invalid record structure", a compacted topic's missing key).
/// Kafka itself answers UNKNOWN_SERVER_ERROR when a compressed batch fails to decompress (a
/// KafkaException escapes the validator); strand answers INVALID_RECORD, as for any other
/// record a producer built wrong, so clients do not retry it. Records that decompress past
/// message.decompressed.max.bytes get MESSAGE_TOO_LARGE, on which the Java producer splits the
/// batch and retries.
fn record_error_code(error: &RecordError) -> ResponseError {
    match error {
        RecordError::Timestamp { .. } | RecordError::LogAppendTimeFromProducer => ResponseError::InvalidTimestamp,
        RecordError::DecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
        RecordError::Malformed { .. }
        | RecordError::OffsetDelta { .. }
        | RecordError::MissingKey { .. }
        | RecordError::UnknownCompression(_)
        | RecordError::Decompress(_) => ResponseError::InvalidRecord,
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
