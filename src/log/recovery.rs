//! Opening a partition's log after a start or a crash.
//!
//! Every segment's indexes are loaded from their files and checked (whole entries, growing,
//! inside the log); the log is then read from the last good index entry to its end, batch by
//! batch. After an unclean stop each of those batches has its CRC and length verified and the
//! log ends at the first torn or corrupt one: the segment holding it is cut there and becomes
//! the active one, and every segment after it is removed. A clean stop (the `clean-shutdown`
//! marker) skips the verification. Indexes that disagree with the log are rebuilt from it.
//!
//! Index entries reference only data that was durable when they were written (the writer
//! appends them after the fdatasync covering them), so the log before the last good entry
//! needs no scan.

use std::path::Path;

use bytes::Bytes;
use strand_io::{fs, AppendFile, FileReader, IoError, MappedFile, WriteOptions};
use tracing::{debug, warn};

use super::batch_scan::{scan_batches, Scan};
use super::index_bytes::IndexBytes;
use super::segment::{index_path, log_path, parse_log_name, segment_paths, time_index_path};
use super::{LogConfig, OffsetIndex, ProducerState, Segment, TimeIndex};

/// The idempotent producers' state as of a segment boundary (see `producer_state`).
pub const PRODUCER_STATE_FILE: &str = "producer-state";

/// Written by a clean close, removed on open.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// The log start offset when DeleteRecords moved it inside the first segment.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset";

/// The active segment's files, owned by the partition's writer.
pub struct ActiveFiles {
    pub log: AppendFile,
    pub offset_index: AppendFile,
    pub time_index: AppendFile,
}

/// The recovered log.
pub struct RecoveredLog {
    pub segments: Vec<Segment>,
    pub active: ActiveFiles,
    pub log_start_offset: i64,
    pub clean: bool,
}

pub async fn recover(dir: &Path, config: &LogConfig) -> Result<RecoveredLog, IoError> {
    let clean_marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = fs::read_whole(&clean_marker).await?.is_some();
    let listed = fs::list_dir(dir).await?;
    // A compaction that did not finish leaves its copy behind, an atomic replace its temporary
    // file; the originals are whole.
    for stray in listed.iter().filter(|p| p.extension().is_some_and(|e| e == "cleaned" || e == "tmp")) {
        fs::remove_file(stray).await?;
    }
    let mut bases: Vec<i64> = listed.iter().filter_map(|p| parse_log_name(p)).collect();
    bases.sort_unstable();
    let mut segments: Vec<Segment> = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let (segment, damaged, files_exact) = recover_segment(dir, base, config, !clean, segments.last(), last).await?;
        let sealed = !last && !damaged;
        segments.push(segment);
        if sealed {
            seal_loaded(dir, segments.last_mut().expect("just pushed"), files_exact).await?;
        }
        if damaged {
            for &later in &bases[i + 1..] {
                warn!(dir = %dir.display(), segment = later, "removing segment after damaged data");
                for path in segment_paths(dir, later) {
                    fs::remove_file(&path).await?;
                }
            }
            break;
        }
    }
    let active = match segments.last_mut() {
        Some(last) => open_active(dir, last, config).await?,
        None => {
            let active = create_active(dir, 0, config).await?;
            segments.push(Segment::new(0, active.log.reader()));
            active
        }
    };
    let stored_start = match fs::read_whole(&dir.join(LOG_START_OFFSET_FILE)).await? {
        Some(bytes) => std::str::from_utf8(&bytes).ok().and_then(|s| s.trim().parse::<i64>().ok()),
        None => None,
    };
    let first = segments[0].base_offset;
    let end = segments.last().map_or(0, |s| s.next_offset);
    let log_start_offset = stored_start.unwrap_or(first).clamp(first, end);
    if clean {
        fs::remove_file(&clean_marker).await?;
    }
    Ok(RecoveredLog { segments, active, log_start_offset, clean })
}

