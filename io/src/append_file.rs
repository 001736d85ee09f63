//! An append-only file, written with O_DIRECT (`direct`) or through the page cache
//! (`buffered`).
//!
//! On-disk contract: the file holds `len()` meaningful bytes. In direct mode writes are whole
//! pages, so zero padding may follow up to the next page boundary until the file is closed.
//! After `append` returns the bytes are written but not necessarily durable; after `sync`
//! returns they are fdatasync'ed. A write-through file (direct mode, opened O_DSYNC) makes
//! each append durable before it returns, with one io_uring operation instead of a write and
//! an fdatasync; its `sync` has nothing left to do. Space is reserved ahead with fallocate
//! (keeping the file size) in steps of `preallocate_bytes`, so appends rarely allocate blocks.
//! A reader must never read past the length the file's owner has published.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{BufferedFile, DmaFile, OpenOptions};

use crate::error::out_of_space;
use crate::faults::{self, FaultOp};
use crate::latency::{timed, IoOp};
use crate::reader::{FileReader, ReadBackend};
use crate::{IoError, IoMode, Result};

/// Direct writes are done in whole pages of this size (a multiple of every device's O_DIRECT
/// alignment that strand runs on).
pub const PAGE_BYTES: u64 = 4096;

/// How an [`AppendFile`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    mode: IoMode,
    /// Space is reserved ahead in steps of this; 0 reserves none.
    preallocate_bytes: u64,
    /// Direct mode only: open with O_DSYNC, so each append is durable when it returns.
    write_through: bool,
}

impl WriteOptions {
    /// Through the page cache, nothing reserved: small files (indexes, atomic replaces).
    pub const BUFFERED: Self = Self { mode: IoMode::Buffered, preallocate_bytes: 0, write_through: false };

    pub fn new(mode: IoMode, preallocate_bytes: u64) -> Self {
        Self { mode, preallocate_bytes, write_through: false }
    }

    /// Write-through when `on` and the mode is direct (a buffered write-through would be
    /// neither the page-cache design nor faster than it).
    pub fn write_through(self, on: bool) -> Self {
        Self { write_through: on && self.mode == IoMode::Direct, ..self }
    }
}

enum WriteBackend {
    /// O_DIRECT. `tail` holds the bytes of the partial page at `align_down(len)`, kept so the
    /// next append rewrites that page whole without reading it back.
    Direct { file: Rc<DmaFile>, tail: Vec<u8> },
    Buffered { file: Rc<BufferedFile> },
}

/// The write side of a file: owns its logical length.
pub struct AppendFile {
    backend: WriteBackend,
    path: PathBuf,
    len: u64,
    allocated: u64,
    preallocate_bytes: u64,
    write_through: bool,
}

