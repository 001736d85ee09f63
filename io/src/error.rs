//! The io crate's error: what was being done, to which path, and the OS cause.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("{op} {path}: {source}")]
    Os {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: wrote {written} of {expected} bytes")]
    ShortWrite { op: &'static str, path: PathBuf, written: usize, expected: usize },
}

impl IoError {
    /// An error found by a layer above this crate about `path` (the journal that held a
    /// partition's batches failed; a replay could not be made durable).
    pub fn again(op: &'static str, path: &std::path::Path, message: String) -> Self {
        Self::Os { op, path: path.to_owned(), source: std::io::Error::other(message) }
    }

    pub(crate) fn os(op: &'static str, path: &std::path::Path, source: impl Into<std::io::Error>) -> Self {
        Self::Os { op, path: path.to_owned(), source: source.into() }
    }

    /// True when the filesystem is out of space or quota (ENOSPC, EDQUOT, or a write to a
    /// regular file that stopped short, which means the same): the broker answers such writes
    /// with KAFKA_STORAGE_ERROR, keeps serving reads, and writes again once space is freed.
    /// A failed fdatasync never counts: the kernel may have dropped the dirty pages, so the
    /// log goes offline instead. A write-through (O_DSYNC) write that fails out of space
    /// does count, its sync included: it was O_DIRECT, so no dirty page can have been
    /// dropped, and the retry writes the whole range again from memory.
    pub fn is_out_of_space(&self) -> bool {
        match self {
            Self::Os { op, source, .. } => *op != "fdatasync" && out_of_space(source),
            Self::ShortWrite { op, .. } => *op == "write",
        }
    }
}

/// ENOSPC or EDQUOT. glommio keeps the kind but not the OS code when it adds the operation
/// and path to an error, so the kind is what tells.
pub(crate) fn out_of_space(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(error.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}
