//! The fault seam's working half, compiled with the `fault-injection` feature.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::task::{Poll, Waker};

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

/// An fdatasync held once it returned, until a test releases it.
struct Held {
    ticket: u64,
    /// Set by `release_sync`: success, or the OS error to return.
    outcome: Option<Option<i32>>,
    waker: Option<Waker>,
}

/// What the fdatasyncs of one file made durable.
#[derive(Default)]
struct FileSyncs {
    /// Tickets of the fdatasyncs started and not yet returned (nor dropped), and the most at
    /// once.
    in_flight: BTreeSet<u64>,
    peak: usize,
    /// The first fdatasync that failed: none started after it counts as durable.
    first_failed: Option<u64>,
    /// The length the successful fdatasyncs made durable, as of the oldest one in flight.
    base: Option<u64>,
    /// The successful ones since, in the order they returned: a sync that started before
    /// them and fails later takes them back.
    recent: Vec<Synced>,
}

/// A successful fdatasync: its ticket, the length it recorded and whether exactly (its
/// writer's fdatasync) or at least (a [`crate::FileSyncer`]'s, which may finish after a
/// later one).
type Synced = (u64, u64, bool);

fn apply(len: Option<u64>, (_, synced, exact): Synced) -> Option<u64> {
    Some(if exact { synced } else { len.map_or(synced, |len| len.max(synced)) })
}

impl FileSyncs {
    /// `settle` has already dropped what a failed fdatasync took back.
    fn synced_len(&self) -> Option<u64> {
        self.recent.iter().copied().fold(self.base, apply)
    }

    /// Folds into `base` what no fdatasync still in flight can take back, and forgets what
    /// a failed one did.
    fn settle(&mut self) {
        if let Some(failed) = self.first_failed {
            self.recent.retain(|(ticket, ..)| *ticket < failed);
        }
        let oldest = self.in_flight.first().copied().unwrap_or(u64::MAX).min(self.first_failed.unwrap_or(u64::MAX));
        let settled = self.recent.iter().take_while(|(ticket, ..)| *ticket < oldest).count();
        self.base = self.recent.drain(..settled).fold(self.base, apply);
    }
}

#[derive(Default)]
struct State {
    faults: Vec<Fault>,
    files: HashMap<PathBuf, FileSyncs>,
    /// fdatasyncs started on this thread.
    syncs_started: u64,
    /// fdatasyncs of paths containing one of these are held when they return.
    hold: Vec<String>,
    /// The held fdatasyncs, in the order they started.
    held: Vec<Held>,
}

impl State {
    fn sync_failed(&mut self, path: &Path, ticket: u64) {
        let file = self.files.entry(path.to_owned()).or_default();
        file.first_failed = Some(file.first_failed.map_or(ticket, |first| first.min(ticket)));
        file.settle();
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State { faults: from_env(), ..State::default() });
}

/// An fdatasync under way: its place in the order fdatasyncs started on this thread. It is
/// in flight until dropped (returned, or its future cancelled).
pub(crate) struct SyncTicket {
    seq: u64,
    path: PathBuf,
}

impl Drop for SyncTicket {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            let mut state = s.borrow_mut();
            state.held.retain(|h| h.ticket != self.seq);
            if let Some(file) = state.files.get_mut(&self.path) {
                file.in_flight.remove(&self.seq);
                file.settle();
            }
        });
    }
}

/// The next `times` operations `op` on files whose path contains `path_contains` fail with
/// the OS error `errno` (EIO is 5, ENOSPC 28).
pub fn inject(op: FaultOp, path_contains: &str, errno: i32, times: usize) {
    STATE.with(|s| {
        s.borrow_mut().faults.push(Fault { op, path_contains: path_contains.to_owned(), errno: Some(errno), remaining: times, skip: 0 });
    });
}

/// Removes every injected fault and hold, and forgets synced lengths.
///
/// # Panics
/// If an fdatasync is held: release it first (it would otherwise report on a state it was not
/// counted in).
pub fn clear() {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        assert!(state.held.is_empty(), "fault seam cleared while {} fdatasyncs are held", state.held.len());
        // Tickets keep counting up: one in flight now may still drop after the clear.
        let syncs_started = state.syncs_started;
        *state = State { syncs_started, ..State::default() };
    });
}

/// Bytes of `path` made durable by the successful fdatasyncs on this thread that started
/// before any failed one.
pub fn synced_len(path: &Path) -> Option<u64> {
    STATE.with(|s| s.borrow().files.get(path).and_then(FileSyncs::synced_len))
}

/// From now on, every fdatasync of a file whose path contains `path_contains` is held once
/// it returned (the data it covers is on the disk) until [`release_sync`] lets it return.
pub fn hold_syncs(path_contains: &str) {
    STATE.with(|s| s.borrow_mut().hold.push(path_contains.to_owned()));
}

/// How many fdatasyncs are held and have not returned yet, released or not: once a released
/// one is no longer counted, its caller has seen it return.
pub fn held_syncs() -> usize {
    STATE.with(|s| s.borrow().held.len())
}

