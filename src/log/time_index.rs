//! The sparse time index of one segment: max timestamp so far -> relative offset of the batch
//! where it was recorded.
//!
//! On disk (`.timeindex`): 12-byte entries, timestamp i64 BE then relative offset u32 BE, as
//! Kafka's TimeIndex. Entries are added with the offset index's (every `index.interval.bytes`)
//! and when a segment is sealed, and only when the max timestamp rose; every record before an
//! entry's batch has a timestamp at most the entry's.

use super::index_bytes::IndexBytes;

const ENTRY_BYTES: usize = 12;

#[derive(Default)]
pub struct TimeIndex {
    bytes: IndexBytes,
}

impl TimeIndex {
    pub fn from_bytes(bytes: IndexBytes) -> Self {
        Self { bytes }
    }

    /// Parses stored index bytes, keeping the longest well-formed prefix whose offsets are at
    /// most `relative_offset_max`.
    pub fn valid_prefix(stored: &[u8], relative_offset_max: u32) -> Vec<u8> {
        let mut last: Option<(i64, u32)> = None;
        let mut keep = 0;
        for chunk in stored.chunks_exact(ENTRY_BYTES) {
            let entry = decode(chunk);
            let grows = last.is_none_or(|(t, o)| entry.0 > t && entry.1 >= o);
            if !grows || entry.1 > relative_offset_max {
                break;
            }
            last = Some(entry);
            keep += ENTRY_BYTES;
        }
        stored[..keep].to_vec()
    }

    /// Adds an entry if `timestamp` is above the last one.
    pub fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.last().is_none_or(|(last, _)| timestamp > last) {
            let mut entry = [0u8; ENTRY_BYTES];
            entry[..8].copy_from_slice(&timestamp.to_be_bytes());
            entry[8..].copy_from_slice(&relative_offset.to_be_bytes());
            self.bytes.push(&entry);
        }
    }

    pub fn len(&self) -> usize {
        self.bytes.as_slice().len() / ENTRY_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn entry(&self, i: usize) -> (i64, u32) {
        decode(&self.bytes.as_slice()[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES])
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// The relative offset to start scanning from for the first record with a timestamp at or
    /// after `timestamp`: the last entry strictly below it, or 0.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 < timestamp { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { 0 } else { self.entry(lo - 1).1 }
    }

    /// The encoded entries from entry `from` on.
    pub fn encoded_from(&self, from: usize) -> &[u8] {
        self.encoded_range(from..self.len())
    }

    /// The encoded entries `entries`.
    pub fn encoded_range(&self, entries: std::ops::Range<usize>) -> &[u8] {
        &self.bytes.as_slice()[entries.start * ENTRY_BYTES..entries.end * ENTRY_BYTES]
    }

    pub fn heap_bytes(&self) -> usize {
        self.bytes.heap_bytes()
    }
}

fn decode(chunk: &[u8]) -> (i64, u32) {
    let timestamp = i64::from_be_bytes(chunk[..8].try_into().expect("8 bytes"));
    let offset = u32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
    (timestamp, offset)
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
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(150), 0);
        assert_eq!(index.lookup(200), 0);
        assert_eq!(index.lookup(201), 10);
        assert_eq!(TimeIndex::valid_prefix(index.encoded_from(0), 9).len(), 12);
    }
}
