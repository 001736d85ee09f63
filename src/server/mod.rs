//! The Kafka listener of one shard: accept (every shard accepts on the same port with
//! SO_REUSEPORT), read size-prefixed frames, run requests concurrently, and write responses in
//! request order.

mod connection;
mod connection_limits;
mod connection_state;
mod connections;
mod frame;
mod listener;

pub use connection_limits::{ConnectionLimits, ConnectionRefused};
pub use connections::Connections;
pub use listener::accept_loop;
