//! Live progress of a bench phase on stderr (indicatif): elapsed time, sent, acknowledged and
//! received counts with their rates, and the p99 of the last complete second. Hidden when
//! stderr is not a terminal.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress line for one phase.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    last: Option<(Instant, [u64; 3])>,
}

impl Progress {
    /// A bar over `length` (a duration) or a spinner when the length is a message count.
    pub fn start(phase: &str, length: Option<Duration>) -> Self {
        let bar = match length {
            Some(d) => {
                let bar = ProgressBar::new(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {bar:24} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.set_prefix(phase.to_owned());
        Self { bar, start: Instant::now(), last: None }
    }

    /// Shows the counts (sent, acknowledged, received) and their rates since the last update.
    pub fn update(&mut self, counts: [u64; 3], p99_us: Option<u64>, note: &str) {
        let now = Instant::now();
        let rates = match self.last {
            Some((at, before)) if now > at => {
                let secs = (now - at).as_secs_f64();
                [0, 1, 2].map(|i| (counts[i].saturating_sub(before[i])) as f64 / secs)
            }
            _ => [0.0; 3],
        };
        self.last = Some((now, counts));
        let p99 = p99_us.map_or(String::new(), |us| format!("  p99 {:.2} ms", us as f64 / 1000.0));
        self.bar.set_position(u64::try_from((now - self.start).as_millis()).unwrap_or(u64::MAX));
        self.bar.set_message(format!(
            "sent {} ({:.0}/s)  acked {} ({:.0}/s)  received {} ({:.0}/s){p99}{note}",
            counts[0], rates[0], counts[1], rates[1], counts[2], rates[2]
        ));
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
