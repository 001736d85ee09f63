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
    pub(crate) fn os(op: &'static str, path: &std::path::Path, source: impl Into<std::io::Error>) -> Self {
        Self::Os { op, path: path.to_owned(), source: source.into() }
    }

    /// True when the device is out of space (ENOSPC); the broker answers such writes with
    /// KAFKA_STORAGE_ERROR and keeps serving reads.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Self::Os { source, .. } if source.raw_os_error() == Some(28))
    }
}
