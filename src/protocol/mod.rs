//! The Kafka wire protocol at strand's edge: which API versions are served, request framing and
//! response encoding (codecs are the kafka-protocol crate's), Kafka error codes, the record
//! batch v2 header and the validation of produced records.

mod decompress;
pub mod error_code;
pub mod record_batch;
pub mod record_validator;
mod response;
mod supported;

pub use response::{encode_response, ResponseFrame};
pub use supported::{codec_version, supported_range, SUPPORTED_APIS};