/// Loads one segment and reads it from its last good index entry. Returns the segment, whether
/// damage cut it short, and whether its index files held exactly the entries kept.
async fn recover_segment(
    dir: &Path,
    base: i64,
    config: &LogConfig,
    verify: bool,
    previous: Option<&Segment>,
    is_last: bool,
) -> Result<(Segment, bool, bool), IoError> {
    let path = log_path(dir, base);
    let reader = FileReader::open(&path, config.io_mode).await?;
    let size = reader.size().await?;
    let stored_offsets = fs::read_whole(&index_path(dir, base)).await?;
    let stored_times = fs::read_whole(&time_index_path(dir, base)).await?;
    // A missing index file (a crash mid-compaction, or deleted by hand) must be written again.
    let files_present = stored_offsets.is_some() && stored_times.is_some();
    let (stored_offsets, stored_times) = (stored_offsets.unwrap_or_default(), stored_times.unwrap_or_default());
    let mut offsets = OffsetIndex::valid_prefix(&stored_offsets, size);
    let mut disagrees = false;
    // The batch at the last entry must be where the entry says; otherwise rebuild from 0.
    if let Some(entry) = offsets.rchunks_exact(8).next() {
        let relative = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(entry[4..].try_into().expect("4 bytes"));
        if !batch_starts_at(&reader, u64::from(position), base + i64::from(relative)).await? {
            warn!(path = %path.display(), "offset index disagrees with the log: rebuilding it");
            offsets.clear();
            disagrees = true;
        }
    }
    let last_relative = offsets.rchunks_exact(8).next().map_or(0, |e| u32::from_be_bytes([e[0], e[1], e[2], e[3]]));
    // A sealed segment's time index ends with the entry added at sealing, past its last offset
    // index entry; the active segment's entries never pass its offset index.
    let times_max = if is_last { last_relative } else { u32::MAX };
    let times = if disagrees || (is_last && offsets.is_empty()) {
        Vec::new()
    } else {
        TimeIndex::valid_prefix(&stored_times, times_max)
    };
    let files_exact = files_present && offsets.len() == stored_offsets.len() && times.len() == stored_times.len();
    let mut segment = Segment::with_indexes(
        base,
        reader.clone(),
        OffsetIndex::from_bytes(IndexBytes::Owned(offsets)),
        TimeIndex::from_bytes(IndexBytes::Owned(times)),
    );
    let expected_start = previous.map_or(base, |s| s.next_offset).max(segment.next_offset);
    let mut out_of_order = false;
    let interval = config.index_interval_bytes;
    let start = segment.size;
    let end = scan_batches(&reader, start, size, verify, |header, position, _| {
        if header.base_offset < expected_start && position > start {
            out_of_order = true;
            return Scan::Stop;
        }
        segment.on_batch(header, position, interval);
        Scan::Continue
    })
    .await?;
    let damaged = end.damage.is_some() || out_of_order || end.valid_end < size;
    if damaged && verify {
        // O_DIRECT writes whole pages: after a crash the active segment ends in zero padding up
        // to a page boundary, which is no damage.
        let tail = size - end.valid_end;
        let padding_only = is_last && !out_of_order && tail < strand_io::PAGE_BYTES && {
            let rest = reader.read_at(end.valid_end, usize::try_from(tail).expect("under a page")).await?;
            rest.iter().all(|b| *b == 0)
        };
        if padding_only {
            debug!(path = %path.display(), valid_bytes = segment.size, "cutting the zero padding after the last batch");
        } else {
            warn!(path = %path.display(), valid_bytes = segment.size, file_bytes = size, damage = ?end.damage,
                  "log ends early: truncating");
        }
    }
    Ok((segment, damaged, files_exact))
}

/// True if a batch with base offset `offset` starts at `position`.
async fn batch_starts_at(reader: &FileReader, position: u64, offset: i64) -> Result<bool, IoError> {
    let head = reader.read_at(position, 8).await?;
    Ok(head.len() == 8 && i64::from_be_bytes(head[..8].try_into().expect("8 bytes")) == offset)
}

