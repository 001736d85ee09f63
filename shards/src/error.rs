//! Errors of the shard runtime and its mesh.

use crate::ShardId;

#[derive(Debug, thiserror::Error)]
pub enum ShardsError {
    #[error("starting shard {shard}: {source}")]
    Start {
        shard: ShardId,
        #[source]
        source: std::io::Error,
    },
    #[error("shard {0} has stopped")]
    Stopped(ShardId),
    #[error("shard {0} panicked")]
    Panicked(ShardId),
}
