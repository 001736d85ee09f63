//! strand-shards: the thread-per-core runtime. Knows nothing of Kafka.
//!
//! [`Runtime::start`] runs one glommio executor per shard, each on its own thread pinned to a
//! core with core_affinity. Shards share nothing; they talk through a [`Mesh`] of bounded, typed
//! mailboxes ([`Mesh::call`] sends a request and awaits its typed [`Reply`]). Shutdown is a
//! broadcast [`StopSignal`] followed by joining every shard. The re-exports below are the only
//! runtime surface the broker uses, so swapping the runtime touches this crate and strand-io.

mod error;
mod mesh;
mod runtime;
mod shard_id;

pub use error::ShardsError;
pub use mesh::{Inbox, Mesh, PendingReply, Reply};
pub use runtime::{available_cores, run_one, Runtime, RuntimeOptions, ShardContext, StopSignal};
pub use shard_id::ShardId;

pub mod net;

pub mod task;
