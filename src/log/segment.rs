//! One segment: the read side of a `.log` file and its indexes.
//!
//! A segment is named by its base offset, 20 digits zero-padded: `00000000000000000000.log`,
//! `.index`, `.timeindex`. `size` is what readers may read: bytes written and published.

use std::path::{Path, PathBuf};
use std::time::Instant;

use strand_io::FileReader;

use super::{OffsetIndex, TimeIndex};
use crate::protocol::record_batch::BatchHeader;

pub struct Segment {
    pub base_offset: i64,
    pub reader: FileReader,
    /// Readable bytes.
    pub size: u64,
    /// Offset after the last batch in the segment.
    pub next_offset: i64,
    /// Newest record timestamp in the segment, -1 when empty.
    pub max_timestamp: i64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Position of the last offset index entry, to space entries `index.interval.bytes` apart.
    last_indexed_position: u64,
    /// Base offset of the last batch appended.
    last_batch_offset: i64,
    /// When the segment took its first batch (for segment.ms rolls).
    pub first_append: Option<Instant>,
    /// Index entries already written to the index files.
    pub persisted_offset_entries: usize,
    pub persisted_time_entries: usize,
}

impl Segment {
    pub fn new(base_offset: i64, reader: FileReader) -> Self {
        Self::with_indexes(base_offset, reader, OffsetIndex::default(), TimeIndex::default())
    }

    /// A segment whose indexes were loaded; batches are then appended from its last offset
    /// index entry on (the position `size` is set to).
    pub fn with_indexes(base_offset: i64, reader: FileReader, offset_index: OffsetIndex, time_index: TimeIndex) -> Self {
        let (relative, position) = offset_index.last().unwrap_or((0, 0));
        let persisted_offset_entries = offset_index.len();
        let persisted_time_entries = time_index.len();
        Self {
            base_offset,
            reader,
            size: u64::from(position),
            next_offset: base_offset + i64::from(relative),
            max_timestamp: time_index.last().map_or(-1, |(ts, _)| ts),
            offset_index,
            time_index,
            last_indexed_position: u64::from(position),
            last_batch_offset: base_offset,
            first_append: None,
            persisted_offset_entries,
            persisted_time_entries,
        }
    }

    /// Records a batch that now ends the segment at `position + header.total_bytes()`.
    pub fn on_batch(&mut self, header: &BatchHeader, position: u64, index_interval_bytes: u64) {
        assert_eq!(position, self.size, "batches are contiguous");
        assert!(header.base_offset >= self.next_offset, "offsets only grow");
        let relative = self.relative(header.base_offset);
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        let due = position > 0 && position - self.last_indexed_position >= index_interval_bytes;
        if due && self.offset_index.last().is_none_or(|(o, _)| relative > o) {
            self.offset_index.append(relative, u32::try_from(position).expect("segment < 4 GiB"));
            self.time_index.maybe_append(self.max_timestamp, relative);
            self.last_indexed_position = position;
        }
        self.size = position + header.total_bytes() as u64;
        self.next_offset = header.next_offset();
        self.last_batch_offset = header.base_offset;
        self.first_append.get_or_insert_with(Instant::now);
    }

    /// Adds the final time index entry when the segment is sealed, so a loaded segment knows
    /// its max timestamp without reading its batches.
    pub fn on_seal(&mut self) {
        if self.size > 0 {
            let relative = self.relative(self.last_batch_offset);
            self.time_index.maybe_append(self.max_timestamp, relative);
        }
    }

    /// Swaps in indexes with the same entries (the mapped files of a sealed segment).
    pub fn adopt_indexes(&mut self, offset_index: OffsetIndex, time_index: TimeIndex) {
        assert_eq!(offset_index.len(), self.offset_index.len(), "mapped offset index is complete");
        assert_eq!(time_index.len(), self.time_index.len(), "mapped time index is complete");
        self.persisted_offset_entries = offset_index.len();
        self.persisted_time_entries = time_index.len();
        self.offset_index = offset_index;
        self.time_index = time_index;
    }

    pub fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).expect("relative offset fits in u32")
    }

    /// Position to start scanning from for `offset`.
    pub fn position_for(&self, offset: i64) -> u64 {
        if offset <= self.base_offset {
            return 0;
        }
        u64::from(self.offset_index.lookup(self.relative(offset)))
    }

    /// Heap bytes held by this segment's indexes.
    pub fn heap_bytes(&self) -> usize {
        self.offset_index.heap_bytes() + self.time_index.heap_bytes()
    }
}

/// File name stem of a segment: its base offset, 20 digits.
pub fn segment_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", segment_stem(base_offset)))
}

pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.index", segment_stem(base_offset)))
}

pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.timeindex", segment_stem(base_offset)))
}

/// All files of a segment.
pub fn segment_paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    [log_path(dir, base_offset), index_path(dir, base_offset), time_index_path(dir, base_offset)]
}

/// The base offset of a `.log` file name, if it is one.
pub fn parse_log_name(path: &Path) -> Option<i64> {
    if path.extension()? != "log" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 20).then(|| stem.parse().ok())?
}
