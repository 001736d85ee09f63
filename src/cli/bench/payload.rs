//! The bench's record payload: the intended send time and the run id in the first 16 bytes,
//! then filler. The send time is nanoseconds on the bench's monotonic clock, so latency is
//! measured on one clock in one process, never across wall clocks.

use std::time::{Duration, Instant};

/// Bytes at the start of every payload: intended send time (u64 BE ns) + run id (u64 BE).
pub const PAYLOAD_HEADER_BYTES: usize = 16;

/// The zero of the bench's clock and the id that tells this run's records from older ones.
#[derive(Debug, Clone, Copy)]
pub struct BenchClock {
    pub epoch: Instant,
    pub run_id: u64,
}

impl BenchClock {
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        // Truncation is fine: the run id only has to differ between runs.
        #[allow(clippy::cast_possible_truncation)]
        let run_id = (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32);
        Self { epoch: Instant::now(), run_id }
    }

    pub fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Writes the header into `payload` (at least [`PAYLOAD_HEADER_BYTES`] long).
    pub fn stamp(&self, payload: &mut [u8], intended: Instant) {
        payload[..8].copy_from_slice(&self.nanos(intended).to_be_bytes());
        payload[8..16].copy_from_slice(&self.run_id.to_be_bytes());
    }

    /// The intended send time of a payload this run stamped; None for anything else.
    pub fn read(&self, payload: &[u8]) -> Option<Instant> {
        let header = payload.get(..PAYLOAD_HEADER_BYTES)?;
        let run_id = u64::from_be_bytes(header[8..16].try_into().ok()?);
        if run_id != self.run_id {
            return None;
        }
        Some(self.instant(u64::from_be_bytes(header[..8].try_into().ok()?)))
    }
}

/// A payload template of `size` bytes of pseudo-random capital letters, as Kafka's own
/// producer perf tool sends: compression codecs shrink it somewhat, never to nothing.
pub fn filler(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..size.max(PAYLOAD_HEADER_BYTES))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_payload_reads_back_its_send_time_only_in_its_own_run() {
        let clock = BenchClock::new();
        let mut payload = filler(100, 7);
        let at = clock.epoch + Duration::from_micros(1234);
        clock.stamp(&mut payload, at);
        assert_eq!(clock.read(&payload), Some(at));
        let other = BenchClock { run_id: clock.run_id + 1, ..clock };
        assert_eq!(other.read(&payload), None);
        assert_eq!(clock.read(&payload[..10]), None);
    }

    #[test]
    fn filler_is_at_least_the_header_and_not_constant() {
        assert_eq!(filler(4, 1).len(), PAYLOAD_HEADER_BYTES);
        let f = filler(64, 1);
        assert!(f.iter().any(|&b| b != f[0]));
    }
}
