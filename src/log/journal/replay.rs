//! What the journal files of earlier starts hold for this shard's partitions, until each
//! partition has replayed it.

use std::collections::BTreeMap;

use bytes::Bytes;
use strand_io::IoError;
use tracing::info;
use uuid::Uuid;

use super::files::{journal_files, read_records};
use super::record::decode_entries;
use super::{Journal, JournalKey, ReplayEntries};

impl Journal {
    /// Reads the journal files of earlier starts and keeps the entries of the partitions
    /// `owns` says are this shard's, for [`Journal::take_replay`]; sets this start's
    /// generation. Runs before the shard opens any partition. A shard of `shard_count` reads
    /// only its own file of a generation written by as many shards (placement is the same).
    /// Each file is read whole: `shard.journal.bytes` is at most 1 GiB.
    pub async fn load(&self, shard: usize, shard_count: usize, owns: impl Fn(&str, i32) -> bool) -> Result<(), IoError> {
        let files = journal_files(&self.dir).await?;
        let generation = files.iter().map(|f| f.generation).max().unwrap_or(0) + 1;
        self.generation.set(generation);
        let mut replay = ReplayEntries::new();
        for file in &files {
            if file.shard_count == shard_count && file.shard != shard {
                continue;
            }
            let records = read_records(&file.path).await?;
            let mut batches = 0usize;
            for (key, bytes) in records.iter().flat_map(decode_entries) {
                if owns(&key.topic, key.partition) {
                    batches += 1;
                    replay.entry((key.topic, key.partition)).or_default().push((key.topic_id, bytes));
                }
            }
            info!(file = %file.path.display(), records = records.len(), entries = batches, "journal read for replay");
        }
        *self.replay.borrow_mut() = replay;
        Ok(())
    }

    /// The batch runs of earlier generations for `key`, oldest first (each a run of whole
    /// batches as written), without entries of an earlier topic of the same name. They stay
    /// until [`Journal::replayed`] says they are durable in the partition's log.
    pub fn replay_for(&self, key: &JournalKey) -> Vec<Bytes> {
        let replay = self.replay.borrow();
        let entries = replay.get(&(key.topic.clone(), key.partition)).map(Vec::as_slice).unwrap_or_default();
        entries.iter().filter(|(id, _)| *id == key.topic_id).map(|(_, bytes)| bytes.clone()).collect()
    }

    /// `key`'s partition holds what [`Journal::replay_for`] gave it, durably.
    pub fn replayed(&self, key: &JournalKey) {
        self.replay.borrow_mut().remove(&(key.topic.clone(), key.partition));
    }

    /// Partitions with replay entries that were never taken (their open failed), as
    /// (topic, partition, topic id) with the entry count.
    pub fn untaken_replay(&self) -> Vec<(String, i32, Uuid, usize)> {
        let mut counts: BTreeMap<(String, i32, Uuid), usize> = BTreeMap::new();
        for ((topic, partition), entries) in self.replay.borrow().iter() {
            for (id, _) in entries {
                *counts.entry((topic.clone(), *partition, *id)).or_default() += 1;
            }
        }
        counts.into_iter().map(|((topic, partition, id), count)| (topic, partition, id, count)).collect()
    }

    /// Keeps only the replay entries `keep` says a partition may still open with (one whose
    /// open failed, to be retried); the others belong to partitions that no longer exist.
    pub fn retain_replay(&self, keep: impl Fn(&str, i32, Uuid) -> bool) {
        let mut replay = self.replay.borrow_mut();
        for ((topic, partition), entries) in replay.iter_mut() {
            entries.retain(|(id, _)| keep(topic, *partition, *id));
        }
        replay.retain(|_, entries| !entries.is_empty());
    }
}
