//! Request decoding under hostile input, without a socket: whatever bytes arrive, decode_request
//! returns a request or an error; it never panics and never allocates by a length field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::hostile::{garbage_body, mutated_request, request_frame, valid_requests, with_version};
use kafka_protocol::messages::{ApiKey, MetadataRequest};
use proptest::prelude::*;
use strand::handlers::{decode_request, RequestBody, RequestError};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn mutated_produce_fetch_join_group_and_metadata_requests_decode_or_fail_cleanly(frame in mutated_request()) {
        // Either outcome is allowed; a panic or an abort fails the test. A request decoded is
        // the one its (possibly mutated) header names, and only ApiVersions skips its body.
        let key_and_version = frame.get(..4).map(|h| (i16::from_be_bytes([h[0], h[1]]), i16::from_be_bytes([h[2], h[3]])));
        if let Ok(request) = decode_request(Bytes::from(frame)) {
            prop_assert_eq!(Some((request.api_key as i16, request.header.request_api_version)), key_and_version);
            prop_assert_eq!(matches!(request.body, RequestBody::ApiVersions), request.api_key == ApiKey::ApiVersions);
        }
    }

    #[test]
    fn a_valid_header_with_a_garbage_body_decodes_or_fails_cleanly(frame in garbage_body()) {
        match decode_request(Bytes::from(frame)) {
            Ok(request) => prop_assert!(matches!(request.body, RequestBody::Kind(_))),
            Err(e) => prop_assert!(matches!(e, RequestError::Decode { .. } | RequestError::UnsupportedVersion { .. } | RequestError::Header { .. }), "{e}"),
        }
    }

    #[test]
    fn random_bytes_decode_or_fail_cleanly(frame in proptest::collection::vec(any::<u8>(), 8..512)) {
        let _ = decode_request(Bytes::from(frame));
    }

    #[test]
    fn an_unserved_version_is_refused(version in 13i16..i16::MAX) {
        let frame = with_version(request_frame(ApiKey::Metadata, 12, 1, &MetadataRequest::default()), version);
        let err = decode_request(Bytes::from(frame)).unwrap_err();
        prop_assert!(matches!(err, RequestError::UnsupportedVersion { api_key: ApiKey::Metadata, .. }), "{err}");
    }
}

#[test]
fn every_sample_request_decodes_unmutated() {
    for (api_key, frame) in valid_requests() {
        let request = decode_request(Bytes::from(frame)).unwrap();
        assert_eq!(request.api_key, api_key);
    }
}
