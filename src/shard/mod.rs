//! A shard's broker state and the typed messages shards exchange.
//!
//! Each shard holds the partitions placed on it, a snapshot of the cluster metadata, and (on
//! shard 0) the controller. Requests for a partition owned elsewhere cross as a
//! [`ShardRequest`] through the shards crate's bounded mesh; a call to the shard itself takes
//! the same code path without the hop.

mod maintenance;
mod messages;
mod reconcile;
mod state;

pub use messages::{PartitionAppend, PartitionRead, PartitionSize, ShardRequest};
pub use state::ShardState;
