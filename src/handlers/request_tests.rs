use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{MetadataRequest, RequestHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable};

use super::*;

fn frame(api_key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let header = RequestHeader::default().with_request_api_key(api_key as i16).with_request_api_version(version);
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    buf.put_slice(body);
    buf.freeze()
}

#[test]
fn a_metadata_request_decodes_at_its_version() {
    let mut body = BytesMut::new();
    MetadataRequest::default().encode(&mut body, 12).unwrap();
    let request = decode_request(frame(ApiKey::Metadata, 12, &body)).unwrap();
    assert_eq!(request.version, 12);
    assert!(matches!(request.body, RequestBody::Kind(k) if matches!(*k, RequestKind::Metadata(_))));
}

#[test]
fn an_array_length_past_the_frame_is_a_decode_error_not_an_allocation() {
    // Metadata v0's body is one array; i32::MAX topics of ~100 bytes each would be ~200 GiB.
    let err = decode_request(frame(ApiKey::Metadata, 0, &i32::MAX.to_be_bytes())).unwrap_err();
    assert!(matches!(err, RequestError::Decode { api_key: ApiKey::Metadata, .. }), "{err}");
    // The flexible versions' compact arrays carry an unsigned varint length.
    let err = decode_request(frame(ApiKey::Metadata, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f])).unwrap_err();
    assert!(matches!(err, RequestError::Decode { .. }), "{err}");
}

#[test]
fn an_unserved_version_is_refused_but_api_versions_is_always_read() {
    let err = decode_request(frame(ApiKey::Metadata, 99, &[])).unwrap_err();
    assert!(matches!(err, RequestError::UnsupportedVersion { version: 99, .. }), "{err}");
    let request = decode_request(frame(ApiKey::ApiVersions, 99, &[])).unwrap();
    assert!(matches!(request.body, RequestBody::ApiVersions));
}

#[test]
fn an_unknown_api_key_is_a_header_error() {
    let mut raw = frame(ApiKey::Metadata, 0, &[]).to_vec();
    raw[..2].copy_from_slice(&999i16.to_be_bytes());
    assert!(matches!(decode_request(Bytes::from(raw)), Err(RequestError::Header { .. })));
}

#[test]
fn a_frame_shorter_than_a_header_is_a_header_error() {
    for len in 0..REQUEST_HEADER_MIN_BYTES {
        assert!(matches!(decode_request(Bytes::from(vec![0; len])), Err(RequestError::Header { .. })), "{len} bytes");
    }
}
