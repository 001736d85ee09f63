//! The fault seam: tests make chosen operations on chosen files fail, and learn how much of
//! each file was durable, to play a crash between write and fdatasync.
//!
//! Compiled only with the `fault-injection` feature; without it every check is a no-op. State
//! is per thread (per shard), like everything else a shard owns.
//!
//! A broker binary built with the feature reads faults from the `STRAND_FAULTS` environment
//! variable, so end-to-end tests can break a running broker's disk:
//! `OP:PATH_PART:ERRNO:TIMES[:SKIP]`, comma separated, where OP is write, sync or read. Each
//! shard thread installs them when it first touches a file; the first SKIP matching operations
//! succeed, the next TIMES fail. Example: `sync:eio-0/:5:1000` fails every fdatasync of
//! partition eio-0's files with EIO. ERRNO `panic` panics instead: a bug, for the tests of
//! what the broker does when a shard panics.

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
        /// The OS error to fail with; `None` panics.
        errno: Option<i32>,
        remaining: usize,
        /// Matching operations still to let through before failing.
        skip: usize,
    }

    /// The environment variable a fault-injection build reads its faults from.
    pub const ENV: &str = "STRAND_FAULTS";

    /// Parses one `OP:PATH_PART:ERRNO:TIMES[:SKIP]` fault.
    fn parse(spec: &str) -> Result<Fault, String> {
        let fields: Vec<&str> = spec.split(':').collect();
        let op = match fields.first().copied() {
            Some("write") => FaultOp::Write,
            Some("sync") => FaultOp::Sync,
            Some("read") => FaultOp::Read,
            other => return Err(format!("unknown operation {other:?}")),
        };
        let number = |i: usize, default: Option<usize>| -> Result<usize, String> {
            match (fields.get(i), default) {
                (Some(text), _) => text.parse().map_err(|_| format!("field {} is not a number: {text:?}", i + 1)),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(format!("field {} is missing", i + 1)),
            }
        };
        if fields.len() > 5 {
            return Err("too many fields".to_owned());
        }
        let path_contains = fields.get(1).ok_or("the path part is missing")?.to_string();
        let errno = match fields.get(2) {
            Some(&"panic") => None,
            _ => Some(i32::try_from(number(2, None)?).map_err(|_| "errno out of range".to_owned())?),
        };
        Ok(Fault { op, path_contains, errno, remaining: number(3, None)?, skip: number(4, Some(0))? })
    }

    /// The faults `STRAND_FAULTS` names; a malformed spec is reported and ignored.
    fn from_env() -> Vec<Fault> {
        let Ok(text) = std::env::var(ENV) else { return Vec::new() };
        let mut faults = Vec::new();
        for spec in text.split(',').filter(|s| !s.trim().is_empty()) {
            match parse(spec.trim()) {
                Ok(fault) => {
                    tracing::warn!(fault = spec, "fault injection: installed");
                    faults.push(fault);
                }
                Err(e) => tracing::error!(fault = spec, error = %e, "fault injection: ignored a malformed fault"),
            }
        }
        faults
    }

    #[derive(Default)]
    struct State {
        faults: Vec<Fault>,
        synced_len: HashMap<PathBuf, u64>,
        /// fdatasyncs started on this thread, and per path the first one that failed.
        syncs_started: u64,
        first_failed_sync: HashMap<PathBuf, u64>,
        /// Per path: fdatasyncs started and not yet returned successfully, and the most at once.
        syncs_in_flight: HashMap<PathBuf, (usize, usize)>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State { faults: from_env(), ..State::default() });
    }

    /// An fdatasync under way: its place in the order fdatasyncs started on this thread.
    pub(crate) struct SyncTicket(u64);

    /// The next `times` operations `op` on files whose path contains `path_contains` fail with
    /// the OS error `errno` (EIO is 5, ENOSPC 28).
    pub fn inject(op: FaultOp, path_contains: &str, errno: i32, times: usize) {
        STATE.with(|s| {
            s.borrow_mut().faults.push(Fault { op, path_contains: path_contains.to_owned(), errno: Some(errno), remaining: times, skip: 0 });
        });
    }

    /// Removes every injected fault and forgets synced lengths.
    pub fn clear() {
        STATE.with(|s| *s.borrow_mut() = State::default());
    }

    /// Bytes of `path` made durable by the successful fdatasyncs on this thread that started
    /// before any failed one.
    pub fn synced_len(path: &Path) -> Option<u64> {
        STATE.with(|s| s.borrow().synced_len.get(path).copied())
    }

    /// The most fdatasyncs of `path` in flight at once on this thread (a sync that failed
    /// after it started, or was cancelled, stays counted in flight).
    pub fn syncs_in_flight_peak(path: &Path) -> usize {
        STATE.with(|s| s.borrow().syncs_in_flight.get(path).map_or(0, |(_, most)| *most))
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
                Some(fault) if fault.skip > 0 => {
                    fault.skip -= 1;
                    Ok(())
                }
                Some(fault) => {
                    fault.remaining -= 1;
                    match fault.errno {
                        Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
                        None => panic!("fault injection: {op:?} of {text}"),
                    }
                }
                None => Ok(()),
            }
        })
    }

    /// Checks an fdatasync of `path` that is about to start. One that fails marks the path: an
    /// fdatasync started after it never counts as durable, as the kernel reports a writeback
    /// error once and a later fdatasync may return success although the data was lost.
    pub(crate) fn start_sync(path: &Path) -> std::io::Result<SyncTicket> {
        let seq = STATE.with(|s| {
            let mut state = s.borrow_mut();
            state.syncs_started += 1;
            state.syncs_started
        });
        check(FaultOp::Sync, path).inspect_err(|_| {
            STATE.with(|s| {
                s.borrow_mut().first_failed_sync.entry(path.to_owned()).or_insert(seq);
            });
        })?;
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            let (now, most) = state.syncs_in_flight.entry(path.to_owned()).or_default();
            *now += 1;
            *most = (*most).max(*now);
        });
        Ok(SyncTicket(seq))
    }

    /// The fdatasync of `ticket` returned: `len` bytes of `path` are durable, exactly (its
    /// writer's fdatasync) or at least (a [`crate::FileSyncer`]'s, which may finish after a
    /// later one), unless it started after one that failed.
    pub(crate) fn record_sync(path: &Path, len: u64, exact: bool, ticket: SyncTicket) {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            if let Some((now, _)) = state.syncs_in_flight.get_mut(path) {
                *now = now.saturating_sub(1);
            }
            if state.first_failed_sync.get(path).is_some_and(|failed| *failed < ticket.0) {
                return;
            }
            let entry = state.synced_len.entry(path.to_owned()).or_insert(len);
            *entry = if exact { len } else { (*entry).max(len) };
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_env_specs() {
            let fault = parse("sync:eio-0/:5:3:2").unwrap();
            assert_eq!((fault.op, fault.path_contains.as_str(), fault.errno, fault.remaining, fault.skip), (FaultOp::Sync, "eio-0/", Some(5), 3, 2));
            assert_eq!(parse("write:x:panic:1").unwrap().errno, None);
            assert_eq!(parse("read:x:5:1").unwrap().skip, 0);
            for bad in ["", "fsync:x:5:1", "write:x:five:1", "write:x:5", "write:x:5:1:0:9"] {
                assert!(parse(bad).is_err(), "{bad:?} should not parse");
            }
        }

        #[test]
        fn skipped_operations_succeed_then_fail() {
            clear();
            STATE.with(|s| s.borrow_mut().faults.push(parse("write:f.log:5:1:2").unwrap()));
            let path = Path::new("/tmp/f.log");
            assert!(check(FaultOp::Write, path).is_ok());
            assert!(check(FaultOp::Write, path).is_ok());
            assert_eq!(check(FaultOp::Write, path).unwrap_err().raw_os_error(), Some(5));
            assert!(check(FaultOp::Write, path).is_ok());
            clear();
        }
    }
}

#[cfg(feature = "fault-injection")]
pub use enabled::{clear, inject, synced_len, syncs_in_flight_peak, FaultOp};
#[cfg(feature = "fault-injection")]
pub(crate) use enabled::{check, record_sync, start_sync};

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

    pub(crate) struct SyncTicket;

    #[inline(always)]
    pub(crate) fn start_sync(_path: &Path) -> std::io::Result<SyncTicket> {
        Ok(SyncTicket)
    }

    #[inline(always)]
    pub(crate) fn record_sync(_path: &Path, _len: u64, _exact: bool, _ticket: SyncTicket) {}
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) use disabled::{check, record_sync, start_sync, FaultOp};
