//! The sparse offset index of one segment: relative offset -> byte position.
//!
//! On disk (`.index`): 8-byte entries, relative offset u32 BE then position u32 BE, as Kafka's
//! OffsetIndex. An entry is added every `index.interval.bytes` of log at a batch start, so a
//! lookup lands at most that many bytes before the batch it seeks.

use super::index_bytes::IndexBytes;

const ENTRY_BYTES: usize = 8;

#[derive(Default)]
pub struct OffsetIndex {
    bytes: IndexBytes,
}

impl OffsetIndex {
    pub fn from_bytes(bytes: IndexBytes) -> Self {
        Self { bytes }
    }

    /// Parses stored index bytes, keeping the longest prefix that is well formed for a log of
    /// `log_size` bytes: whole entries, offsets and positions strictly growing, positions
    /// inside the log.
    pub fn valid_prefix(stored: &[u8], log_size: u64) -> Vec<u8> {
        let mut last: Option<(u32, u32)> = None;
        let mut keep = 0;
        for chunk in stored.chunks_exact(ENTRY_BYTES) {
            let entry = decode(chunk);
            let grows = last.is_none_or(|(o, p)| entry.0 > o && entry.1 > p);
            if !grows || u64::from(entry.1) >= log_size || entry.1 == 0 {
                break;
            }
            last = Some(entry);
            keep += ENTRY_BYTES;
        }
        stored[..keep].to_vec()
    }

    /// Appends an entry; offsets and positions only grow.
    pub fn append(&mut self, relative_offset: u32, position: u32) {
        if let Some((last_offset, last_position)) = self.last() {
            assert!(relative_offset > last_offset && position > last_position, "index only grows");
        }
        let mut entry = [0u8; ENTRY_BYTES];
        entry[..4].copy_from_slice(&relative_offset.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        self.bytes.push(&entry);
    }

    pub fn len(&self) -> usize {
        self.bytes.as_slice().len() / ENTRY_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn entry(&self, i: usize) -> (u32, u32) {
        decode(&self.bytes.as_slice()[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES])
    }

    pub fn last(&self) -> Option<(u32, u32)> {
        self.len().checked_sub(1).map(|i| self.entry(i))
    }

    /// The position of the last indexed batch starting at or before `relative_offset`, or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entry(mid).0 <= relative_offset { lo = mid + 1 } else { hi = mid }
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

fn decode(chunk: &[u8]) -> (u32, u32) {
    let offset = u32::from_be_bytes(chunk[..4].try_into().expect("4 bytes"));
    let position = u32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
    (offset, position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_last_entry_at_or_before_the_offset() {
        let mut index = OffsetIndex::default();
        index.append(10, 4100);
        index.append(20, 8300);
        assert_eq!(index.lookup(5), 0);
        assert_eq!(index.lookup(10), 4100);
        assert_eq!(index.lookup(19), 4100);
        assert_eq!(index.lookup(1000), 8300);
        assert_eq!(index.encoded_from(0).len(), 16);
    }

    #[test]
    fn a_stored_index_is_cut_at_its_first_bad_entry() {
        let mut index = OffsetIndex::default();
        index.append(10, 4100);
        index.append(20, 8300);
        index.append(30, 9000);
        let mut stored = index.encoded_from(0).to_vec();
        stored.extend_from_slice(&[0, 0, 0]); // a torn entry
        assert_eq!(OffsetIndex::valid_prefix(&stored, 10_000).len(), 24);
        // A position past the log's end ends the valid part.
        assert_eq!(OffsetIndex::valid_prefix(&stored, 8500).len(), 16);
        // Zeroed entries (a file extended but never written) are not valid.
        assert_eq!(OffsetIndex::valid_prefix(&[0u8; 16], 10_000).len(), 0);
    }
}
