//! One bench phase: consumers assigned first (tailing at the log end, or draining a backlog),
//! then producers on their schedule, live progress while it runs, and the figures after
//! every measured record was acknowledged and received (or a drain deadline passed).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::Offset;

use super::consumers::{self, deal, ConsumeStats, ConsumerJob, Role};
use super::cpu::{CpuShare, CpuWindow, Process};
use super::latency::{LatencyRecorder, SharedRecorder};
use super::load_args::LoadArgs;
use super::payload::BenchClock;
use super::producers::{self, ProduceStats, ProducerPlan};
use super::phase_result::{ConsumeFigures, PhaseResult, ProduceFigures};
use super::progress::Progress;
use super::raw_drain::{self, Ranges, RawDrain};
use super::raw_produce::{self, RawProduce};
use super::topic_setup::{partition_leaders, watermarks};
use crate::cli::brokers::BrokerArgs;

/// How long consumers may trail the last acknowledgement before missing records count as lost.
const RECEIVE_DEADLINE: Duration = Duration::from_secs(15);
/// Time between creating the clients and the first intended send.
const START_DELAY: Duration = Duration::from_millis(200);
/// How often a phase updates its progress line and checks whether it is done.
const POLL: Duration = Duration::from_millis(200);

/// What stays the same across the phases of a run.
pub struct Bench {
    pub brokers: BrokerArgs,
    pub load: LoadArgs,
    pub clock: BenchClock,
    pub partitions: Vec<i32>,
    pub meta: BaseConsumer,
    /// Set on Ctrl-C: every phase stops early and reports what it measured.
    pub interrupted: Arc<AtomicBool>,
}

/// What one phase runs.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    pub name: String,
    pub producers: usize,
    /// Total messages per second over all producers; None = max rate.
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub duration: Duration,
    /// Measured messages instead of a duration.
    pub messages: Option<u64>,
    pub tail_consumers: usize,
    /// Consumers reading from the log start to the log end of the phase's start, beginning
    /// when the measurement does.
    pub drain_consumers: usize,
    /// Draining consumers start over at the log start until the phase ends (sustained
    /// catch-up reads) instead of stopping at the end.
    pub drain_repeat: bool,
    /// What the producers and tailing consumers are.
    pub client: Client,
    /// What the draining consumers are.
    pub drain_client: Client,
}

/// `client` as `--client` / `--catch-up-client` spell it.
pub fn client_name(client: Client) -> String {
    clap::ValueEnum::to_possible_value(&client).map_or_else(String::new, |v| v.get_name().to_owned())
}

/// What the bench's clients are.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Client {
    /// librdkafka producers and consumers, the client most Kafka users run.
    #[default]
    Librdkafka,
    /// The Kafka protocol spoken by the bench itself (src/cli/bench/raw_produce/ and
    /// raw_drain.rs): librdkafka's batching and Fetch requests, without its per-record work,
    /// so the broker's load at a fraction of the client CPU.
    Protocol,
}

