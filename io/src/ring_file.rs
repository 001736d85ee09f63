//! A file of fixed size written in place, with O_DIRECT: the shard journal's ring.
//!
//! It is created full of zeros and fdatasync'ed, so every later write overwrites blocks that
//! are allocated and already written: the fdatasync after such a write has no metadata to
//! write (no size change, no extent to convert), only the device's cache to flush, and on the
//! bench VM it did not wait behind a concurrent reader the way an extending append's did
//! (docs/benchmarks.md). Writes are whole pages at page-aligned positions.

use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions};

use crate::append_file::{align_up, PAGE_BYTES};
use crate::faults::{self, FaultOp};
use crate::latency::{timed, IoOp};
use crate::{IoError, Result};

/// Zeros are written in chunks of this size when the file is created.
const ZERO_CHUNK_BYTES: u64 = 1 << 20;

pub struct RingFile {
    file: DmaFile,
    path: PathBuf,
    size: u64,
}

impl RingFile {
    /// Creates (or truncates) the file at `path` as `size` bytes (rounded up to a page) of
    /// zeros, fdatasync'ed. The caller fsyncs the directory.
    pub async fn create(path: &Path, size: u64) -> Result<Self> {
        let size = align_up(size.max(PAGE_BYTES));
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        let file = options.dma_open(path).await.map_err(|e| IoError::os("create", path, e))?;
        let this = Self { file, path: path.to_owned(), size };
        let mut at = 0;
        while at < size {
            let len = ZERO_CHUNK_BYTES.min(size - at);
            this.write_with(at, usize::try_from(len).expect("a chunk fits in memory"), |buf| buf.fill(0)).await?;
            at += len;
        }
        this.sync().await?;
        Ok(this)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `len` bytes (a multiple of the page size) at `position` (page aligned, within
    /// the file), filled in place by `fill`: the caller encodes straight into the DMA buffer.
    pub async fn write_with(&self, position: u64, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<()> {
        assert!(position.is_multiple_of(PAGE_BYTES) && (len as u64).is_multiple_of(PAGE_BYTES), "ring writes are whole pages");
        assert!(position + len as u64 <= self.size, "ring writes stay inside the file");
        faults::check(FaultOp::Write, &self.path).map_err(|e| IoError::os("write", &self.path, e))?;
        let mut buf = self.file.alloc_dma_buffer(len);
        fill(buf.as_bytes_mut());
        let written = timed(IoOp::Write, self.file.write_at(buf, position)).await.map_err(|e| IoError::os("write", &self.path, e))?;
        if written != len {
            return Err(IoError::ShortWrite { op: "write", path: self.path.clone(), written, expected: len });
        }
        Ok(())
    }

    /// fdatasync: every write before this call is durable when it returns.
    pub async fn sync(&self) -> Result<()> {
        faults::check(FaultOp::Sync, &self.path).map_err(|e| IoError::os("fdatasync", &self.path, e))?;
        timed(IoOp::Sync, self.file.fdatasync()).await.map_err(|e| IoError::os("fdatasync", &self.path, e))
    }

    pub async fn close(self) -> Result<()> {
        self.file.close().await.map_err(|e| IoError::os("close", &self.path, e))
    }
}
