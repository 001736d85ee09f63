//! The fault seam: tests make chosen operations on chosen files fail, and learn how much of
//! each file was durable, to play a crash between write and fdatasync.
//!
//! Compiled only with the `fault-injection` feature; without it every check is a no-op. State
//! is per thread (per shard), like everything else a shard owns.

#[cfg(feature = "fault-injection")]
mod enabled {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    /// An operation that can be made to fail.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FaultOp {
        Write,
        Sync,
        Read,
    }

    struct Fault {
        op: FaultOp,
        path_contains: String,
        errno: i32,
        remaining: usize,
    }

    #[derive(Default)]
    struct State {
        faults: Vec<Fault>,
        synced_len: HashMap<PathBuf, u64>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// The next `times` operations `op` on files whose path contains `path_contains` fail with
    /// the OS error `errno` (EIO is 5, ENOSPC 28).
    pub fn inject(op: FaultOp, path_contains: &str, errno: i32, times: usize) {
        STATE.with(|s| {
            s.borrow_mut().faults.push(Fault { op, path_contains: path_contains.to_owned(), errno, remaining: times });
        });
    }

    /// Removes every injected fault and forgets synced lengths.
    pub fn clear() {
        STATE.with(|s| *s.borrow_mut() = State::default());
    }

    /// Bytes of `path` made durable by the last successful fdatasync on this thread.
    pub fn synced_len(path: &Path) -> Option<u64> {
        STATE.with(|s| s.borrow().synced_len.get(path).copied())
    }

    pub(crate) fn check(op: FaultOp, path: &Path) -> std::io::Result<()> {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let text = path.to_string_lossy();
            let hit = state
                .faults
                .iter_mut()
                .find(|f| f.op == op && f.remaining > 0 && text.contains(&f.path_contains));
            match hit {
                Some(fault) => {
                    fault.remaining -= 1;
                    Err(std::io::Error::from_raw_os_error(fault.errno))
                }
                None => Ok(()),
            }
        })
    }

    pub(crate) fn record_sync(path: &Path, len: u64) {
        STATE.with(|s| {
            s.borrow_mut().synced_len.insert(path.to_owned(), len);
        });
    }
}

#[cfg(feature = "fault-injection")]
pub use enabled::{clear, inject, synced_len, FaultOp};
#[cfg(feature = "fault-injection")]
pub(crate) use enabled::{check, record_sync};

#[cfg(not(feature = "fault-injection"))]
mod disabled {
    use std::path::Path;

    #[derive(Debug, Clone, Copy)]
    pub enum FaultOp {
        Write,
        Sync,
        Read,
    }

    #[inline(always)]
    pub(crate) fn check(_op: FaultOp, _path: &Path) -> std::io::Result<()> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn record_sync(_path: &Path, _len: u64) {}
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) use disabled::{check, record_sync, FaultOp};
