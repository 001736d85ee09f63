//! Consumer groups: the group coordinator of the Kafka "classic" rebalance protocol and the
//! committed offsets, as Kafka runs them (JoinGroup/SyncGroup/Heartbeat/LeaveGroup,
//! OffsetCommit/OffsetFetch/OffsetDelete, DescribeGroups/ListGroups/DeleteGroups).
//!
//! Placement: a group lives on the shard that owns its `__consumer_offsets` partition
//! ([`offsets_partition_for`]); requests reaching another shard cross to it. On that shard the
//! [`GroupCoordinator`] shell owns a synchronous [`GroupManager`] (the state machine), the
//! shard's timer task, and one writer task per partition that appends the manager's records
//! (Kafka's record formats, [`records`]) and runs what waits on them once they are durable.
//! At start each partition is loaded from its log before its groups are served.

mod consumer_protocol;
mod coordinator;
#[allow(clippy::module_inception)]
mod group;
mod group_protocol;
mod group_state;
mod manager;
mod member;
mod offset_store;
mod placement;
pub mod records;
mod request;
mod response_slot;
mod timers;
mod write_error;

pub use coordinator::GroupCoordinator;
pub use group::{ClassicGroup, StoredGroup};
pub use group_state::GroupState;
pub use manager::{CommitParams, CommitPartition, CommitResult, GroupConfig, GroupManager, JoinParams, LeavingMember, Now, SyncParams};
pub use member::{Member, Protocol};
pub use offset_store::{OffsetAndMetadata, OffsetStore};
pub use placement::{java_string_hash, offsets_partition_for};
pub use request::{GroupRequest, GroupResponse};
pub use response_slot::ResponseSlot;
pub use timers::{TimerAction, TimerKey, Timers};
pub use write_error::WriteError;