impl Bench {
    pub fn run_phase(&self, spec: &PhaseSpec) -> anyhow::Result<PhaseResult> {
        let topic = &self.load.topic;
        // (log start, log end) of every partition; the phase's consumers read up to the end.
        let marks = watermarks(&self.brokers, &self.meta, topic, &self.partitions)?;
        let ends: BTreeMap<i32, i64> = marks.iter().map(|(p, (_, end))| (*p, *end)).collect();
        let send_start = Instant::now() + START_DELAY;
        let measure_start = send_start + spec.warmup;
        let send_end = measure_start + spec.duration;

        let tail_stop = Arc::new(AtomicBool::new(false));
        let tail_stats = Arc::new(ConsumeStats::default());
        let mut tail_recorders = Vec::new();
        let mut tail_threads = Vec::new();
        let protocol = spec.client == Client::Protocol || (spec.drain_client == Client::Protocol && spec.drain_consumers > 0);
        if protocol {
            anyhow::ensure!(
                self.brokers.client_property.is_empty(),
                "the protocol client speaks plaintext Kafka without librdkafka, so it cannot apply -X client properties"
            );
        }
        let leaders = if protocol { partition_leaders(&self.brokers, &self.meta, topic)? } else { BTreeMap::new() };
        for (i, share) in deal(&self.partitions, spec.tail_consumers).into_iter().enumerate().take(spec.tail_consumers) {
            if spec.client == Client::Protocol {
                for (broker, ranges) in self.by_leader(&share, &leaders, |p| (ends[&p], i64::MAX))? {
                    let recorder = LatencyRecorder::shared(measure_start);
                    tail_recorders.push(Arc::clone(&recorder));
                    let job = self.raw_consumer(tail_threads.len(), broker, ranges, false, Instant::now(), Some(recorder));
                    tail_threads.push(raw_drain::spawn(job, self.clock, Arc::clone(&tail_stats), Arc::clone(&tail_stop))?);
                }
                continue;
            }
            let recorder = LatencyRecorder::shared(measure_start);
            tail_recorders.push(Arc::clone(&recorder));
            let start = share.iter().map(|p| (*p, Offset::Offset(ends[p]))).collect();
            let job = ConsumerJob { index: i, start, not_before: None, role: Role::Tail { recorder } };
            tail_threads.push(self.spawn_consumer(job, &tail_stats, &tail_stop)?);
        }
        let drain_stop = Arc::new(AtomicBool::new(false));
        let drain_stats = Arc::new(ConsumeStats::default());
        let mut drain_threads = Vec::new();
        let drain_shares = if spec.drain_consumers == 0 { Vec::new() } else { deal(&self.partitions, spec.drain_consumers) };
        if spec.drain_client == Client::Protocol {
            for share in drain_shares {
                for (broker, ranges) in self.by_leader(&share, &leaders, |p| (marks.get(&p).map_or(0, |m| m.0), ends[&p]))? {
                    let job = self.raw_consumer(100 + drain_threads.len(), broker, ranges, spec.drain_repeat, measure_start, None);
                    drain_threads.push(raw_drain::spawn(job, self.clock, Arc::clone(&drain_stats), Arc::clone(&drain_stop))?);
                }
            }
        } else {
            for (i, share) in drain_shares.into_iter().enumerate() {
                let start = share.iter().map(|p| (*p, Offset::Beginning)).collect();
                let role = Role::Drain { ends: share.iter().map(|p| (*p, ends[p])).collect(), repeat: spec.drain_repeat };
                let job = ConsumerJob { index: 100 + i, start, not_before: Some(measure_start), role };
                drain_threads.push(self.spawn_consumer(job, &drain_stats, &drain_stop)?);
            }
        }
        let drainers = drain_threads.len();

        let halt = Arc::new(AtomicBool::new(false));
        let produce_stats = Arc::new(ProduceStats::default());
        let mut produce_recorders: Vec<SharedRecorder> = Vec::new();
        let mut producer_threads = Vec::new();
        let config = self.brokers.client_config_with(&self.load.producer_config())?;
        for i in 0..spec.producers {
            let recorder = LatencyRecorder::shared(measure_start);
            produce_recorders.push(Arc::clone(&recorder));
            let plan = ProducerPlan {
                topic: topic.clone(),
                message_size: self.load.message_size,
                keys: self.load.keys,
                rate: spec.rate.map(|r| r / spec.producers as f64),
                send_start,
                measure_start,
                send_end: if spec.messages.is_some() { send_end + Duration::from_secs(86_400) } else { send_end },
                messages: spec.messages.map(|n| share_of(n, spec.producers, i)),
            };
            let stats = Arc::clone(&produce_stats);
            let thread = if spec.client == Client::Protocol {
                let job = RawProduce {
                    index: i,
                    plan,
                    leaders: leaders.clone(),
                    acks: self.load.acks,
                    batch_size: self.load.batch_size,
                    linger: Duration::from_millis(self.load.linger_ms),
                    compression: self.load.compression,
                    timeout: self.brokers.timeout,
                };
                raw_produce::spawn(job, self.clock, recorder, stats, Arc::clone(&halt))?
            } else {
                producers::spawn(i, &config, plan, self.clock, recorder, stats, Arc::clone(&halt))?
            };
            producer_threads.push(thread);
        }

        // Watch until the producers are done (or, without producers, the drain is).
        let mut progress = Progress::start(&spec.name, spec.messages.is_none().then_some(spec.warmup + spec.duration));
        // CPU is measured from the measurement start to the last intended send (or, for a
        // message count, until the producers are done), not over their final flush.
        let mut cpu_windows = [Some(Process::This), self.load.broker_pid.map(Process::Pid)].map(|p| p.map(CpuWindow::new));
        let mut cpu = None;
        loop {
            let now = Instant::now();
            // Wake at the measurement's start and end, not up to a poll after them.
            let edge = [measure_start, send_end].into_iter().find(|&edge| edge > now);
            std::thread::sleep(edge.map_or(POLL, |edge| (edge - now).min(POLL)));
            let now = Instant::now();
            if now >= measure_start {
                cpu_windows.iter_mut().flatten().for_each(CpuWindow::start);
            }
            if now >= send_end && cpu.is_none() {
                cpu = Some(finish_all(&cpu_windows));
            }
            let counts = [&produce_stats.sent, &produce_stats.acked, &tail_stats.received]
                .map(|c| c.load(Ordering::Relaxed));
            let drained = drain_stats.drained.load(Ordering::Relaxed) as usize;
            let note = if drainers > 0 {
                format!("  catch-up {} MiB ({drained} passes)", drain_stats.bytes.load(Ordering::Relaxed) >> 20)
            } else {
                String::new()
            };
            let p99 = LatencyRecorder::recent_p99_us(if tail_recorders.is_empty() { &produce_recorders } else { &tail_recorders }, Instant::now());
            progress.update(counts, p99, &note);
            let now = Instant::now();
            let drain_done = drainers > 0 && drained >= drainers && !spec.drain_repeat;
            if self.interrupted.load(Ordering::Relaxed) {
                halt.store(true, Ordering::Relaxed);
            }
            let producers_done = producer_threads.iter().all(std::thread::JoinHandle::is_finished);
            let stop_without_producers = spec.producers == 0 && (drain_done || now >= send_end || self.interrupted.load(Ordering::Relaxed));
            if (spec.producers > 0 && producers_done) || stop_without_producers {
                break;
            }
        }
        let [client_cpu, broker_cpu] = cpu.unwrap_or_else(|| finish_all(&cpu_windows));
        progress.finish();
        for thread in producer_threads {
            thread.join().map_err(|_| anyhow::anyhow!("a producer thread panicked"))??;
        }

        // Consumers catch up with what was acknowledged, up to a deadline.
        let deadline = Instant::now() + RECEIVE_DEADLINE;
        let measured_acked = produce_stats.measured_acked.load(Ordering::Relaxed);
        while spec.tail_consumers > 0
            && tail_stats.measured.load(Ordering::Relaxed) < measured_acked
            && Instant::now() < deadline
            && !self.interrupted.load(Ordering::Relaxed)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        tail_stop.store(true, Ordering::Relaxed);
        drain_stop.store(true, Ordering::Relaxed);
        for thread in tail_threads.into_iter().chain(drain_threads) {
            thread.join().map_err(|_| anyhow::anyhow!("a consumer thread panicked"))?;
        }

        let produce = (spec.producers > 0).then(|| self.produce_figures(&produce_stats, &produce_recorders, measure_start));
        let e2e = (spec.tail_consumers > 0).then(|| {
            let latency = LatencyRecorder::merged(&tail_recorders, measure_start);
            (latency, self.consume_figures(&tail_stats, Some(measure_start), true))
        });
        let drain = (drainers > 0).then(|| {
            self.consume_figures(&drain_stats, None, drain_stats.drained.load(Ordering::Relaxed) as usize >= drainers)
        });
        Ok(PhaseResult { name: spec.name.clone(), produce, e2e, drain, client_cpu, broker_cpu })
    }

