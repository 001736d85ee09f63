//! Moving a partition's log start: retention by time and size, and DeleteRecords.
//!
//! Only whole sealed segments are deleted, oldest first; the active segment never is. The
//! segment leaves the readable set before its files are removed, and a reader still holding
//! the file keeps reading it (unlinked files stay readable while open). A log start inside a
//! segment (DeleteRecords) is kept in the `log-start-offset` file so it survives a restart.


use bytes::Bytes;
use strand_io::fs;
use tracing::info;

use super::recovery::LOG_START_OFFSET_FILE;
use crate::clock::wall_clock_ms;
use super::segment::segment_paths;
use super::{LogError, PartitionLog};

/// Retention limits, from the topic's config: -1 disables either.
#[derive(Debug, Clone, Copy)]
pub struct RetentionLimits {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

impl PartitionLog {
    /// Deletes the sealed segments past the limits. Returns how many were deleted.
    pub async fn apply_retention(&self, limits: RetentionLimits) -> Result<usize, LogError> {
        let now_ms = wall_clock_ms();
        let doomed = {
            let state = self.state.borrow();
            let mut total: i64 = state.segments.iter().map(|s| s.size as i64).sum();
            let sealed = &state.segments[..state.segments.len() - 1];
            let mut count = 0;
            for segment in sealed {
                let expired = limits.retention_ms >= 0 && segment.max_timestamp < now_ms.saturating_sub(limits.retention_ms);
                let oversized = limits.retention_bytes >= 0 && total - segment.size as i64 >= limits.retention_bytes;
                let below_start = segment.next_offset <= state.log_start_offset;
                if !(expired || oversized || below_start) {
                    break;
                }
                total -= segment.size as i64;
                count += 1;
            }
            count
        };
        self.delete_oldest_segments(doomed, "retention").await?;
        Ok(doomed)
    }

    /// DeleteRecords: moves the log start to `offset` (-1 means the high watermark) and
    /// deletes the segments wholly below it. Returns the new log start offset.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let (start, doomed) = {
            let mut state = self.state.borrow_mut();
            let target = if offset == -1 { state.high_watermark } else { offset };
            if target < 0 || target > state.high_watermark {
                let offsets = super::LogOffsets {
                    log_start_offset: state.log_start_offset,
                    high_watermark: state.high_watermark,
                };
                return Err(LogError::OffsetOutOfRange { offset, offsets });
            }
            state.log_start_offset = state.log_start_offset.max(target);
            let sealed = &state.segments[..state.segments.len() - 1];
            let doomed = sealed.iter().take_while(|s| s.next_offset <= state.log_start_offset).count();
            (state.log_start_offset, doomed)
        };
        fs::write_atomic(&self.dir.join(LOG_START_OFFSET_FILE), Bytes::from(format!("{start}\n"))).await?;
        self.delete_oldest_segments(doomed, "delete records").await?;
        Ok(start)
    }

    /// Removes the `count` oldest segments from the log, then their files.
    async fn delete_oldest_segments(&self, count: usize, reason: &str) -> Result<(), LogError> {
        if count == 0 {
            return Ok(());
        }
        let removed: Vec<i64> = {
            let mut state = self.state.borrow_mut();
            assert!(count < state.segments.len(), "the active segment is never deleted");
            let removed: Vec<i64> = state.segments.drain(..count).map(|s| s.base_offset).collect();
            let first = state.segments[0].base_offset;
            state.log_start_offset = state.log_start_offset.max(first);
            removed
        };
        for base in &removed {
            self.catch_up.invalidate(&super::segment::log_path(&self.dir, *base));
            for path in segment_paths(&self.dir, *base) {
                fs::remove_file(&path).await?;
            }
        }
        info!(dir = %self.dir.display(), segments = removed.len(), log_start_offset = self.offsets().log_start_offset,
              reason, "deleted segments");
        Ok(())
    }
}
