//! What the logs of one shard share.

use std::rc::Rc;
use std::sync::Arc;

use strand_config::BrokerConfig;

use super::{BrokerWrites, CatchUpLimits, CatchUpReads, Journal, TailCache};

/// What the logs of one shard share: the tail cache budget, the catch-up read scheduler and
/// the journal.
#[derive(Clone)]
pub struct LogShared {
    pub tail_cache: Rc<TailCache>,
    pub catch_up: Rc<CatchUpReads>,
    pub journal: Rc<Journal>,
}

impl LogShared {
    /// A shard's, sized by the broker's config; `writes` is the broker's, shared by its shards
    /// (the catch-up read size follows it).
    pub fn new(config: &BrokerConfig, writes: Arc<BrokerWrites>) -> Self {
        let limits = CatchUpLimits {
            reads_max: config.shard_catchup_reads_max,
            read_bytes: config.shard_catchup_read_chunk_bytes,
            busy_read_bytes: config.shard_catchup_read_chunk_busy_bytes,
            bytes_per_second: config.shard_catchup_read_bytes_per_second,
            readahead_bytes: config.shard_catchup_readahead_bytes,
        };
        Self {
            tail_cache: TailCache::new(config.shard_tail_cache_bytes),
            catch_up: Rc::new(CatchUpReads::new(limits, writes)),
            journal: Rc::new(Journal::new(&config.log_dirs, config.shard_journal_bytes)),
        }
    }
}
