//! The APIs and versions strand serves, and so advertises in ApiVersions. Nothing is listed
//! that is not implemented.
//!
//! Minimums follow Apache Kafka 4.0 (which dropped the old message formats), except where a
//! current client still sends an older version that is the same on the wire (see
//! [`codec_version`]); maximums are what current librdkafka, Java and kafka-python clients send
//! and strand encodes exactly.

use kafka_protocol::messages::ApiKey;

pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 13),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
];

/// Versions served with another version's codec because the two are the same on the wire:
/// (api, version, codec version). DescribeLogDirs v0 is v1 byte for byte ("Version 1 is the
/// same as version 0" in Kafka's DescribeLogDirsRequest.json; v1 only changed when throttled
/// responses are sent). Kafka 4.0 and the codec dropped v0, but kafka-python 2.3 sends nothing
/// else, so strand serves it.
const CODEC_ALIASES: &[(ApiKey, i16, i16)] = &[(ApiKey::DescribeLogDirs, 0, 1)];

/// The version whose codec decodes a `key` request at `version` and encodes its response.
pub fn codec_version(key: ApiKey, version: i16) -> i16 {
    CODEC_ALIASES.iter().find(|&&(k, v, _)| k == key && v == version).map_or(version, |&(_, _, codec)| codec)
}

/// The (min, max) versions served for `key`, if the API is served at all.
pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key).map(|&(_, min, max)| (min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_version_is_one_the_codec_knows() {
        for &(key, min, max) in SUPPORTED_APIS {
            let codec = key.valid_versions();
            let (min, max) = (codec_version(key, min), codec_version(key, max));
            assert!(codec.min <= min && max <= codec.max, "{key:?} {min}..{max} vs codec {codec}");
        }
    }

    #[test]
    fn an_aliased_version_has_the_same_headers_as_its_codec_version() {
        for &(key, version, codec) in CODEC_ALIASES {
            assert_eq!(key.request_header_version(version), key.request_header_version(codec), "{key:?}");
            assert_eq!(key.response_header_version(version), key.response_header_version(codec), "{key:?}");
            assert_eq!(codec_version(key, version), codec);
        }
        assert_eq!(codec_version(ApiKey::DescribeLogDirs, 4), 4);
        assert_eq!(codec_version(ApiKey::Fetch, 4), 4);
    }
}
