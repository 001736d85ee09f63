//! Walking the batches of a segment file in large sequential reads.

use bytes::Bytes;
use strand_io::{FileReader, IoError};

use crate::protocol::record_batch::{verify_batch, BatchError, BatchHeader, BATCH_HEADER_BYTES};

/// Bytes read per I/O while scanning.
const SCAN_CHUNK_BYTES: u64 = 1 << 20;

/// What the visitor wants after a batch.
pub enum Scan {
    Continue,
    Stop,
}

/// Where a scan ended.
#[derive(Debug)]
pub struct ScanEnd {
    /// End of the last whole, valid batch visited.
    pub valid_end: u64,
    /// Why the scan stopped before `to`, if it was bad data.
    pub damage: Option<BatchError>,
}

/// Visits every batch in `[from, to)` of `reader`, verifying each (CRC, length, count) when
/// `verify` is set. Stops at the first damaged or cut-off batch, reporting where the good data
/// ends, or when the visitor says so.
pub async fn scan_batches(
    reader: &FileReader,
    from: u64,
    to: u64,
    verify: bool,
    mut visit: impl FnMut(&BatchHeader, u64, &Bytes) -> Scan,
) -> Result<ScanEnd, IoError> {
    let mut position = from;
    let mut chunk = Bytes::new();
    let mut chunk_start = from;
    while position < to {
        let in_chunk = usize::try_from(position - chunk_start).expect("small");
        if chunk.len() < in_chunk + BATCH_HEADER_BYTES {
            chunk = read_upto(reader, position, to, SCAN_CHUNK_BYTES).await?;
            chunk_start = position;
            if chunk.len() < BATCH_HEADER_BYTES {
                return Ok(ScanEnd { valid_end: position, damage: Some(BatchError::Corrupt) });
            }
            continue;
        }
        let header = match BatchHeader::parse(&chunk[in_chunk..]) {
            Ok(header) => header,
            Err(damage) => return Ok(ScanEnd { valid_end: position, damage: Some(damage) }),
        };
        let total = header.total_bytes();
        if position + total as u64 > to {
            return Ok(ScanEnd { valid_end: position, damage: Some(BatchError::Corrupt) });
        }
        if chunk.len() < in_chunk + total {
            // The batch runs past this chunk: read from its start, at least the whole batch.
            chunk = read_upto(reader, position, to, SCAN_CHUNK_BYTES.max(total as u64)).await?;
            chunk_start = position;
            if chunk.len() < total {
                return Ok(ScanEnd { valid_end: position, damage: Some(BatchError::Corrupt) });
            }
            continue;
        }
        let batch = chunk.slice(in_chunk..in_chunk + total);
        if verify {
            if let Err(damage) = verify_batch(&batch) {
                return Ok(ScanEnd { valid_end: position, damage: Some(damage) });
            }
        }
        let step = visit(&header, position, &batch);
        position += total as u64;
        if let Scan::Stop = step {
            break;
        }
    }
    Ok(ScanEnd { valid_end: position, damage: None })
}

async fn read_upto(reader: &FileReader, position: u64, to: u64, max: u64) -> Result<Bytes, IoError> {
    let len = usize::try_from((to - position).min(max)).expect("small");
    reader.read_at(position, len).await
}
