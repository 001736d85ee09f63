//! The broker's wall clock, as Kafka reads it: milliseconds since the Unix epoch (record
//! timestamps, retention by time, offsets expiry).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch; 0 before it, i64::MAX past what an i64 holds.
pub fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
