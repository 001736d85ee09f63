//! The active segment's index entries persisted to its .index and .timeindex files, on the
//! partition's shard, by its writer. Readers use the in-memory indexes; the files serve recovery
//! alone, which trusts an entry, so an entry is written only once the log it points at is
//! fdatasync'ed (after the writer's own fdatasync, or up to what a sync in flight had covered
//! when it started: `segment_syncs`).

use bytes::Bytes;
use strand_io::IoError;

use super::recovery::ActiveFiles;
use super::PartitionLog;

/// How many entries the active segment's offset and time indexes hold (or held).
#[derive(Debug, Clone, Copy)]
pub(super) struct IndexEntries {
    pub(super) offset: usize,
    pub(super) time: usize,
}

impl PartitionLog {
    /// Appends the active segment's index entries not yet in its index files. Returns whether
    /// both files now hold every entry: on a full disk they may not (the indexes are sparse,
    /// so the entries missing from a file only make recovery scan further).
    pub(super) async fn persist_index_entries(&self, files: &mut ActiveFiles) -> Result<bool, IoError> {
        let entries = self.index_entries();
        self.persist_index_entries_upto(files, entries).await
    }

    /// The active segment's offset and time index entries: how many there are.
    pub(super) fn index_entries(&self) -> IndexEntries {
        let state = self.state.borrow();
        let segment = state.segments.last().expect("a log has an active segment");
        IndexEntries { offset: segment.offset_index.len(), time: segment.time_index.len() }
    }

    /// Appends the active segment's index entries before `upto` not yet in its index files
    /// (entries past it may point at log not yet fdatasync'ed). Returns whether both files
    /// now hold them.
    pub(super) async fn persist_index_entries_upto(&self, files: &mut ActiveFiles, upto: IndexEntries) -> Result<bool, IoError> {
        let (offsets, times, offset_entries, time_entries) = {
            let state = self.state.borrow();
            let segment = state.segments.last().expect("a log has an active segment");
            let offset_entries = upto.offset.max(segment.persisted_offset_entries);
            let time_entries = upto.time.max(segment.persisted_time_entries);
            let offsets = Bytes::copy_from_slice(segment.offset_index.encoded_range(segment.persisted_offset_entries..offset_entries));
            let times = Bytes::copy_from_slice(segment.time_index.encoded_range(segment.persisted_time_entries..time_entries));
            (offsets, times, offset_entries, time_entries)
        };
        let offsets_written = files.offset_index.append(&[offsets]).await;
        let offsets_written = self.optional_write(offsets_written.map(|()| true), "offset index entries not persisted")?;
        let times_written = if offsets_written {
            let written = files.time_index.append(&[times]).await;
            self.optional_write(written.map(|()| true), "time index entries not persisted")?
        } else {
            false
        };
        let mut state = self.state.borrow_mut();
        let segment = state.segments.last_mut().expect("a log has an active segment");
        if offsets_written {
            segment.persisted_offset_entries = offset_entries;
        }
        if times_written {
            segment.persisted_time_entries = time_entries;
        }
        Ok(offsets_written && times_written)
    }
}
