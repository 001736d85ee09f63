//! Directory and whole-file helpers. Directory walks and removals are blocking syscalls, so
//! they run on glommio's blocking thread pool, never on the shard thread.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use glommio::io::Directory;

use crate::{AppendFile, FileReader, IoError, IoMode, Result, WriteOptions};

/// fsync a directory, making creations, renames and removals in it durable.
pub async fn sync_dir(path: &Path) -> Result<()> {
    let dir = Directory::open(path).await.map_err(|e| IoError::os("open dir", path, e))?;
    dir.sync().await.map_err(|e| IoError::os("fsync dir", path, e))?;
    dir.close().await.map_err(|e| IoError::os("close dir", path, e))
}

/// Creates `path` and its parents, then fsyncs the parent so the new directory is durable.
pub async fn create_dir_all(path: &Path) -> Result<()> {
    let owned = path.to_owned();
    blocking(move || std::fs::create_dir_all(&owned)).await.map_err(|e| IoError::os("create dir", path, e))?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// Removes `path` and everything under it, then fsyncs the parent.
pub async fn remove_dir_all(path: &Path) -> Result<()> {
    let owned = path.to_owned();
    match blocking(move || std::fs::remove_dir_all(&owned)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IoError::os("remove dir", path, e)),
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// The entries of a directory (names only), or empty if it does not exist.
pub async fn list_dir(path: &Path) -> Result<Vec<PathBuf>> {
    let owned = path.to_owned();
    let listed = blocking(move || -> std::io::Result<Vec<PathBuf>> {
        match std::fs::read_dir(&owned) {
            Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    })
    .await;
    let mut paths = listed.map_err(|e| IoError::os("list dir", path, e))?;
    paths.sort();
    Ok(paths)
}

/// Removes one file (missing is fine) and fsyncs its directory.
pub async fn remove_file(path: &Path) -> Result<()> {
    match glommio::io::remove(path).await {
        Ok(()) => {}
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(IoError::os("remove", path, e));
            }
        }
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// Replaces the file at `path` with `contents` atomically: write a temporary file, fdatasync
/// it, rename it over `path`, fsync the directory. A crash leaves the old or the new contents.
pub async fn write_atomic(path: &Path, contents: Bytes) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = AppendFile::create(&tmp, WriteOptions::BUFFERED).await?;
    file.append(&[contents]).await?;
    file.close().await?;
    glommio::io::rename(&tmp, path).await.map_err(|e| IoError::os("rename", &tmp, e))?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// Renames `from` over `to` (atomic) and fsyncs the directory of `to`.
pub async fn rename(from: &Path, to: &Path) -> Result<()> {
    glommio::io::rename(from, to).await.map_err(|e| IoError::os("rename", from, e))?;
    match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent).await,
        _ => Ok(()),
    }
}

/// The whole contents of a file, or None if it does not exist.
pub async fn read_whole(path: &Path) -> Result<Option<Bytes>> {
    let reader = match FileReader::open(path, IoMode::Buffered).await {
        Ok(reader) => reader,
        Err(IoError::Os { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let size = usize::try_from(reader.size().await?).expect("fits in memory");
    Ok(Some(reader.read_at(0, size).await?))
}

/// The size of the filesystem holding `path` and the bytes an unprivileged user can still
/// write to it, as Java's FileStore.getTotalSpace and getUsableSpace report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilesystemSpace {
    pub total_bytes: u64,
    pub usable_bytes: u64,
}

/// statvfs of the filesystem holding `path`.
pub async fn filesystem_space(path: &Path) -> Result<FilesystemSpace> {
    let owned = path.to_owned();
    let stat = blocking(move || rustix::fs::statvfs(&owned))
        .await
        .map_err(|e| IoError::os("statvfs", path, std::io::Error::from(e)))?;
    Ok(FilesystemSpace {
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        usable_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

/// Runs a blocking syscall on glommio's blocking pool.
pub(crate) async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
}

/// Settles, for this shard thread, how glommio drives the device under `dir`.
///
/// glommio decides per device, on the first O_DIRECT open, whether to use the io_uring poll
/// ring by reading the opened file. When that first file is empty the read succeeds trivially,
/// the poll ring is chosen, and on devices without poll queues (virtio, most cloud disks)
/// every later read fails with EOPNOTSUPP. Opening a non-empty file first makes the check
/// real. Call once per shard before any other file under `dir` is opened.
pub async fn probe_device(dir: &Path, shard_name: &str) -> Result<()> {
    let path = dir.join(format!(".io-probe-{shard_name}"));
    let owned = path.clone();
    blocking(move || std::fs::write(&owned, vec![0xA5u8; crate::PAGE_BYTES as usize]))
        .await
        .map_err(|e| IoError::os("write probe", &path, e))?;
    let reader = FileReader::open(&path, IoMode::Direct).await?;
    drop(reader);
    let owned = path.clone();
    blocking(move || std::fs::remove_file(&owned)).await.map_err(|e| IoError::os("remove probe", &path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests
mod tests {
    use super::*;

    /// Runs `test` on a shard whose io memory pool is `io_memory` bytes.
    fn on_shard<F: std::future::Future<Output = ()> + 'static>(io_memory: usize, test: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::default().io_memory(io_memory).spawn(test).expect("executor").join().expect("join");
    }

    #[test]
    fn a_directorys_filesystem_has_usable_space_within_its_total() {
        on_shard(256 << 10, || async {
            let dir = tempfile::tempdir().unwrap();
            let space = filesystem_space(dir.path()).await.unwrap();
            assert!(space.total_bytes > 0 && space.usable_bytes <= space.total_bytes, "{space:?}");
            assert!(filesystem_space(&dir.path().join("missing")).await.is_err());
        });
    }

    #[test]
    fn an_empty_file_reads_whole_while_the_io_memory_pool_is_in_use() {
        on_shard(64 << 10, || async {
            let dir = tempfile::tempdir().unwrap();
            let empty = dir.path().join("empty.index");
            std::fs::write(&empty, b"").unwrap();
            // Hold every buffer the pool can give (and some it cannot), as the reads of
            // several partitions recovering at once do.
            let file = glommio::io::DmaFile::create(dir.path().join("pool")).await.unwrap();
            let held: Vec<_> = (0..32).map(|_| file.alloc_dma_buffer(4096)).collect();
            assert_eq!(read_whole(&empty).await.unwrap().unwrap().len(), 0);
            for mode in [IoMode::Buffered, IoMode::Direct] {
                let reader = FileReader::open(&empty, mode).await.unwrap();
                assert!(reader.read_at(0, 0).await.unwrap().is_empty());
            }
            drop(held);
            file.close().await.unwrap();
        });
    }
}
