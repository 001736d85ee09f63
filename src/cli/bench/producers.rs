//! Producer threads: each a librdkafka producer sending on its own open-loop schedule (every
//! message has an intended send time, `--rate`) or as fast as the client accepts. Produce
//! latency is from the intended (or actual) send time to the delivery report.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use super::latency::SharedRecorder;
use super::payload::{filler, BenchClock};
use crate::cli::kafka_error::kafka_name;

/// Counters shared by all producers of a phase.
#[derive(Debug, Default)]
pub struct ProduceStats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    /// Acknowledged records sent after warmup.
    pub measured_acked: AtomicU64,
    pub measured_bytes: AtomicU64,
    /// Bench-clock ns of the newest measured acknowledgement.
    pub last_ack_ns: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

/// What one producer thread does.
#[derive(Debug, Clone)]
pub struct ProducerPlan {
    pub topic: String,
    pub message_size: usize,
    pub keys: bool,
    /// Messages per second of this producer; None = as fast as possible.
    pub rate: Option<f64>,
    pub send_start: Instant,
    pub measure_start: Instant,
    /// Intended send times at or past this end the run.
    pub send_end: Instant,
    /// Measured messages to send; None = until `send_end`.
    pub messages: Option<u64>,
}

struct Context {
    clock: BenchClock,
    recorder: SharedRecorder,
    stats: Arc<ProduceStats>,
    message_size: u64,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    /// The intended send time, bench-clock nanoseconds.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, intended_ns: usize) {
        let now = Instant::now();
        match result {
            Ok(_) => {
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                let intended = self.clock.instant(intended_ns as u64);
                let measured = self.recorder.lock().is_ok_and(|mut r| r.record(intended, now));
                if measured {
                    self.stats.measured_acked.fetch_add(1, Ordering::Relaxed);
                    self.stats.measured_bytes.fetch_add(self.message_size, Ordering::Relaxed);
                    self.stats.last_ack_ns.fetch_max(self.clock.nanos(now), Ordering::Relaxed);
                }
            }
            Err((error, _)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let name = error.rdkafka_error_code().map_or_else(|| error.to_string(), kafka_name);
                if let Ok(mut first) = self.stats.first_error.lock() {
                    first.get_or_insert(name);
                }
            }
        }
    }
}

/// Starts one producer thread; it ends when its plan is done or `halt` is set, after flushing.
pub fn spawn(
    index: usize,
    config: &ClientConfig,
    plan: ProducerPlan,
    clock: BenchClock,
    recorder: SharedRecorder,
    stats: Arc<ProduceStats>,
    halt: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let context = Context { clock, recorder, stats: Arc::clone(&stats), message_size: plan.message_size as u64 };
    // librdkafka's delivery reports are served by the producer's own polling thread, so they
    // are timed when they arrive, whatever the sending thread is doing.
    let producer: ThreadedProducer<Context> =
        config.create_with_context(context).map_err(|e| anyhow::anyhow!("creating producer {index}: {e}"))?;
    let thread = std::thread::Builder::new().name(format!("bench-producer-{index}")).spawn(move || {
        produce(&producer, &plan, clock, &stats, &halt)?;
        // Whatever is still queued is delivered (or fails) before the figures are read.
        let _ = producer.flush(Duration::from_secs(60));
        Ok(())
    })?;
    Ok(thread)
}

fn produce(
    producer: &ThreadedProducer<Context>,
    plan: &ProducerPlan,
    clock: BenchClock,
    stats: &ProduceStats,
    halt: &AtomicBool,
) -> anyhow::Result<()> {
    let mut payload = filler(plan.message_size, clock.run_id ^ plan.send_start.elapsed().as_nanos() as u64);
    let interval = plan.rate.map(|r| 1.0 / r);
    let (mut sequence, mut measured) = (0u64, 0u64);
    let mut key = String::new();
    while !halt.load(Ordering::Relaxed) && plan.messages.is_none_or(|n| measured < n) {
        let now = Instant::now();
        let intended = match interval {
            Some(seconds) => plan.send_start + Duration::from_secs_f64(seconds * sequence as f64),
            None => now.max(plan.send_start),
        };
        if intended >= plan.send_end && plan.messages.is_none() {
            break;
        }
        if intended > now {
            std::thread::sleep(intended - now);
            continue;
        }
        clock.stamp(&mut payload, intended);
        let mut record = BaseRecord::with_opaque_to(&plan.topic, clock.nanos(intended) as usize).payload(&payload[..]);
        if plan.keys {
            key.clear();
            key.push_str(&(sequence % 1024).to_string());
            record = record.key(key.as_bytes());
        }
        send(producer, record, halt)?;
        stats.sent.fetch_add(1, Ordering::Relaxed);
        sequence += 1;
        measured += u64::from(intended >= plan.measure_start);
    }
    Ok(())
}

/// Sends, waiting while the client's queue is full; the wait counts in the record's latency.
fn send(producer: &ThreadedProducer<Context>, mut record: BaseRecord<'_, [u8], [u8], usize>, halt: &AtomicBool) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                if halt.load(Ordering::Relaxed) {
                    return Ok(());
                }
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(crate::cli::kafka_error::explain("bench produce", &e)),
        }
    }
}
