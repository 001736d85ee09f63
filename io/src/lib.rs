//! strand-io: the only code that touches files.
//!
//! Runs on every shard, at the bottom of the data path: segment writers append through
//! [`AppendFile`] (O_DIRECT with the partial tail page kept in memory and rewritten, or through
//! the page cache in `buffered` mode), readers read through [`FileReader`], and the helpers in
//! [`fs`] create, fsync and remove files and directories; the shard journal overwrites its
//! [`RingFile`] in place. Nothing here blocks a shard thread:
//! file I/O goes through io_uring and directory walks run on glommio's blocking pool.
//! [`faults`] is the seam through which tests make operations fail; [`latency`] times the
//! writes, fdatasyncs and reads.

mod append_file;
mod error;
pub mod faults;
mod mapped_file;
pub mod fs;
pub mod latency;
mod reader;
mod ring_file;

pub use append_file::{AppendFile, FileSyncer, WriteOptions, PAGE_BYTES};
pub use error::IoError;
pub use mapped_file::MappedFile;
pub use strand_config::IoMode;
pub use reader::{FileIdentity, FileReader};
pub use ring_file::RingFile;

/// Result of every operation in this crate.
pub type Result<T> = std::result::Result<T, IoError>;
