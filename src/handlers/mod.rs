//! One handler per Kafka API. [`dispatch`] decodes a request body at its version, runs the
//! handler on the shard that read the request, and encodes the response frame.

mod alter_configs;
mod api_versions;
mod config_resource;
mod coordinator_route;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_producers;
mod describe_log_dirs;
mod fetch;
mod incremental_alter_configs;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::protocol::{codec_version, encode_response, supported_range};
use crate::shard::ShardState;

/// Why a request closes its connection instead of getting a response.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
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

/// Runs one request. `Ok(None)` means no response is sent (Produce with acks=0).
/// `client_host` is the peer's address as Kafka shows it ("/127.0.0.1").
pub async fn dispatch(
    shard: Rc<ShardState>,
    api_key: ApiKey,
    header: RequestHeader,
    mut body: Bytes,
    client_host: Rc<str>,
) -> Result<Option<Bytes>, RequestError> {
    let correlation_id = header.correlation_id;
    if api_key == ApiKey::ApiVersions {
        let version = header.request_api_version;
        let (response, version) = api_versions::handle(version);
        return encode(api_key, version, correlation_id, &response).map(Some);
    }
    match supported_range(api_key) {
        Some((min, max)) if (min..=max).contains(&header.request_api_version) => {}
        _ => return Err(RequestError::UnsupportedVersion { api_key, version: header.request_api_version }),
    }
    // From here on, the version whose codec reads the body and writes the response.
    let version = codec_version(api_key, header.request_api_version);
    macro_rules! decode {
        ($ty:ty) => {
            <$ty>::decode(&mut body, version).map_err(|source| RequestError::Decode { api_key, version, source })?
        };
    }
    use kafka_protocol::messages as m;
    match api_key {
        ApiKey::Metadata => {
            let response = metadata::handle(&shard, decode!(m::MetadataRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::CreateTopics => {
            let response = create_topics::handle(&shard, decode!(m::CreateTopicsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DeleteTopics => {
            let response = delete_topics::handle(&shard, decode!(m::DeleteTopicsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::Produce => {
            let request = decode!(m::ProduceRequest);
            let acks = request.acks;
            let response = produce::handle(&shard, request, version).await;
            if acks == 0 {
                return Ok(None);
            }
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::Fetch => {
            let response = fetch::handle(&shard, decode!(m::FetchRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::ListOffsets => {
            let response = list_offsets::handle(&shard, decode!(m::ListOffsetsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::FindCoordinator => {
            let response = find_coordinator::handle(&shard, decode!(m::FindCoordinatorRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::JoinGroup => {
            let client_id = header.client_id.as_deref().unwrap_or_default();
            let request = decode!(m::JoinGroupRequest);
            let response = join_group::handle(&shard, request, version, client_id, &client_host).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::SyncGroup => {
            let response = sync_group::handle(&shard, decode!(m::SyncGroupRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::Heartbeat => {
            let response = heartbeat::handle(&shard, decode!(m::HeartbeatRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::LeaveGroup => {
            let response = leave_group::handle(&shard, decode!(m::LeaveGroupRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::OffsetCommit => {
            let response = offset_commit::handle(&shard, decode!(m::OffsetCommitRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::OffsetFetch => {
            let response = offset_fetch::handle(&shard, decode!(m::OffsetFetchRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::OffsetDelete => {
            let response = offset_delete::handle(&shard, decode!(m::OffsetDeleteRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DescribeGroups => {
            let response = describe_groups::handle(&shard, decode!(m::DescribeGroupsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::ListGroups => {
            let response = list_groups::handle(&shard, decode!(m::ListGroupsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DeleteGroups => {
            let response = delete_groups::handle(&shard, decode!(m::DeleteGroupsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::InitProducerId => {
            let response = init_producer_id::handle(&shard, decode!(m::InitProducerIdRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DescribeProducers => {
            let response = describe_producers::handle(&shard, decode!(m::DescribeProducersRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::CreatePartitions => {
            let response = create_partitions::handle(&shard, decode!(m::CreatePartitionsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DescribeConfigs => {
            let response = describe_configs::handle(&shard, decode!(m::DescribeConfigsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::AlterConfigs => {
            let response = alter_configs::handle(&shard, decode!(m::AlterConfigsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::IncrementalAlterConfigs => {
            let request = decode!(m::IncrementalAlterConfigsRequest);
            let response = incremental_alter_configs::handle(&shard, request, version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DeleteRecords => {
            let response = delete_records::handle(&shard, decode!(m::DeleteRecordsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DescribeCluster => {
            let response = describe_cluster::handle(&shard, decode!(m::DescribeClusterRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        ApiKey::DescribeLogDirs => {
            let response = describe_log_dirs::handle(&shard, decode!(m::DescribeLogDirsRequest), version).await;
            encode(api_key, version, correlation_id, &response).map(Some)
        }
        _ => Err(RequestError::UnsupportedVersion { api_key, version }),
    }
}

fn encode<R: kafka_protocol::protocol::Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, RequestError> {
    encode_response(api_key, version, correlation_id, body).map_err(|source| RequestError::Encode { api_key, version, source })
}

/// kafka-protocol's string type from a Rust string.
fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_owned())
}
