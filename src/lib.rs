//! strand: a Kafka-compatible, thread-per-core message broker.
//!
//! The data path, top to bottom: [`server`] (sockets and frames) -> [`handlers`] (one per
//! Kafka API) -> [`shard`] (routing to the owning shard) -> [`partition`] -> [`log`] (segments,
//! durable appends) -> strand-io. [`cluster`] holds the metadata and the controller;
//! [`group`] the consumer group coordinator and committed offsets; [`broker`] starts and
//! stops it all.

#[cfg(test)]
mod alloc_count;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod group;
pub mod handlers;
pub mod log;
pub mod partition;
pub mod protocol;
pub mod server;
pub mod shard;
