//! What a partition knows of each idempotent producer: its epoch and its last five batches, to
//! answer a retried batch with its original offset instead of writing it twice, and to refuse
//! gaps in sequence numbers and fenced epochs, as Kafka's ProducerStateManager does.
//!
//! The state is kept with the log: the writer snapshots it to `producer-state` when it rolls a
//! segment (covering exactly the sealed segments) and on a clean close (covering the whole
//! log); recovery loads the snapshot and replays the batch headers after it.
//!
//! Snapshot format (big-endian): version u8 = 1 | boundary offset i64 | producer count u32 |
//! per producer: producer_id i64, epoch i16, last_timestamp i64, batch count u8, per batch:
//! epoch i16, first_sequence i32, last_sequence i32, first_offset i64, last_offset i64 |
//! CRC32C u32 of everything before it.

use std::collections::{HashMap, VecDeque};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::protocol::record_batch::BatchHeader;

/// Batches remembered per producer (clients keep at most five in flight).
const BATCHES_KEPT: usize = 5;
const SNAPSHOT_VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub last_timestamp: i64,
    pub batches: VecDeque<ProducerBatch>,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
}

/// Why a producer's batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id} epoch {epoch} is older than the current {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id}: sequence {got} does not follow {expected_after}")]
    OutOfOrder { producer_id: i64, got: i32, expected_after: i32 },
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// Already in the log at these offsets: answer with them, write nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
    /// Checks a batch (before offsets are assigned) against what is known of its producer.
    pub fn check(&self, batch: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if !batch.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let producer_id = batch.producer_id;
        let Some(entry) = self.producers.get(&producer_id) else {
            return if batch.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, got: batch.base_sequence, expected_after: -1 })
            };
        };
        if batch.producer_epoch < entry.epoch {
            return Err(SequenceError::InvalidProducerEpoch { producer_id, epoch: batch.producer_epoch, current: entry.epoch });
        }
        if batch.producer_epoch > entry.epoch {
            // A new epoch starts its sequences again at 0.
            return if batch.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder { producer_id, got: batch.base_sequence, expected_after: -1 })
            };
        }
        let last_sequence = batch.last_sequence();
        if let Some(seen) = entry
            .batches
            .iter()
            .find(|b| b.epoch == batch.producer_epoch && b.first_sequence == batch.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate { first_offset: seen.first_offset, last_offset: seen.last_offset });
        }
        let expected_after = entry.batches.back().map_or(-1, |b| b.last_sequence);
        if batch.base_sequence != next_sequence(expected_after) {
            return Err(SequenceError::OutOfOrder { producer_id, got: batch.base_sequence, expected_after });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch appended at its (assigned) offsets.
    pub fn record(&mut self, batch: &BatchHeader) {
        if !batch.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch > entry.epoch {
            entry.batches.clear();
        }
        entry.epoch = batch.producer_epoch;
        entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
        entry.batches.push_back(ProducerBatch {
            epoch: batch.producer_epoch,
            first_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
            first_offset: batch.base_offset,
            last_offset: batch.last_offset(),
        });
        while entry.batches.len() > BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// Every known producer, for DescribeProducers, by producer id.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut all: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerSummary {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: e.last_timestamp,
            })
            .collect();
        all.sort_unstable();
        all
    }

    /// The snapshot of this state as it was at `boundary`: batches at or past it are left out
    /// (recovery replays them from the log), and producers left with none are dropped.
    pub fn snapshot_before(&self, boundary: i64) -> Bytes {
        let mut kept: Vec<(i64, ProducerEntry)> = Vec::new();
        for (id, entry) in &self.producers {
            let batches: VecDeque<ProducerBatch> = entry.batches.iter().filter(|b| b.last_offset < boundary).copied().collect();
            if let Some(last) = batches.back() {
                kept.push((*id, ProducerEntry { epoch: last.epoch, last_timestamp: entry.last_timestamp, batches }));
            }
        }
        kept.sort_by_key(|(id, _)| *id);
        let mut buf = BytesMut::new();
        buf.put_u8(SNAPSHOT_VERSION);
        buf.put_i64(boundary);
        buf.put_u32(u32::try_from(kept.len()).expect("producers fit u32"));
        for (id, entry) in &kept {
            buf.put_i64(*id);
            buf.put_i16(entry.epoch);
            buf.put_i64(entry.last_timestamp);
            buf.put_u8(u8::try_from(entry.batches.len()).expect("at most five"));
            for b in &entry.batches {
                buf.put_i16(b.epoch);
                buf.put_i32(b.first_sequence);
                buf.put_i32(b.last_sequence);
                buf.put_i64(b.first_offset);
                buf.put_i64(b.last_offset);
            }
        }
        let crc = crc32c::crc32c(&buf);
        buf.put_u32(crc);
        buf.freeze()
    }

    /// Loads a snapshot: (boundary, state), or None if it is damaged or of another version.
    pub fn from_snapshot(bytes: &[u8]) -> Option<(i64, Self)> {
        let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut b = body;
        if b.remaining() < 13 || b.get_u8() != SNAPSHOT_VERSION {
            return None;
        }
        let boundary = b.get_i64();
        let count = b.get_u32();
        let mut state = Self::default();
        for _ in 0..count {
            if b.remaining() < 19 {
                return None;
            }
            let id = b.get_i64();
            let epoch = b.get_i16();
            let last_timestamp = b.get_i64();
            let batch_count = usize::from(b.get_u8());
            if b.remaining() < batch_count * 26 {
                return None;
            }
            let batches = (0..batch_count)
                .map(|_| ProducerBatch {
                    epoch: b.get_i16(),
                    first_sequence: b.get_i32(),
                    last_sequence: b.get_i32(),
                    first_offset: b.get_i64(),
                    last_offset: b.get_i64(),
                })
                .collect();
            state.producers.insert(id, ProducerEntry { epoch, last_timestamp, batches });
        }
        b.is_empty().then_some((boundary, state))
    }
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX { 0 } else { sequence + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    #[test]
    fn a_retried_batch_is_a_duplicate_with_its_original_offsets() {
        let mut state = ProducerState::default();
        let first = batch(7, 0, 0, 3, 100);
        assert_eq!(state.check(&first), Ok(SequenceCheck::Append));
        state.record(&first);
        let retried = batch(7, 0, 0, 3, -1);
        assert_eq!(state.check(&retried), Ok(SequenceCheck::Duplicate { first_offset: 100, last_offset: 102 }));
        assert_eq!(state.check(&batch(7, 0, 3, 2, -1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let mut state = ProducerState::default();
        state.record(&batch(7, 1, 0, 3, 0));
        assert!(matches!(state.check(&batch(7, 1, 5, 1, -1)), Err(SequenceError::OutOfOrder { .. })));
        assert!(matches!(state.check(&batch(7, 0, 3, 1, -1)), Err(SequenceError::InvalidProducerEpoch { .. })));
        assert!(matches!(state.check(&batch(8, 0, 4, 1, -1)), Err(SequenceError::OutOfOrder { .. })), "unknown producer");
        assert_eq!(state.check(&batch(7, 2, 0, 1, -1)), Ok(SequenceCheck::Append), "a new epoch starts at 0");
        assert_eq!(state.check(&batch(-1, -1, -1, 1, -1)), Ok(SequenceCheck::Append), "no producer id");
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut state = ProducerState::default();
        for i in 0..7 {
            state.record(&batch(7, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(state.check(&batch(7, 0, 0, 1, -1)), Err(SequenceError::OutOfOrder { .. })));
        assert_eq!(state.check(&batch(7, 0, 2, 1, -1)), Ok(SequenceCheck::Duplicate { first_offset: 2, last_offset: 2 }));
    }

    #[test]
    fn a_snapshot_keeps_what_was_before_its_boundary() {
        let mut state = ProducerState::default();
        state.record(&batch(7, 0, 0, 2, 0));
        state.record(&batch(7, 0, 2, 2, 2));
        state.record(&batch(9, 0, 0, 1, 10));
        let (boundary, loaded) = ProducerState::from_snapshot(&state.snapshot_before(4)).unwrap();
        assert_eq!(boundary, 4);
        assert_eq!(loaded.check(&batch(7, 0, 2, 2, -1)), Ok(SequenceCheck::Duplicate { first_offset: 2, last_offset: 3 }));
        assert_eq!(loaded.summaries().len(), 1, "producer 9 is after the boundary");
        let mut damaged = state.snapshot_before(4).to_vec();
        damaged[3] ^= 1;
        assert!(ProducerState::from_snapshot(&damaged).is_none());
    }
}
