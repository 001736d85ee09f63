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
//!
//! Tests can also hold fdatasyncs once they return (`hold_syncs`) and then let each one
//! return, successfully or with an error, in any order (`release_sync`): a slow fdatasync, one
//! that completes after a later one, or one that fails on completion rather than at its start.

#[cfg(feature = "fault-injection")]
mod enabled;

#[cfg(feature = "fault-injection")]
pub use enabled::{clear, held_syncs, hold_syncs, inject, release_sync, synced_len, syncs_in_flight_peak, FaultOp};
#[cfg(feature = "fault-injection")]
pub(crate) use enabled::{check, fail_sync, finish_sync, start_sync};

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
    pub(crate) fn fail_sync(_path: &Path, _ticket: SyncTicket) {}

    #[inline(always)]
    pub(crate) async fn finish_sync(_path: &Path, _len: u64, _exact: bool, _ticket: SyncTicket) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(not(feature = "fault-injection"))]
pub(crate) use disabled::{check, fail_sync, finish_sync, start_sync, FaultOp};