impl AppendFile {
    /// Creates (or truncates) the file at `path`. The caller fsyncs the directory.
    pub async fn create(path: &Path, write: WriteOptions) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        let backend = open_backend(&mut options, path, write, "create").await?;
        Ok(Self::new(backend, path, 0, write))
    }

    fn new(backend: WriteBackend, path: &Path, len: u64, write: WriteOptions) -> Self {
        let WriteOptions { preallocate_bytes, write_through, .. } = write;
        Self { backend, path: path.to_owned(), len, allocated: len, preallocate_bytes, write_through }
    }

    /// Opens an existing file for appending after its first `len` bytes (the length recovery
    /// found valid); anything after them is cut off.
    pub async fn open_at(path: &Path, len: u64, write: WriteOptions) -> Result<Self> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let mut backend = open_backend(&mut options, path, write, "open").await?;
        if let WriteBackend::Direct { file, tail } = &mut backend {
            let page_start = align_down(len);
            let tail_len = usize::try_from(len - page_start).expect("less than a page");
            if tail_len > 0 {
                let page = file.read_at(page_start, tail_len).await.map_err(|e| IoError::os("read tail page of", path, e))?;
                if page.len() != tail_len {
                    return Err(IoError::ShortWrite { op: "read tail page of", path: path.to_owned(), written: page.len(), expected: tail_len });
                }
                *tail = page.to_vec();
            }
        }
        let mut this = Self::new(backend, path, len, write);
        this.truncate_to_len().await?;
        if this.write_through {
            // What an earlier run wrote without O_DSYNC (or past its last sync) is made durable
            // now: later appends carry only their own sync.
            this.fdatasync().await?;
        }
        Ok(this)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether each append carries its own fdatasync (O_DSYNC).
    pub fn is_write_through(&self) -> bool {
        self.write_through
    }

    /// A read handle on the same file.
    pub fn reader(&self) -> FileReader {
        FileReader::new(self.shared_backend(), self.path.clone())
    }

    /// Another handle on the open file, for reads and fdatasyncs beside the writer.
    fn shared_backend(&self) -> ReadBackend {
        match &self.backend {
            WriteBackend::Direct { file, .. } => ReadBackend::Direct(Rc::clone(file)),
            WriteBackend::Buffered { file } => ReadBackend::Buffered(Rc::clone(file)),
        }
    }

    /// Appends `chunks` in one write.
    pub async fn append(&mut self, chunks: &[Bytes]) -> Result<()> {
        let added: usize = chunks.iter().map(Bytes::len).sum();
        if added == 0 {
            return Ok(());
        }
        faults::check(FaultOp::Write, &self.path).map_err(|e| IoError::os("write", &self.path, e))?;
        self.maybe_preallocate(added as u64).await?;
        let new_len = self.len + added as u64;
        match &mut self.backend {
            WriteBackend::Direct { file, tail } => {
                // The partial tail page, then the chunks, zero-padded to a whole page, written at
                // the tail page's start.
                let start = align_down(self.len);
                let used = tail.len() + added;
                let size = usize::try_from(align_up(used as u64)).expect("fits in memory");
                let mut buf = file.alloc_dma_buffer(size);
                let dst = buf.as_bytes_mut();
                dst[..tail.len()].copy_from_slice(tail);
                copy_chunks(&mut dst[tail.len()..used], chunks);
                dst[used..].fill(0);
                let new_tail_start = usize::try_from(align_down(new_len) - start).expect("fits");
                let new_tail = dst[new_tail_start..used].to_vec();
                let op = if self.write_through { IoOp::SyncedWrite } else { IoOp::Write };
                let written = timed(op, file.write_at(buf, start)).await.map_err(|e| IoError::os("write", &self.path, e))?;
                if written != size {
                    return Err(IoError::ShortWrite { op: "write", path: self.path.clone(), written, expected: size });
                }
                if self.write_through {
                    // The seam plays the write's own fdatasync failing after the data went out:
                    // as a failed write, the file's length does not move.
                    let ticket = faults::start_sync(&self.path).map_err(|e| IoError::os("fdatasync", &self.path, e))?;
                    faults::finish_sync(&self.path, new_len, true, ticket).await.map_err(|e| IoError::os("fdatasync", &self.path, e))?;
                }
                *tail = new_tail;
            }
            WriteBackend::Buffered { file } => {
                let mut buf = vec![0u8; added];
                copy_chunks(&mut buf, chunks);
                let written = timed(IoOp::Write, file.write_at(buf, self.len)).await.map_err(|e| IoError::os("write", &self.path, e))?;
                if written != added {
                    return Err(IoError::ShortWrite { op: "write", path: self.path.clone(), written, expected: added });
                }
            }
        }
        self.len = new_len;
        Ok(())
    }

    /// Reserves the next step of space when an append would pass what is reserved.
    async fn maybe_preallocate(&mut self, added: u64) -> Result<()> {
        if self.preallocate_bytes == 0 || self.len + added <= self.allocated {
            return Ok(());
        }
        let target = align_up(self.len + added).max(self.allocated + self.preallocate_bytes);
        let result = match &self.backend {
            WriteBackend::Direct { file, .. } => file.pre_allocate(target, true).await,
            WriteBackend::Buffered { file } => file.pre_allocate(target, true).await,
        };
        match result {
            Ok(()) => self.allocated = target,
            Err(e) => {
                let e: std::io::Error = e.into();
                if e.kind() == std::io::ErrorKind::Unsupported {
                    // Not every filesystem can fallocate; appends then allocate as they go.
                    self.preallocate_bytes = 0;
                } else if !out_of_space(&e) {
                    return Err(IoError::os("fallocate", &self.path, e));
                }
                // Out of space for a whole step: the write itself finds out whether its own
                // bytes fit; reserving is tried again on the next append.
            }
        }
        Ok(())
    }

    /// Everything appended before this call is durable when it returns: an fdatasync, or
    /// nothing for a write-through file, whose appends were durable when they returned.
    pub async fn sync(&self) -> Result<()> {
        if self.write_through {
            return Ok(());
        }
        self.fdatasync().await
    }

    /// An fdatasync of everything appended, whatever the file's options.
    async fn fdatasync(&self) -> Result<()> {
        self.syncer().fdatasync(self.len, true).await
    }

    /// A handle that fdatasyncs this file without its writer (the shard journal's checkpoints,
    /// the writer's fdatasyncs in flight beside its next write).
    pub fn syncer(&self) -> FileSyncer {
        FileSyncer { backend: self.shared_backend(), path: self.path.clone() }
    }

    /// Cuts padding and reserved space so the file's size is its logical length (done when a
    /// segment is sealed or closed).
    pub async fn truncate_to_len(&mut self) -> Result<()> {
        let result = match &self.backend {
            WriteBackend::Direct { file, .. } => file.truncate(self.len).await,
            WriteBackend::Buffered { file } => file.truncate(self.len).await,
        };
        self.allocated = self.len;
        result.map_err(|e| IoError::os("truncate", &self.path, e))
    }

    /// Trims the file to its length and fdatasyncs it (write-through too: the new size is
    /// metadata no write carried).
    pub async fn close(mut self) -> Result<()> {
        self.truncate_to_len().await?;
        self.fdatasync().await
    }
}

