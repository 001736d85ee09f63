//! The sparse time index of one segment: max timestamp so far -> relative offset of the batch
//! that reached it.
//!
//! On disk (`.timeindex`): 12-byte entries, timestamp i64 BE then relative offset u32 BE, as
//! Kafka's TimeIndex. Timestamps in a log need not grow, so an entry is only added when the
//! segment's max timestamp rises; every record before an entry's batch has a timestamp at most
//! the entry's.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Adds an entry if `timestamp` is above the last one.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(last, _)| timestamp > last) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// The relative offset to start scanning from for the first record with a timestamp at or
    /// after `timestamp`: the last entry strictly below it (every record before that entry's
    /// batch is below it too), or 0.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let after = self.entries.partition_point(|&(ts, _)| ts < timestamp);
        if after == 0 { 0 } else { self.entries[after - 1].1 }
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.entries.len() * 12);
        for &(timestamp, offset) in &self.entries {
            buf.put_i64(timestamp);
            buf.put_u32(offset);
        }
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rising_timestamps_are_indexed_and_lookup_starts_below_the_target() {
        let mut index = TimeIndex::default();
        index.maybe_append(100, 0);
        index.maybe_append(90, 5);
        index.maybe_append(200, 10);
        assert_eq!(index.encode().len(), 24);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(150), 0);
        assert_eq!(index.lookup(200), 0);
        assert_eq!(index.lookup(201), 10);
    }
}
