//! strand-io: the only code that touches files.
//!
//! Runs on every shard, at the bottom of the data path: segment writers append through
//! [`AppendFile`] (O_DIRECT, page-aligned, the partial tail page kept in memory and rewritten),
//! readers read through [`FileReader`], and the small helpers in [`fs`] create, fsync and remove
//! files and directories. Nothing here blocks a shard thread: file I/O goes through io_uring and
//! directory walks run on glommio's blocking pool.

mod append_file;
mod error;
pub mod fs;

pub use append_file::{AppendFile, FileReader, PAGE_BYTES};
pub use error::IoError;

/// Result of every operation in this crate.
pub type Result<T> = std::result::Result<T, IoError>;
