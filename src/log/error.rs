//! Errors of a partition log, mapped to Kafka error codes in `protocol::error_code`.

use strand_io::IoError;

use super::LogOffsets;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("storage: {0}")]
    Io(#[from] IoError),
    #[error("partition log is offline after a storage failure: {0}")]
    Offline(String),
    #[error("out of disk space: {0}")]
    OutOfSpace(String),
    #[error("partition log is closing")]
    Closing,
    #[error("offset {offset} is outside [{}, {}]", .offsets.log_start_offset, .offsets.high_watermark)]
    OffsetOutOfRange { offset: i64, offsets: LogOffsets },
    #[error("stored batch does not decode: {0}")]
    Decode(String),
    #[error(transparent)]
    Sequence(#[from] super::producer_state::SequenceError),
    #[error("stored batch at offset {offset} fails its CRC check: {reason}")]
    Corrupt { offset: i64, reason: String },
}
