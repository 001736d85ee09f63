//! The group requests that cross from the shard that read them to the shard coordinating the
//! group, and their answers. Both sides are plain owned data (Send); the parked state stays
//! on the coordinating shard.

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{JoinGroupResponse, LeaveGroupResponse, OffsetDeleteResponse, SyncGroupResponse};

use super::{CommitParams, CommitResult, JoinParams, LeavingMember, SyncParams};

pub enum GroupRequest {
    Join(JoinParams),
    Sync(SyncParams),
    Heartbeat { group_id: String, member_id: String, group_instance_id: Option<String>, generation_id: i32 },
    Leave { group_id: String, members: Vec<LeavingMember> },
    OffsetCommit(CommitParams),
    /// `topics` None: every committed offset of the group.
    OffsetFetch { group_id: String, topics: Option<Vec<(String, Vec<i32>)>> },
    OffsetDelete { group_id: String, topics: Vec<(String, Vec<i32>)> },
    Describe { group_id: String, version: i16 },
    Delete { group_ids: Vec<String> },
    /// Every group of the shard (not of one partition).
    List { states_filter: Vec<String>, types_filter: Vec<String> },
}

impl GroupRequest {
    /// Whether handling it may queue records: such requests wait for room in the queue first.
    pub fn writes(&self) -> bool {
        matches!(self, Self::Join(_) | Self::Sync(_) | Self::OffsetCommit(_) | Self::OffsetDelete { .. } | Self::Delete { .. })
    }
}

pub enum GroupResponse {
    Join(JoinGroupResponse),
    Sync(SyncGroupResponse),
    /// The error code (0: none).
    Heartbeat(i16),
    Leave(LeaveGroupResponse),
    OffsetCommit(CommitResult),
    OffsetFetch(OffsetFetchResponseGroup),
    OffsetDelete(OffsetDeleteResponse),
    Describe(DescribedGroup),
    /// Each group's error code, in request order.
    Delete(Vec<(String, i16)>),
    /// The groups, or the error code that replaces them.
    List(Result<Vec<ListedGroup>, i16>),
}