/// fdatasyncs a file its [`AppendFile`] writes; the file stays open while a handle is held.
#[derive(Clone)]
pub struct FileSyncer {
    backend: ReadBackend,
    path: PathBuf,
}

impl FileSyncer {
    /// fdatasync: every append completed before this call is durable when it returns; `len`
    /// is the file's length then (the fault seam records it).
    pub async fn sync(&self, len: u64) -> Result<()> {
        self.fdatasync(len, false).await
    }

    async fn fdatasync(&self, len: u64, exact: bool) -> Result<()> {
        let ticket = faults::start_sync(&self.path).map_err(|e| IoError::os("fdatasync", &self.path, e))?;
        let result = timed(IoOp::Sync, async {
            match &self.backend {
                ReadBackend::Direct(file) => file.fdatasync().await,
                ReadBackend::Buffered(file) => file.fdatasync().await,
            }
        })
        .await;
        if let Err(e) = result {
            faults::fail_sync(&self.path, ticket);
            return Err(IoError::os("fdatasync", &self.path, e));
        }
        faults::finish_sync(&self.path, len, exact, ticket).await.map_err(|e| IoError::os("fdatasync", &self.path, e))
    }
}

async fn open_backend(options: &mut OpenOptions, path: &Path, write: WriteOptions, op: &'static str) -> Result<WriteBackend> {
    if write.write_through {
        options.custom_flags(libc::O_DSYNC);
    }
    Ok(match write.mode {
        IoMode::Direct => {
            let file = options.dma_open(path).await.map_err(|e| IoError::os(op, path, e))?;
            WriteBackend::Direct { file: Rc::new(file), tail: Vec::new() }
        }
        IoMode::Buffered => {
            let file = options.buffered_open(path).await.map_err(|e| IoError::os(op, path, e))?;
            WriteBackend::Buffered { file: Rc::new(file) }
        }
    })
}

fn copy_chunks(dst: &mut [u8], chunks: &[Bytes]) {
    let mut at = 0;
    for chunk in chunks {
        dst[at..at + chunk.len()].copy_from_slice(chunk);
        at += chunk.len();
    }
}

pub(crate) fn align_down(n: u64) -> u64 {
    n - n % PAGE_BYTES
}

