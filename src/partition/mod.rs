//! A partition as its owning shard holds it: its log plus the Kafka rules at its door
//! (validation of produced batches, size limits, acks, offset lookups).

// The file is named for its noun, as the house style asks.
#[allow(clippy::module_inception)]
mod partition;
mod partition_error;

#[cfg(test)]
mod alloc_tests;

pub use partition::{ListedOffset, Partition};
pub use partition_error::PartitionError;
