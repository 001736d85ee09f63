//! An append-only file written with O_DIRECT.
//!
//! On-disk contract: the file holds `len()` meaningful bytes followed by zero padding up to the
//! next page boundary (writes are whole pages). After `append` returns, the bytes are in the
//! device's queue but not necessarily durable; after `sync` returns they are fdatasync'ed.
//! A reader of this file must never read past the length its owner has published as written.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaFile, OpenOptions};

use crate::{IoError, Result};

/// Writes are done in whole pages of this size (a multiple of every device's O_DIRECT
/// alignment that strand runs on).
pub const PAGE_BYTES: u64 = 4096;

/// The write side of a file: owns the logical length and the bytes of the partial last page.
pub struct AppendFile {
    file: Rc<DmaFile>,
    path: PathBuf,
    len: u64,
    /// The bytes of the partial page at `align_down(len)`, kept so the next append can rewrite
    /// that page whole without reading it back.
    tail: Vec<u8>,
}

impl AppendFile {
    /// Creates (or truncates) the file at `path`. The caller fsyncs the directory.
    pub async fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(path)
            .await
            .map_err(|e| IoError::os("create", path, e))?;
        Ok(Self { file: Rc::new(file), path: path.to_owned(), len: 0, tail: Vec::new() })
    }

    /// Opens an existing file for appending after its first `len` bytes (the length recovery
    /// found valid); anything after them is cut off.
    pub async fn open_at(path: &Path, len: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(|e| IoError::os("open", path, e))?;
        let file = Rc::new(file);
        let page_start = align_down(len);
        let tail_len = usize::try_from(len - page_start).expect("less than a page");
        let tail = if tail_len == 0 {
            Vec::new()
        } else {
            let page = file
                .read_at(page_start, tail_len)
                .await
                .map_err(|e| IoError::os("read tail page of", path, e))?;
            page.to_vec()
        };
        let mut this = Self { file, path: path.to_owned(), len, tail };
        if this.tail.len() != tail_len {
            return Err(IoError::ShortWrite {
                op: "read tail page of",
                path: this.path,
                written: this.tail.len(),
                expected: tail_len,
            });
        }
        this.truncate_to_len().await?;
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

    /// A read handle on the same file.
    pub fn reader(&self) -> FileReader {
        FileReader { file: Rc::clone(&self.file), path: self.path.clone() }
    }

    /// Appends `chunks` in one write: the partial tail page, then the chunks, padded with zeros
    /// to a whole page, written at the tail page's start.
    pub async fn append(&mut self, chunks: &[Bytes]) -> Result<()> {
        let added: usize = chunks.iter().map(Bytes::len).sum();
        if added == 0 {
            return Ok(());
        }
        let start = align_down(self.len);
        let used = self.tail.len() + added;
        let size = usize::try_from(align_up(used as u64)).expect("fits in memory");
        let mut buf = self.file.alloc_dma_buffer(size);
        let dst = buf.as_bytes_mut();
        dst[..self.tail.len()].copy_from_slice(&self.tail);
        let mut at = self.tail.len();
        for chunk in chunks {
            dst[at..at + chunk.len()].copy_from_slice(chunk);
            at += chunk.len();
        }
        dst[used..].fill(0);
        let new_len = self.len + added as u64;
        let new_tail_start = usize::try_from(align_down(new_len) - start).expect("fits");
        let new_tail = dst[new_tail_start..used].to_vec();
        let written =
            self.file.write_at(buf, start).await.map_err(|e| IoError::os("write", &self.path, e))?;
        if written != size {
            return Err(IoError::ShortWrite { op: "write", path: self.path.clone(), written, expected: size });
        }
        self.len = new_len;
        self.tail = new_tail;
        Ok(())
    }

    /// fdatasync: everything appended before this call is durable when it returns.
    pub async fn sync(&self) -> Result<()> {
        self.file.fdatasync().await.map_err(|e| IoError::os("fdatasync", &self.path, e))
    }

    /// Cuts the zero padding of the last page so the file's size is its logical length
    /// (done when a segment is sealed or closed).
    pub async fn truncate_to_len(&mut self) -> Result<()> {
        self.file.truncate(self.len).await.map_err(|e| IoError::os("truncate", &self.path, e))
    }

    /// Syncs, trims the padding and closes.
    pub async fn close(mut self) -> Result<()> {
        self.truncate_to_len().await?;
        self.sync().await?;
        Ok(())
    }
}

/// A read handle on a file being appended to, or sealed. Reads must stay within the length its
/// writer has published.
#[derive(Clone)]
pub struct FileReader {
    file: Rc<DmaFile>,
    path: PathBuf,
}

impl FileReader {
    /// Opens a file for reading only.
    pub async fn open(path: &Path) -> Result<Self> {
        let file = DmaFile::open(path).await.map_err(|e| IoError::os("open", path, e))?;
        Ok(Self { file: Rc::new(file), path: path.to_owned() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn size(&self) -> Result<u64> {
        self.file.file_size().await.map_err(|e| IoError::os("stat", &self.path, e))
    }

    /// Reads up to `len` bytes at `pos`; fewer at the end of the file.
    pub async fn read_at(&self, pos: u64, len: usize) -> Result<Bytes> {
        let read = self.file.read_at(pos, len).await.map_err(|e| IoError::os("read", &self.path, e))?;
        Ok(Bytes::copy_from_slice(&read))
    }
}

fn align_down(n: u64) -> u64 {
    n - n % PAGE_BYTES
}

fn align_up(n: u64) -> u64 {
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

    #[test]
    fn appends_across_pages_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        run(move || async move {
            let mut file = AppendFile::create(&path).await.unwrap();
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
        });
    }

    #[test]
    fn reopen_keeps_the_tail_page_and_cuts_what_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.log");
        run(move || async move {
            let mut file = AppendFile::create(&path).await.unwrap();
            file.append(&[Bytes::from(vec![1u8; 5000])]).await.unwrap();
            file.close().await.unwrap();
            // Recovery decided only the first 4500 bytes are valid.
            let mut file = AppendFile::open_at(&path, 4500).await.unwrap();
            file.append(&[Bytes::from(vec![2u8; 100])]).await.unwrap();
            file.close().await.unwrap();
            let reader = FileReader::open(&path).await.unwrap();
            assert_eq!(reader.size().await.unwrap(), 4600);
            let got = reader.read_at(0, 4600).await.unwrap();
            assert!(got[..4500].iter().all(|b| *b == 1));
            assert!(got[4500..].iter().all(|b| *b == 2));
        });
    }
}
