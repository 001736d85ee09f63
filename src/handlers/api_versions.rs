//! ApiVersions: what strand serves. A request at a version strand does not know gets the v0
//! response with UNSUPPORTED_VERSION and the list, so the client can retry at a version both
//! know, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use crate::protocol::{supported_range, SUPPORTED_APIS};

/// The response and the version to encode it at.
pub fn handle(version: i16) -> (ApiVersionsResponse, i16) {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max)
        })
        .collect();
    let mut response = ApiVersionsResponse::default().with_api_keys(api_keys);
    let (_, max) = supported_range(ApiKey::ApiVersions).expect("ApiVersions is served");
    if (0..=max).contains(&version) {
        (response, version)
    } else {
        response.error_code = ResponseError::UnsupportedVersion.code();
        (response, 0)
    }
}