/// A sealed segment keeps its indexes mapped from their files, rewriting files that were
/// missing or disagreed with the log.
async fn seal_loaded(dir: &Path, segment: &mut Segment, files_exact: bool) -> Result<(), IoError> {
    segment.on_seal();
    let base = segment.base_offset;
    let offsets_complete = segment.persisted_offset_entries == segment.offset_index.len();
    let times_complete = segment.persisted_time_entries == segment.time_index.len();
    if !files_exact || !offsets_complete || !times_complete {
        fs::write_atomic(&index_path(dir, base), Bytes::copy_from_slice(segment.offset_index.encoded_from(0))).await?;
        fs::write_atomic(&time_index_path(dir, base), Bytes::copy_from_slice(segment.time_index.encoded_from(0))).await?;
    }
    map_indexes(dir, segment).await
}

/// Replaces a sealed segment's in-memory indexes with maps of their (complete) files.
pub async fn map_indexes(dir: &Path, segment: &mut Segment) -> Result<(), IoError> {
    let (offset_index, time_index) = mapped_indexes(dir, segment.base_offset).await?;
    segment.adopt_indexes(offset_index, time_index);
    Ok(())
}

/// Maps the (complete) index files of the sealed segment at `base`.
pub async fn mapped_indexes(dir: &Path, base: i64) -> Result<(OffsetIndex, TimeIndex), IoError> {
    let offsets = MappedFile::open(&index_path(dir, base)).await?;
    let times = MappedFile::open(&time_index_path(dir, base)).await?;
    Ok((OffsetIndex::from_bytes(IndexBytes::Mapped(offsets)), TimeIndex::from_bytes(IndexBytes::Mapped(times))))
}

/// Opens the last segment for appending at its valid end, with index files holding exactly
/// the entries already persisted (the rest are appended by the writer).
async fn open_active(dir: &Path, segment: &mut Segment, config: &LogConfig) -> Result<ActiveFiles, IoError> {
    let base = segment.base_offset;
    let log = AppendFile::open_at(&log_path(dir, base), segment.size, config.segment_write()).await?;
    segment.reader = log.reader();
    let offset_index = open_index(&index_path(dir, base), segment.persisted_offset_entries * 8).await?;
    let time_index = open_index(&time_index_path(dir, base), segment.persisted_time_entries * 12).await?;
    Ok(ActiveFiles { log, offset_index, time_index })
}

async fn open_index(path: &Path, len: usize) -> Result<AppendFile, IoError> {
    if len == 0 {
        return AppendFile::create(path, WriteOptions::BUFFERED).await;
    }
    AppendFile::open_at(path, len as u64, WriteOptions::BUFFERED).await
}

/// Creates the files of a new active segment and makes them durable in the directory.
pub async fn create_active(dir: &Path, base: i64, config: &LogConfig) -> Result<ActiveFiles, IoError> {
    let log = AppendFile::create(&log_path(dir, base), config.segment_write()).await?;
    let offset_index = AppendFile::create(&index_path(dir, base), WriteOptions::BUFFERED).await?;
    let time_index = AppendFile::create(&time_index_path(dir, base), WriteOptions::BUFFERED).await?;
    fs::sync_dir(dir).await?;
    Ok(ActiveFiles { log, offset_index, time_index })
}

/// Loads the producer state snapshot and replays the batch headers after it; without a usable
/// snapshot, replays the whole log.
pub async fn rebuild_producer_state(dir: &Path, segments: &[Segment], log_end_offset: i64) -> Result<ProducerState, IoError> {
    let snapshot = fs::read_whole(&dir.join(PRODUCER_STATE_FILE)).await?.and_then(|b| ProducerState::from_snapshot(&b));
    let (boundary, mut state) = match snapshot {
        Some((boundary, state)) if boundary <= log_end_offset => (boundary, state),
        Some(_) => {
            warn!(dir = %dir.display(), "producer state snapshot is past the log end: rebuilding it from the log");
            (i64::MIN, ProducerState::default())
        }
        None => (i64::MIN, ProducerState::default()),
    };
    for segment in segments.iter().filter(|s| s.next_offset > boundary) {
        let start = if boundary > segment.base_offset { segment.position_for(boundary) } else { 0 };
        scan_batches(&segment.reader, start, segment.size, false, |header, _, _| {
            if header.base_offset >= boundary {
                state.record(header);
            }
            Scan::Continue
        })
        .await?;
    }
    Ok(state)
}
