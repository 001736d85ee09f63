//! The sparse offset index of one segment: relative offset -> byte position.
//!
//! On disk (`.index`): 8-byte entries, relative offset u32 BE then position u32 BE, as Kafka's
//! OffsetIndex. An entry is added every `index.interval.bytes` of log at a batch start, so a
//! lookup lands at most that many bytes before the batch it seeks.

use bytes::{BufMut, Bytes, BytesMut};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Appends an entry; offsets and positions only grow.
    pub fn append(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_offset, last_position)) = self.entries.last() {
            assert!(relative_offset > last_offset && position > last_position, "index only grows");
        }
        self.entries.push((relative_offset, position));
    }

    /// The position of the last indexed batch starting at or before `relative_offset`, or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let after = self.entries.partition_point(|&(offset, _)| offset <= relative_offset);
        if after == 0 { 0 } else { self.entries[after - 1].1 }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.entries.len() * 8);
        for &(offset, position) in &self.entries {
            buf.put_u32(offset);
            buf.put_u32(position);
        }
        buf.freeze()
    }
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
        assert_eq!(index.encode().len(), 16);
    }
}
