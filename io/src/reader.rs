//! The read side of a file: segment readers share the writer's file handle or open their own.

use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use bytes::Bytes;
use glommio::io::{BufferedFile, DmaFile};

use crate::faults::{self, FaultOp};
use crate::latency::{timed, IoOp};
use crate::{IoError, IoMode, Result};

#[derive(Clone)]
pub(crate) enum ReadBackend {
    Direct(Rc<DmaFile>),
    Buffered(Rc<BufferedFile>),
}

/// A read handle. Reads must stay within the length the file's writer has published.
#[derive(Clone)]
pub struct FileReader {
    backend: ReadBackend,
    path: PathBuf,
}

/// Which open file a reader reads, without keeping it open: a file replaced at the same path
/// (compaction) or removed and created again (a topic recreated) is another file.
#[derive(Clone)]
pub struct FileIdentity(WeakBackend);

#[derive(Clone)]
enum WeakBackend {
    Direct(Weak<DmaFile>),
    Buffered(Weak<BufferedFile>),
}

impl FileIdentity {
    /// Whether `reader` reads this very file (its handle, or a clone of it).
    pub fn is(&self, reader: &FileReader) -> bool {
        match (&self.0, &reader.backend) {
            (WeakBackend::Direct(weak), ReadBackend::Direct(file)) => std::ptr::eq(weak.as_ptr(), Rc::as_ptr(file)),
            (WeakBackend::Buffered(weak), ReadBackend::Buffered(file)) => std::ptr::eq(weak.as_ptr(), Rc::as_ptr(file)),
            _ => false,
        }
    }
}

impl FileReader {
    pub(crate) fn new(backend: ReadBackend, path: PathBuf) -> Self {
        Self { backend, path }
    }

    /// Opens a file for reading only.
    pub async fn open(path: &Path, mode: IoMode) -> Result<Self> {
        let backend = match mode {
            IoMode::Direct => {
                ReadBackend::Direct(Rc::new(DmaFile::open(path).await.map_err(|e| IoError::os("open", path, e))?))
            }
            IoMode::Buffered => {
                ReadBackend::Buffered(Rc::new(BufferedFile::open(path).await.map_err(|e| IoError::os("open", path, e))?))
            }
        };
        Ok(Self { backend, path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn identity(&self) -> FileIdentity {
        FileIdentity(match &self.backend {
            ReadBackend::Direct(file) => WeakBackend::Direct(Rc::downgrade(file)),
            ReadBackend::Buffered(file) => WeakBackend::Buffered(Rc::downgrade(file)),
        })
    }

    pub async fn size(&self) -> Result<u64> {
        let size = match &self.backend {
            ReadBackend::Direct(file) => file.file_size().await,
            ReadBackend::Buffered(file) => file.file_size().await,
        };
        size.map_err(|e| IoError::os("stat", &self.path, e))
    }

    /// Reads up to `len` bytes at `pos`; fewer at the end of the file. Direct reads are
    /// widened to the device alignment internally.
    pub async fn read_at(&self, pos: u64, len: usize) -> Result<Bytes> {
        faults::check(FaultOp::Read, &self.path).map_err(|e| IoError::os("read", &self.path, e))?;
        if len == 0 {
            // Nothing to read, and glommio must not be asked to: a zero-length read takes a
            // zero-length buffer, which only its io memory pool can give; with the pool in use
            // (several partitions recovering at once) glommio panics ("Buffer allocation
            // failed") instead. An empty index file at recovery is such a read.
            return Ok(Bytes::new());
        }
        let read = timed(IoOp::Read, async {
            match &self.backend {
                ReadBackend::Direct(file) => file.read_at(pos, len).await,
                ReadBackend::Buffered(file) => file.read_at(pos, len).await,
            }
        })
        .await;
        let read = read.map_err(|e| IoError::os("read", &self.path, e))?;
        Ok(Bytes::copy_from_slice(&read))
    }
}
