//! What one bench phase measured: the producers', the tailing and the draining consumers'
//! figures and both sides' CPU, and phases run in rounds joined into one.

use super::cpu::CpuShare;
use super::latency::LatencyRecorder;

/// The producers' figures.
#[derive(Debug, Clone)]
pub struct ProduceFigures {
    pub latency: LatencyRecorder,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub measured: u64,
    pub measured_bytes: u64,
    pub seconds: f64,
}

/// Tailing or draining consumers' figures.
#[derive(Debug, Clone)]
pub struct ConsumeFigures {
    pub received: u64,
    pub measured: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub errors: u64,
    /// Draining: did every consumer reach its end offsets?
    pub complete: bool,
    /// Draining: passes over the backlog, summed over consumers.
    pub passes: u64,
}

/// Everything a phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    pub name: String,
    pub produce: Option<ProduceFigures>,
    pub e2e: Option<(LatencyRecorder, ConsumeFigures)>,
    pub drain: Option<ConsumeFigures>,
    /// The load generator's CPU from the measurement start until the producers finished (or,
    /// without producers, the phase ended).
    pub client_cpu: Option<CpuShare>,
    /// The `--broker-pid` process's CPU over the same window.
    pub broker_cpu: Option<CpuShare>,
}

impl ProduceFigures {
    fn append(&mut self, later: &Self) {
        self.latency.append(&later.latency);
        self.sent += later.sent;
        self.acked += later.acked;
        self.failed += later.failed;
        if self.first_error.is_none() {
            self.first_error.clone_from(&later.first_error);
        }
        self.measured += later.measured;
        self.measured_bytes += later.measured_bytes;
        self.seconds += later.seconds;
    }
}

impl ConsumeFigures {
    fn append(&mut self, later: &Self) {
        self.received += later.received;
        self.measured += later.measured;
        self.bytes += later.bytes;
        self.seconds += later.seconds;
        self.errors += later.errors;
        self.complete &= later.complete;
        self.passes += later.passes;
    }
}

impl PhaseResult {
    /// Phases run one after another, as one phase named `name`: latencies merged (their
    /// per-second windows in order), counts and measured seconds summed.
    pub fn joined(name: &str, phases: &[&PhaseResult]) -> PhaseResult {
        fn join<T: Clone>(parts: impl Iterator<Item = Option<T>>, append: impl Fn(&mut T, &T)) -> Option<T> {
            parts.flatten().reduce(|mut all, part| {
                append(&mut all, &part);
                all
            })
        }
        PhaseResult {
            name: name.to_owned(),
            produce: join(phases.iter().map(|p| p.produce.clone()), ProduceFigures::append),
            e2e: join(phases.iter().map(|p| p.e2e.clone()), |all, part| {
                all.0.append(&part.0);
                all.1.append(&part.1);
            }),
            drain: join(phases.iter().map(|p| p.drain.clone()), ConsumeFigures::append),
            client_cpu: join(phases.iter().map(|p| p.client_cpu.clone()), CpuShare::append),
            broker_cpu: join(phases.iter().map(|p| p.broker_cpu.clone()), CpuShare::append),
        }
    }
}
