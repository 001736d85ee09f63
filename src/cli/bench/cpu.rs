//! CPU use over a phase's measured window: the load generator's own, and a broker's on the
//! same machine (`--broker-pid`). A bench whose client is saturated measures the client, not
//! the broker: these figures say which side set the limit.

use std::time::{Duration, Instant};

/// Linux reports process times in /proc in units of USER_HZ, which is 100 on every
/// architecture strand runs on (it is fixed by the kernel ABI, unlike the tick rate HZ).
const USER_HZ: u64 = 100;

/// Whose CPU a window measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    This,
    Pid(u32),
}

impl Process {
    fn proc_dir(self) -> String {
        match self {
            Process::This => "/proc/self".to_owned(),
            Process::Pid(pid) => format!("/proc/{pid}"),
        }
    }

    /// User + system CPU time so far, or None where /proc is not readable (or the process
    /// is gone).
    pub fn cpu(self) -> Option<Duration> {
        parse_stat_cpu(&std::fs::read_to_string(format!("{}/stat", self.proc_dir())).ok()?)
    }

    /// How many cores the process may run on.
    fn cores(self) -> usize {
        match self {
            Process::This => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            Process::Pid(_) => std::fs::read_to_string(format!("{}/status", self.proc_dir()))
                .ok()
                .and_then(|status| {
                    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
                    cpu_list_len(list.trim())
                })
                .unwrap_or(1),
        }
    }
}

/// utime + stime of a /proc/PID/stat line. The command name (field 2) is in parentheses and
/// may hold spaces or parentheses itself, so fields are counted from the last ')'.
fn parse_stat_cpu(stat: &str) -> Option<Duration> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) ... utime (field 14), stime (field 15).
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// The number of CPUs in a list such as "0-3,8,10-11".
fn cpu_list_len(list: &str) -> Option<usize> {
    list.split(',').try_fold(0usize, |n, range| {
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
        Some(n + last.checked_sub(first)? + 1)
    })
}

/// CPU time and wall time over one window, and how many cores the process may run on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare {
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    pub cores: usize,
}

impl CpuShare {
    /// Cores' worth of CPU in use on average (1.0 = one core busy all the time).
    pub fn busy_cores(&self) -> f64 {
        if self.wall_seconds > 0.0 { self.cpu_seconds / self.wall_seconds } else { 0.0 }
    }

    /// Windows run one after another, as one.
    pub fn append(&mut self, later: &Self) {
        self.cpu_seconds += later.cpu_seconds;
        self.wall_seconds += later.wall_seconds;
        self.cores = self.cores.max(later.cores);
    }
}

/// Measures a window of one process: started by `start`, read by `finish`.
#[derive(Debug)]
pub struct CpuWindow {
    process: Process,
    start: Option<(Instant, Duration)>,
}

impl CpuWindow {
    pub fn new(process: Process) -> Self {
        Self { process, start: None }
    }

    /// Starts the window now, unless it has started already.
    pub fn start(&mut self) {
        if self.start.is_none() {
            self.start = self.process.cpu().map(|cpu| (Instant::now(), cpu));
        }
    }

    /// The window from its start to now; None if it never started or /proc was unreadable.
    pub fn finish(&self) -> Option<CpuShare> {
        let (wall_start, cpu_start) = self.start?;
        let cpu = self.process.cpu()?;
        Some(CpuShare {
            cpu_seconds: cpu.saturating_sub(cpu_start).as_secs_f64(),
            wall_seconds: wall_start.elapsed().as_secs_f64(),
            cores: self.process.cores(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (bench (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 1000 50";
        assert_eq!(parse_stat_cpu(stat), Some(Duration::from_millis(3250)));
    }

    #[test]
    fn a_truncated_stat_line_gives_none() {
        assert_eq!(parse_stat_cpu("4242 (bench) S 1 2 3"), None);
        assert_eq!(parse_stat_cpu("no name here"), None);
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(cpu_list_len("0"), Some(1));
        assert_eq!(cpu_list_len("0-3,8,10-11"), Some(7));
        assert_eq!(cpu_list_len("3-1"), None);
        assert_eq!(cpu_list_len(""), None);
    }

    #[test]
    fn another_process_is_measured_by_its_pid() {
        let me = Process::Pid(std::process::id());
        assert!(me.cpu().is_some());
        assert!(me.cores() >= 1);
        assert_eq!(Process::Pid(u32::MAX).cpu(), None);
    }

    #[test]
    fn a_busy_thread_shows_in_the_window() {
        let mut window = CpuWindow::new(Process::This);
        window.start();
        let start = Process::This.cpu().expect("/proc/self/stat is readable on Linux");
        let give_up = Instant::now() + Duration::from_secs(30);
        while Process::This.cpu().unwrap().saturating_sub(start) < Duration::from_millis(200) && Instant::now() < give_up {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        let share = window.finish().expect("the window started");
        assert!(share.cpu_seconds >= 0.2, "{share:?}");
        // The whole process (other tests too) cannot use more than its cores, give or take a tick.
        assert!(share.cpu_seconds <= share.wall_seconds * share.cores as f64 + 0.02, "{share:?}");
        assert!(share.busy_cores() > 0.0 && share.cores >= 1, "{share:?}");
    }
}