/// Lets the `index`th of the held fdatasyncs not yet released (in the order they started)
/// return: successfully with `errno` None, or with that OS error, as a cache flush that
/// failed on completion; then nothing it or a later-started fdatasync of its file covered
/// counts as durable, even one that has already returned.
///
/// # Panics
/// If fewer than `index + 1` fdatasyncs are held.
pub fn release_sync(index: usize, errno: Option<i32>) {
    let waker = STATE.with(|s| {
        let mut state = s.borrow_mut();
        let held = state.held.iter_mut().filter(|h| h.outcome.is_none()).nth(index).expect("a held fdatasync to release");
        held.outcome = Some(errno);
        held.waker.take()
    });
    // Woken with the state no longer borrowed: a waker may poll the sync's future in place.
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The most fdatasyncs of `path` in flight at once on this thread.
pub fn syncs_in_flight_peak(path: &Path) -> usize {
    STATE.with(|s| s.borrow().files.get(path).map_or(0, |file| file.peak))
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
    check(FaultOp::Sync, path).inspect_err(|_| STATE.with(|s| s.borrow_mut().sync_failed(path, seq)))?;
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let file = state.files.entry(path.to_owned()).or_default();
        file.in_flight.insert(seq);
        file.peak = file.peak.max(file.in_flight.len());
    });
    Ok(SyncTicket { seq, path: path.to_owned() })
}

/// The fdatasync of `ticket` itself failed (the disk, not the seam): as an injected failure,
/// nothing started after it counts as durable.
pub(crate) fn fail_sync(path: &Path, ticket: SyncTicket) {
    STATE.with(|s| s.borrow_mut().sync_failed(path, ticket.seq));
    drop(ticket);
}

/// The fdatasync of `ticket` returned: unless a test holds it and then releases it with an
/// error, `len` bytes of `path` are durable, exactly or at least (see [`Synced`]), unless it
/// started after one that failed.
pub(crate) async fn finish_sync(path: &Path, len: u64, exact: bool, ticket: SyncTicket) -> std::io::Result<()> {
    let seq = ticket.seq;
    let held = STATE.with(|s| {
        let mut state = s.borrow_mut();
        let text = path.to_string_lossy();
        let held = state.hold.iter().any(|part| text.contains(part.as_str()));
        if held {
            state.held.push(Held { ticket: seq, outcome: None, waker: None });
            state.held.sort_by_key(|h| h.ticket);
        }
        held
    });
    let errno = if held {
        poll_fn(|cx| {
            STATE.with(|s| {
                let mut state = s.borrow_mut();
                // Listed until its ticket drops, right after it returns (or when cancelled).
                let held = state.held.iter_mut().find(|h| h.ticket == seq).expect("a held fdatasync stays listed until it returns");
                match held.outcome {
                    Some(errno) => Poll::Ready(errno),
                    None => {
                        held.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
        })
        .await
    } else {
        None
    };
    let result = STATE.with(|s| {
        let mut state = s.borrow_mut();
        if let Some(errno) = errno {
            state.sync_failed(path, seq);
            return Err(std::io::Error::from_raw_os_error(errno));
        }
        state.files.entry(path.to_owned()).or_default().recent.push((seq, len, exact));
        Ok(())
    });
    drop(ticket);
    result
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

    /// Starts an fdatasync of `path` on the fault seam alone (no file) and lets it finish.
    fn sync_task(path: &'static Path, len: u64) -> glommio::Task<std::io::Result<()>> {
        let ticket = start_sync(path).unwrap();
        glommio::spawn_local(finish_sync(path, len, false, ticket))
    }

    /// Waits until `count` fdatasyncs are held (not yet returned); panics after 10 s.
    async fn until_held(count: usize) {
        for _ in 0..100_000 {
            if held_syncs() == count {
                return;
            }
            glommio::timer::sleep(std::time::Duration::from_micros(100)).await;
        }
        panic!("{} fdatasyncs held, expected {count}", held_syncs());
    }

    #[test]
    fn a_held_sync_that_fails_on_completion_takes_back_later_ones() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                clear();
                let path = Path::new("/held/x.log");
                hold_syncs("x.log");
                let (first, second) = (sync_task(path, 100), sync_task(path, 200));
                until_held(2).await;
                release_sync(1, None);
                assert!(second.await.is_ok());
                assert_eq!(synced_len(path), Some(200), "the later one returned first");
                release_sync(0, Some(5));
                assert_eq!(first.await.unwrap_err().raw_os_error(), Some(5));
                assert_eq!(synced_len(path), None, "it started after the failed one");
                assert_eq!(syncs_in_flight_peak(path), 2);
                // A cancelled sync leaves neither the held list nor the syncs in flight.
                let cancelled = sync_task(path, 300);
                until_held(1).await;
                drop(cancelled); // the executor drops its future on its next turn
                until_held(0).await;
                let kept = sync_task(path, 400);
                until_held(1).await;
                assert_eq!(syncs_in_flight_peak(path), 2, "the cancelled one is not in flight");
                release_sync(0, None);
                assert!(kept.await.is_ok());
                clear();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
