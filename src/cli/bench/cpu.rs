//! CPU use over a phase's measured window: the load generator's own, and a broker's on the
//! same machine (`--broker-pid`). A bench whose client is saturated measures the client, not
//! the broker: these figures say which side set the limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Linux reports process times in /proc in units of USER_HZ, which is 100 on every
/// architecture strand runs on (it is fixed by the kernel ABI, unlike the tick rate HZ).
const USER_HZ: u64 = 100;

/// A window shorter than this says nothing: CPU time comes in 10 ms ticks.
const MIN_WINDOW: Duration = Duration::from_secs(1);

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

    /// The process's CPU time and each of its live threads' (by thread id: name, CPU time).
    fn sample(self) -> Option<Sample> {
        let total = self.cpu()?;
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir(format!("{}/task", self.proc_dir())).into_iter().flatten().flatten() {
            let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            if let (Some(name), Some(cpu)) = (stat_name(&stat), parse_stat_cpu(&stat)) {
                threads.insert(tid, (name.to_owned(), cpu));
            }
        }
        Some(Sample { at: Instant::now(), total, threads })
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

struct Sample {
    at: Instant,
    total: Duration,
    threads: HashMap<u32, (String, Duration)>,
}

/// The command name of a /proc/PID/stat line (field 2, in parentheses).
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
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

/// CPU time and wall time over one window, how many cores the process may run on, and its
/// busiest thread (a shard thread, or one of a client's, can be saturated while the process
/// as a whole has cores to spare).
#[derive(Debug, Clone, PartialEq)]
pub struct CpuShare {
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    pub cores: usize,
    /// The thread with the most CPU time in the window: its name and CPU seconds.
    pub busiest_thread: Option<(String, f64)>,
}

impl CpuShare {
    /// Cores' worth of CPU in use on average (1.0 = one core busy all the time).
    pub fn busy_cores(&self) -> f64 {
        self.share(self.cpu_seconds)
    }

    /// The busiest thread's name and its share of one core.
    pub fn busiest(&self) -> Option<(&str, f64)> {
        self.busiest_thread.as_ref().map(|(name, cpu)| (name.as_str(), self.share(*cpu)))
    }

    fn share(&self, cpu_seconds: f64) -> f64 {
        if self.wall_seconds > 0.0 { cpu_seconds / self.wall_seconds } else { 0.0 }
    }

    /// Windows run one after another, as one. The busiest thread is the same-named thread's
    /// CPU summed when both windows name it, else the larger.
    pub fn append(&mut self, later: &Self) {
        self.cpu_seconds += later.cpu_seconds;
        self.wall_seconds += later.wall_seconds;
        self.cores = self.cores.max(later.cores);
        self.busiest_thread = match (self.busiest_thread.take(), &later.busiest_thread) {
            (Some((a, x)), Some((b, y))) if a == *b => Some((a, x + y)),
            (Some((a, x)), Some((b, y))) => Some(if x >= *y { (a, x) } else { (b.clone(), *y) }),
            (mine, theirs) => mine.or_else(|| theirs.clone()),
        };
    }
}

/// Measures a window of one process: started by `start`, read by `finish`.
pub struct CpuWindow {
    process: Process,
    start: Option<Sample>,
}

impl CpuWindow {
    pub fn new(process: Process) -> Self {
        Self { process, start: None }
    }

    /// Starts the window now, unless it has started already.
    pub fn start(&mut self) {
        if self.start.is_none() {
            self.start = self.process.sample();
        }
    }

    /// The window from its start to now; None if it never started, lasted under a second, or
    /// /proc was unreadable.
    pub fn finish(&self) -> Option<CpuShare> {
        let start = self.start.as_ref()?;
        let end = self.process.sample()?;
        let wall = end.at.duration_since(start.at);
        if wall < MIN_WINDOW {
            return None;
        }
        // Threads born in the window count from zero; threads gone by its end are in the
        // process's total only.
        let busiest_thread = end
            .threads
            .iter()
            .map(|(tid, (name, cpu))| {
                let before = start.threads.get(tid).filter(|(was, _)| was == name).map_or(Duration::ZERO, |(_, cpu)| *cpu);
                (name, cpu.saturating_sub(before))
            })
            .max_by_key(|(_, cpu)| *cpu)
            .map(|(name, cpu)| (name.clone(), cpu.as_secs_f64()));
        Some(CpuShare {
            cpu_seconds: end.total.saturating_sub(start.total).as_secs_f64(),
            wall_seconds: wall.as_secs_f64(),
            cores: self.process.cores(),
            busiest_thread,
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
    fn the_thread_name_is_read_between_the_outer_parentheses() {
        assert_eq!(stat_name("4242 (rdk:broker (0)) S 1"), Some("rdk:broker (0)"));
        assert_eq!(stat_name("no name"), None);
    }

    #[test]
    fn joined_windows_add_up_and_keep_the_busiest_thread() {
        let window = |cpu, wall, busiest: (&str, f64)| CpuShare {
            cpu_seconds: cpu,
            wall_seconds: wall,
            cores: 2,
            busiest_thread: Some((busiest.0.to_owned(), busiest.1)),
        };
        let mut joined = window(3.0, 10.0, ("shard-0", 2.0));
        joined.append(&window(5.0, 10.0, ("shard-0", 4.0)));
        assert_eq!((joined.cpu_seconds, joined.wall_seconds), (8.0, 20.0));
        assert_eq!(joined.busiest(), Some(("shard-0", 0.3)));
        joined.append(&window(1.0, 5.0, ("iou-wrk-7", 9.0)));
        assert_eq!(joined.busiest_thread, Some(("iou-wrk-7".to_owned(), 9.0)));
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
        // This thread's own CPU time, not the process's (other tests run beside it).
        let this_thread = || parse_stat_cpu(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()).unwrap();
        let start = this_thread();
        let give_up = Instant::now() + Duration::from_secs(30);
        while this_thread().saturating_sub(start) < Duration::from_millis(200) && Instant::now() < give_up {
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
        std::thread::sleep(MIN_WINDOW.saturating_sub(window.start.as_ref().unwrap().at.elapsed()));
        let share = window.finish().expect("the window started and lasted a second");
        assert!(share.cpu_seconds >= 0.2, "{share:?}");
        assert!(share.busy_cores() > 0.0 && share.cores >= 1, "{share:?}");
        // This thread did the spinning: it is the busiest, with most of the 200 ms.
        let (name, busy) = share.busiest().expect("threads are listed");
        assert!(busy * share.wall_seconds >= 0.15, "{name} {busy} {share:?}");
    }

    #[test]
    fn a_window_under_a_second_says_nothing() {
        let mut window = CpuWindow::new(Process::This);
        window.start();
        assert_eq!(window.finish(), None);
    }
}
