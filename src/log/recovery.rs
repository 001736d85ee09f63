//! Opening a partition's log after a start or a crash.
//!
//! Every segment is scanned batch by batch with its CRC verified; the log ends at the first torn
//! or corrupt batch: the segment holding it is cut there and becomes the active one, and any
//! segment after it is removed. Indexes are rebuilt from the log, not trusted.

use std::path::Path;

use strand_io::{fs, AppendFile, FileReader, IoError};
use tracing::warn;

use super::batch_scan::{scan_batches, Scan};
use super::segment::{log_path, parse_log_name};
use super::Segment;

/// The recovered log: sealed segments, the active one, and its writer.
pub struct RecoveredLog {
    pub segments: Vec<Segment>,
    pub active: AppendFile,
}

pub async fn recover(dir: &Path, index_interval_bytes: u64) -> Result<RecoveredLog, IoError> {
    let mut bases: Vec<i64> = fs::list_dir(dir).await?.iter().filter_map(|p| parse_log_name(p)).collect();
    bases.sort_unstable();
    let mut segments: Vec<Segment> = Vec::new();
    let mut damaged_at = None;
    for (i, &base) in bases.iter().enumerate() {
        let path = log_path(dir, base);
        let reader = FileReader::open(&path).await?;
        let size = reader.size().await?;
        let mut segment = Segment::new(base, reader.clone());
        let expected_start = segments.last().map_or(base, |s: &Segment| s.next_offset);
        let mut out_of_order = false;
        let end = scan_batches(&reader, 0, size, true, |header, position, _| {
            if header.base_offset < expected_start.max(segment.next_offset) {
                out_of_order = true;
                return Scan::Stop;
            }
            segment.on_batch(header, position, index_interval_bytes);
            Scan::Continue
        })
        .await?;
        segments.push(segment);
        if end.damage.is_some() || out_of_order || end.valid_end < size {
            warn!(path = %path.display(), valid_bytes = segment_size(&segments), file_bytes = size,
                  damage = ?end.damage, "log ends early: truncating");
            damaged_at = Some(i);
            break;
        }
    }
    if let Some(i) = damaged_at {
        for &base in &bases[i + 1..] {
            warn!(segment = base, dir = %dir.display(), "removing segment after damaged data");
            for path in super::segment::segment_paths(dir, base) {
                fs::remove_file(&path).await?;
            }
        }
    }
    let active = match segments.pop() {
        Some(last) => {
            let file = AppendFile::open_at(&log_path(dir, last.base_offset), last.size).await?;
            // Readers of the active segment share the writer's file.
            let mut last = last;
            last.reader = file.reader();
            segments.push(last);
            file
        }
        None => {
            let file = AppendFile::create(&log_path(dir, 0)).await?;
            fs::sync_dir(dir).await?;
            segments.push(Segment::new(0, file.reader()));
            file
        }
    };
    Ok(RecoveredLog { segments, active })
}

fn segment_size(segments: &[Segment]) -> u64 {
    segments.last().map_or(0, |s| s.size)
}