pub(crate) fn align_up(n: u64) -> u64 {
    align_down(n + PAGE_BYTES - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        LocalExecutorBuilder::default()
            .io_memory(256 << 10)
            .spawn(move || async move {
                let dir = std::env::temp_dir();
                let name = format!("test-{:?}", std::thread::current().id());
                crate::fs::probe_device(&dir, &name).await.expect("probe");
                f().await
            })
            .expect("executor")
            .join()
            .expect("join");
    }

    fn appends_across_pages_read_back_exactly(write: WriteOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        run(move || async move {
            let mut file = AppendFile::create(&path, write).await.unwrap();
            let mut expected = Vec::new();
            for i in 0..50u8 {
                let chunk = Bytes::from(vec![i; 97 * usize::from(i) + 1]);
                expected.extend_from_slice(&chunk);
                file.append(&[chunk]).await.unwrap();
            }
            file.sync().await.unwrap();
            assert_eq!(file.len(), expected.len() as u64);
            let got = file.reader().read_at(0, expected.len()).await.unwrap();
            assert_eq!(&got[..], &expected[..]);
            file.close().await.unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().len(), expected.len() as u64);
        });
    }

    #[test]
    fn direct_appends_across_pages_read_back_exactly() {
        appends_across_pages_read_back_exactly(WriteOptions::new(IoMode::Direct, 64 << 10));
    }

    #[test]
    fn write_through_appends_across_pages_read_back_exactly() {
        appends_across_pages_read_back_exactly(WriteOptions::new(IoMode::Direct, 64 << 10).write_through(true));
    }

    #[test]
    fn buffered_appends_across_pages_read_back_exactly() {
        appends_across_pages_read_back_exactly(WriteOptions::new(IoMode::Buffered, 64 << 10));
    }

    /// The open file description's flags, as the kernel reports them.
    fn open_flags(file: &AppendFile) -> i32 {
        use std::os::fd::AsRawFd;
        let fd = match &file.backend {
            WriteBackend::Direct { file, .. } => file.as_raw_fd(),
            WriteBackend::Buffered { file } => file.as_raw_fd(),
        };
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap().trim();
        i32::from_str_radix(flags, 8).unwrap()
    }

    #[test]
    fn only_a_direct_write_through_file_is_opened_o_dsync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        run(move || async move {
            for (write, dsync) in [
                (WriteOptions::new(IoMode::Direct, 0).write_through(true), true),
                (WriteOptions::new(IoMode::Direct, 0), false),
                (WriteOptions::new(IoMode::Buffered, 0).write_through(true), false),
            ] {
                let mut file = AppendFile::create(&path, write).await.unwrap();
                assert_eq!(open_flags(&file) & libc::O_DSYNC != 0, dsync, "{write:?} at create");
                file.append(&[Bytes::from(vec![7u8; 10])]).await.unwrap();
                file.close().await.unwrap();
                let file = AppendFile::open_at(&path, 10, write).await.unwrap();
                assert_eq!(open_flags(&file) & libc::O_DSYNC != 0, dsync, "{write:?} at open");
                file.close().await.unwrap();
            }
        });
    }

    fn reopen_keeps_the_tail_page_and_cuts_what_follows(mode: IoMode) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.log");
        run(move || async move {
            let mut file = AppendFile::create(&path, WriteOptions::new(mode, 0)).await.unwrap();
            file.append(&[Bytes::from(vec![1u8; 5000])]).await.unwrap();
            file.close().await.unwrap();
            // Recovery decided only the first 4500 bytes are valid.
            let mut file = AppendFile::open_at(&path, 4500, WriteOptions::new(mode, 0)).await.unwrap();
            file.append(&[Bytes::from(vec![2u8; 100])]).await.unwrap();
            file.close().await.unwrap();
            let reader = FileReader::open(&path, mode).await.unwrap();
            assert_eq!(reader.size().await.unwrap(), 4600);
            let got = reader.read_at(0, 4600).await.unwrap();
            assert!(got[..4500].iter().all(|b| *b == 1));
            assert!(got[4500..].iter().all(|b| *b == 2));
        });
    }

    #[test]
    fn direct_reopen_keeps_the_tail_page_and_cuts_what_follows() {
        reopen_keeps_the_tail_page_and_cuts_what_follows(IoMode::Direct);
    }

    #[test]
    fn buffered_reopen_keeps_the_tail_page_and_cuts_what_follows() {
        reopen_keeps_the_tail_page_and_cuts_what_follows(IoMode::Buffered);
    }
}
