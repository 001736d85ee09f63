//! Framing a response: size prefix, response header (its version follows the API's), body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// Encodes `body` at `version` as a complete frame. Fails only if the body does not fit the
/// version (a bug: handlers build bodies for the version they were asked).
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, anyhow::Error> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(version);
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(i32::try_from(size)?);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    Ok(buf.freeze())
}
