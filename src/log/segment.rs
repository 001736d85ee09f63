//! One segment: the read side of a `.log` file and its in-memory indexes.
//!
//! A segment is named by its base offset, 20 digits zero-padded: `00000000000000000000.log`,
//! `.index`, `.timeindex`. `size` is what readers may read: bytes written and made durable.

use std::path::{Path, PathBuf};

use strand_io::FileReader;

use super::{OffsetIndex, TimeIndex};
use crate::protocol::record_batch::BatchHeader;

pub struct Segment {
    pub base_offset: i64,
    pub reader: FileReader,
    /// Readable bytes (durable).
    pub size: u64,
    /// Offset after the last batch in the segment.
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Position of the last offset index entry, to space entries `index.interval.bytes` apart.
    last_indexed_position: Option<u64>,
}

impl Segment {
    pub fn new(base_offset: i64, reader: FileReader) -> Self {
        Self {
            base_offset,
            reader,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            last_indexed_position: None,
        }
    }

    /// Records a batch that now ends the segment at `position + header.total_bytes()`.
    pub fn on_batch(&mut self, header: &BatchHeader, position: u64, index_interval_bytes: u64) {
        assert_eq!(position, self.size, "batches are contiguous");
        assert!(header.base_offset >= self.next_offset, "offsets only grow");
        let relative = self.relative(header.base_offset);
        let due = self.last_indexed_position.is_none_or(|last| position - last >= index_interval_bytes);
        if due && position > 0 {
            self.offset_index.append(relative, u32::try_from(position).expect("segment < 4 GiB"));
            self.last_indexed_position = Some(position);
        } else if self.last_indexed_position.is_none() {
            self.last_indexed_position = Some(0);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.time_index.maybe_append(header.max_timestamp, relative);
        }
        self.size = position + header.total_bytes() as u64;
        self.next_offset = header.next_offset();
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

/// The base offset of a `.log` file name, if it is one.
pub fn parse_log_name(path: &Path) -> Option<i64> {
    if path.extension()? != "log" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 20).then(|| stem.parse().ok())?
}

/// All files of a segment.
pub fn segment_paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    [log_path(dir, base_offset), index_path(dir, base_offset), time_index_path(dir, base_offset)]
}
