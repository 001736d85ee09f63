//! From a request frame to a decoded request, with no socket and no shard: the one place a
//! client's bytes become typed values, so it is the place property tests aim at.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::decode_request_header_from_buffer;

use crate::protocol::{codec_version, supported_range};

/// Why a request closes its connection instead of getting a response.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request header does not decode: {source}")]
    Header {
        #[source]
        source: anyhow::Error,
    },
    #[error("{api_key:?} v{version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("{api_key:?} v{version} body does not decode: {source}")]
    Decode {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
    #[error("encoding {api_key:?} v{version} response: {source}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        #[source]
        source: anyhow::Error,
    },
}

/// The smallest request: api_key, api_version, correlation_id. The header decoder reads the
/// first two fields before checking any length, so shorter input never reaches it.
pub const REQUEST_HEADER_MIN_BYTES: usize = 8;

/// A decoded request. `version` is the one whose codec read the body and writes the response.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub body: RequestBody,
}

#[derive(Debug)]
pub enum RequestBody {
    /// ApiVersions is answered at any version, even one strand does not know, so its body is
    /// not read: Kafka answers an unknown version with UNSUPPORTED_VERSION and its ranges.
    ApiVersions,
    Kind(Box<RequestKind>),
}

impl Request {
    /// The response bytes a connection holds room for while this request runs: a Fetch's
    /// max_bytes (or its partitions' sum, when smaller); other responses are small.
    pub fn response_bytes_reserved(&self) -> usize {
        match &self.body {
            RequestBody::Kind(kind) => match kind.as_ref() {
                RequestKind::Fetch(fetch) => {
                    let partitions: i64 = fetch.topics.iter().flat_map(|t| &t.partitions).map(|p| i64::from(p.partition_max_bytes.max(0))).sum();
                    usize::try_from(partitions.min(i64::from(fetch.max_bytes))).unwrap_or(0)
                }
                _ => 0,
            },
            RequestBody::ApiVersions => 0,
        }
    }
}

/// Decodes a frame (the bytes after the size prefix). An unknown api key, a version strand does
/// not serve, or a body that does not decode is an error: Kafka closes such a connection.
pub fn decode_request(mut frame: Bytes) -> Result<Request, RequestError> {
    if frame.len() < REQUEST_HEADER_MIN_BYTES {
        return Err(RequestError::Header { source: anyhow::anyhow!("{} bytes is shorter than any request header", frame.len()) });
    }
    let header = decode_request_header_from_buffer(&mut frame).map_err(|source| RequestError::Header { source })?;
    let api_key = ApiKey::try_from(header.request_api_key)
        .map_err(|()| RequestError::Header { source: anyhow::anyhow!("unknown api key {}", header.request_api_key) })?;
    let requested = header.request_api_version;
    if api_key == ApiKey::ApiVersions {
        return Ok(Request { header, api_key, version: requested, body: RequestBody::ApiVersions });
    }
    match supported_range(api_key) {
        Some((min, max)) if (min..=max).contains(&requested) => {}
        _ => return Err(RequestError::UnsupportedVersion { api_key, version: requested }),
    }
    let version = codec_version(api_key, requested);
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|source| RequestError::Decode { api_key, version, source })?;
    Ok(Request { header, api_key, version, body: RequestBody::Kind(Box::new(body)) })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
