//! Latency recording: an HDR histogram for the whole measurement and one per second of it
//! (by intended send time), kept per thread behind an uncontended mutex and merged at the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Width of a latency-over-time window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Significant digits of every histogram: 0.1% resolution.
const SIGFIGS: u8 = 3;

pub fn histogram() -> Histogram<u64> {
    Histogram::new(SIGFIGS).expect("3 significant figures is a valid histogram")
}

/// Records `micros` (at least 1), growing the histogram as needed; a value beyond any range
/// it can grow to is kept as its largest value.
fn record(h: &mut Histogram<u64>, micros: u64) {
    if h.record(micros.max(1)).is_err() {
        h.saturating_record(micros);
    }
}

/// Latencies in microseconds of the measured part of a run.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    /// Start of the measurement (after warmup); earlier sends are not recorded.
    pub measure_start: Instant,
    pub total: Histogram<u64>,
    pub windows: Vec<Histogram<u64>>,
}

/// A recorder shared between the thread that records and the progress display.
pub type SharedRecorder = Arc<Mutex<LatencyRecorder>>;

impl LatencyRecorder {
    pub fn new(measure_start: Instant) -> Self {
        Self { measure_start, total: histogram(), windows: Vec::new() }
    }

    pub fn shared(measure_start: Instant) -> SharedRecorder {
        Arc::new(Mutex::new(Self::new(measure_start)))
    }

    /// Records the latency of a record intended to be sent at `intended` and done at `done`;
    /// returns false (and records nothing) for records sent during warmup.
    pub fn record(&mut self, intended: Instant, done: Instant) -> bool {
        let Some(since_start) = intended.checked_duration_since(self.measure_start) else { return false };
        let micros = u64::try_from(done.saturating_duration_since(intended).as_micros()).unwrap_or(u64::MAX);
        record(&mut self.total, micros);
        let window = usize::try_from(since_start.as_secs() / WINDOW.as_secs()).unwrap_or(usize::MAX);
        if window >= self.windows.len() {
            self.windows.resize_with(window + 1, histogram);
        }
        record(&mut self.windows[window], micros);
        true
    }

    /// Adds another recorder's values (same measurement start).
    pub fn merge(&mut self, other: &Self) {
        // Auto-resizing histograms of the same precision always add.
        let _ = self.total.add(&other.total);
        if other.windows.len() > self.windows.len() {
            self.windows.resize_with(other.windows.len(), histogram);
        }
        for (mine, theirs) in self.windows.iter_mut().zip(&other.windows) {
            let _ = mine.add(theirs);
        }
    }

    /// Appends a later measurement: its values join the total, its windows follow this one's.
    pub fn append(&mut self, later: &Self) {
        let _ = self.total.add(&later.total);
        self.windows.extend(later.windows.iter().cloned());
    }

    /// All recorders merged into one.
    pub fn merged(recorders: &[SharedRecorder], measure_start: Instant) -> Self {
        let mut all = Self::new(measure_start);
        for recorder in recorders {
            if let Ok(r) = recorder.lock() {
                all.merge(&r);
            }
        }
        all
    }

    /// p99 of the newest complete window, in microseconds, for live progress.
    pub fn recent_p99_us(recorders: &[SharedRecorder], now: Instant) -> Option<u64> {
        let mut recent = histogram();
        for recorder in recorders {
            let Ok(r) = recorder.lock() else { continue };
            let current = now.checked_duration_since(r.measure_start)?.as_secs() / WINDOW.as_secs();
            let complete = usize::try_from(current).ok()?.checked_sub(1)?;
            if let Some(window) = r.windows.get(complete) {
                let _ = recent.add(window);
            }
        }
        (!recent.is_empty()).then(|| recent.value_at_quantile(0.99))
    }
}

/// The percentiles a report shows, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_sends_are_not_recorded_and_windows_follow_send_time() {
        let start = Instant::now();
        let mut r = LatencyRecorder::new(start + Duration::from_secs(1));
        assert!(!r.record(start, start + Duration::from_millis(5)));
        let sent = start + Duration::from_millis(2500);
        assert!(r.record(sent, sent + Duration::from_millis(3)));
        assert_eq!(r.total.len(), 1);
        assert_eq!(r.windows.len(), 2);
        assert_eq!(r.windows[1].len(), 1);
        let p = Percentiles::of(&r.total);
        assert!((2990..=3010).contains(&p.p50), "{p:?}");
    }

    #[test]
    fn merging_adds_counts_window_by_window() {
        let start = Instant::now();
        let mut a = LatencyRecorder::new(start);
        let mut b = LatencyRecorder::new(start);
        a.record(start, start + Duration::from_millis(1));
        b.record(start + Duration::from_secs(3), start + Duration::from_secs(3) + Duration::from_millis(9));
        a.merge(&b);
        assert_eq!(a.total.len(), 2);
        assert_eq!(a.windows.len(), 4);
        assert_eq!(Percentiles::of(&a.total).max / 1000, 9);
    }

    #[test]
    fn percentiles_of_a_uniform_spread_are_where_expected() {
        let mut h = histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 10_000);
        assert!((4990..=5010).contains(&p.p50) && (9890..=9910).contains(&p.p99), "{p:?}");
        assert!((10_000..=10_010).contains(&p.max), "{p:?}");
    }
}
