//! One handler per Kafka API. [`decode_request`] turns a frame into a typed request (pure, no
//! shard); [`dispatch`] runs its handler on the shard that read it and encodes the response.

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
mod request;
mod sync_group;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::protocol::{encode_response, ResponseFrame};
use crate::shard::ShardState;

pub use request::{decode_request, Request, RequestBody, RequestError, REQUEST_HEADER_MIN_BYTES};

/// Runs one decoded request. `Ok(None)` means no response is sent (Produce with acks=0).
/// `client_host` is the peer's address as Kafka shows it ("/127.0.0.1").
pub async fn dispatch(shard: Rc<ShardState>, request: Request, client_host: Rc<str>) -> Result<Option<ResponseFrame>, RequestError> {
    let Request { header, api_key, version, body } = request;
    let correlation_id = header.correlation_id;
    let body = match body {
        RequestBody::ApiVersions => {
            let (response, version) = api_versions::handle(version);
            return encode(api_key, version, correlation_id, &response, &[]).map(Some);
        }
        RequestBody::Kind(body) => *body,
    };
    macro_rules! answer {
        ($handled:expr) => {
            encode(api_key, version, correlation_id, &$handled.await, &[]).map(Some)
        };
    }
    match body {
        RequestKind::Metadata(r) => answer!(metadata::handle(&shard, r, version)),
        RequestKind::CreateTopics(r) => answer!(create_topics::handle(&shard, r, version)),
        RequestKind::DeleteTopics(r) => answer!(delete_topics::handle(&shard, r, version)),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let response = produce::handle(&shard, r, version).await;
            if acks == 0 {
                return Ok(None);
            }
            encode(api_key, version, correlation_id, &response, &[]).map(Some)
        }
        RequestKind::Fetch(r) => {
            let response = fetch::handle(&shard, r, version).await;
            // The record batches go out as they are, not copied into the encoded frame.
            let records: Vec<Bytes> =
                response.responses.iter().flat_map(|t| &t.partitions).filter_map(|p| p.records.clone()).collect();
            encode(api_key, version, correlation_id, &response, &records).map(Some)
        }
        RequestKind::ListOffsets(r) => answer!(list_offsets::handle(&shard, r, version)),
        RequestKind::FindCoordinator(r) => answer!(find_coordinator::handle(&shard, r, version)),
        RequestKind::JoinGroup(r) => {
            let client_id = header.client_id.as_deref().unwrap_or_default();
            answer!(join_group::handle(&shard, r, version, client_id, &client_host))
        }
        RequestKind::SyncGroup(r) => answer!(sync_group::handle(&shard, r, version)),
        RequestKind::Heartbeat(r) => answer!(heartbeat::handle(&shard, r, version)),
        RequestKind::LeaveGroup(r) => answer!(leave_group::handle(&shard, r, version)),
        RequestKind::OffsetCommit(r) => answer!(offset_commit::handle(&shard, r, version)),
        RequestKind::OffsetFetch(r) => answer!(offset_fetch::handle(&shard, r, version)),
        RequestKind::OffsetDelete(r) => answer!(offset_delete::handle(&shard, r, version)),
        RequestKind::DescribeGroups(r) => answer!(describe_groups::handle(&shard, r, version)),
        RequestKind::ListGroups(r) => answer!(list_groups::handle(&shard, r, version)),
        RequestKind::DeleteGroups(r) => answer!(delete_groups::handle(&shard, r, version)),
        RequestKind::InitProducerId(r) => answer!(init_producer_id::handle(&shard, r, version)),
        RequestKind::DescribeProducers(r) => answer!(describe_producers::handle(&shard, r, version)),
        RequestKind::CreatePartitions(r) => answer!(create_partitions::handle(&shard, r, version)),
        RequestKind::DescribeConfigs(r) => answer!(describe_configs::handle(&shard, r, version)),
        RequestKind::AlterConfigs(r) => answer!(alter_configs::handle(&shard, r, version)),
        RequestKind::IncrementalAlterConfigs(r) => answer!(incremental_alter_configs::handle(&shard, r, version)),
        RequestKind::DeleteRecords(r) => answer!(delete_records::handle(&shard, r, version)),
        RequestKind::DescribeCluster(r) => answer!(describe_cluster::handle(&shard, r, version)),
        RequestKind::DescribeLogDirs(r) => answer!(describe_log_dirs::handle(&shard, r, version)),
        // decode_request only decodes what SUPPORTED_APIS lists, and each of those is above.
        _ => Err(RequestError::UnsupportedVersion { api_key, version }),
    }
}

fn encode<R: kafka_protocol::protocol::Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
    shared: &[Bytes],
) -> Result<ResponseFrame, RequestError> {
    encode_response(api_key, version, correlation_id, body, shared).map_err(|source| RequestError::Encode { api_key, version, source })
}

/// kafka-protocol's string type from a Rust string.
fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_owned())
}