    /// `share`'s partitions grouped by their leader, each with its (start, end) offsets.
    fn by_leader<'l>(
        &self,
        share: &[i32],
        leaders: &'l BTreeMap<i32, String>,
        range: impl Fn(i32) -> (i64, i64),
    ) -> anyhow::Result<BTreeMap<&'l String, Ranges>> {
        let mut by_leader: BTreeMap<&String, Ranges> = BTreeMap::new();
        for p in share {
            let topic = &self.load.topic;
            let leader = leaders.get(p).ok_or_else(|| anyhow::anyhow!("bench: {topic}-{p} has no leader in Metadata"))?;
            by_leader.entry(leader).or_default().insert(*p, range(*p));
        }
        Ok(by_leader)
    }

    /// A protocol consumer of `ranges` on `broker`: tailing when it has a `latency` recorder.
    fn raw_consumer(
        &self,
        index: usize,
        broker: &str,
        ranges: Ranges,
        repeat: bool,
        not_before: Instant,
        latency: Option<SharedRecorder>,
    ) -> RawDrain {
        RawDrain {
            index,
            broker: broker.to_owned(),
            topic: self.load.topic.clone(),
            ranges,
            repeat,
            message_size: self.load.message_size,
            not_before,
            timeout: self.brokers.timeout,
            latency,
        }
    }

    fn spawn_consumer(
        &self,
        job: ConsumerJob,
        stats: &Arc<ConsumeStats>,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let config = self.brokers.client_config_with(&[
            ("group.id", crate::cli::consume::ASSIGN_GROUP_ID.to_owned()),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            ("auto.offset.reset", "earliest".to_owned()),
            ("fetch.wait.max.ms", "100".to_owned()),
        ])?;
        consumers::spawn(&config, &self.load.topic, job, self.clock, Arc::clone(stats), Arc::clone(stop))
    }

    fn produce_figures(&self, stats: &ProduceStats, recorders: &[SharedRecorder], measure_start: Instant) -> ProduceFigures {
        let last = self.clock.instant(stats.last_ack_ns.load(Ordering::Relaxed));
        ProduceFigures {
            latency: LatencyRecorder::merged(recorders, measure_start),
            sent: stats.sent.load(Ordering::Relaxed),
            acked: stats.acked.load(Ordering::Relaxed),
            failed: stats.failed.load(Ordering::Relaxed),
            first_error: stats.first_error.lock().ok().and_then(|e| e.clone()),
            measured: stats.measured_acked.load(Ordering::Relaxed),
            measured_bytes: stats.measured_bytes.load(Ordering::Relaxed),
            seconds: last.saturating_duration_since(measure_start).as_secs_f64(),
        }
    }

    /// Tailing figures count from the measurement start; draining ones from the first record.
    fn consume_figures(&self, stats: &ConsumeStats, measure_start: Option<Instant>, complete: bool) -> ConsumeFigures {
        let first = measure_start.unwrap_or_else(|| self.clock.instant(stats.first_receive_ns.load(Ordering::Relaxed)));
        let last = self.clock.instant(stats.last_receive_ns.load(Ordering::Relaxed));
        let received = stats.received.load(Ordering::Relaxed);
        let measured = if measure_start.is_some() { stats.measured.load(Ordering::Relaxed) } else { received };
        let bytes = stats.bytes.load(Ordering::Relaxed);
        // Measured records are this run's; their bytes are the average record's share.
        let bytes = bytes.checked_div(received).map_or(0, |per_record| per_record * measured);
        ConsumeFigures {
            received,
            measured,
            bytes,
            seconds: last.saturating_duration_since(first).as_secs_f64(),
            errors: stats.errors.load(Ordering::Relaxed),
            complete,
            passes: stats.drained.load(Ordering::Relaxed),
        }
    }
}

/// Each window's figures, now (None for a window that is absent or says nothing).
fn finish_all<const N: usize>(windows: &[Option<CpuWindow>; N]) -> [Option<CpuShare>; N] {
    windows.each_ref().map(|w| w.as_ref().and_then(CpuWindow::finish))
}

/// Producer `i`'s part of `n` messages split over `producers`.
fn share_of(n: u64, producers: usize, i: usize) -> u64 {
    let p = producers.max(1) as u64;
    n / p + u64::from((i as u64) < n % p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_counts_split_over_producers_add_up() {
        let shares: Vec<u64> = (0..3).map(|i| share_of(10, 3, i)).collect();
        assert_eq!(shares, vec![4, 3, 3]);
        assert_eq!(shares.iter().sum::<u64>(), 10);
    }
}
