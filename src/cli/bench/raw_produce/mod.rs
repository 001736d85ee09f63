//! A producer that speaks the Kafka protocol itself (`--client protocol`): records batched per
//! partition as librdkafka batches them with the bench's settings, one Produce request per batch
//! (as librdkafka sends them) pipelined on one connection per leader, and each record's latency
//! taken from the answer to its request.
//! It puts the same shape of load on the broker as a librdkafka producer (the same batch.size,
//! linger.ms, acks and sticky partitioning) at a fraction of the client CPU, so on a machine
//! where the load generator has one core, the broker and not the client sets the ceiling.
//!
//! What it does not do, unlike librdkafka: retry (a batch the broker refuses counts as failed),
//! follow leader changes, idempotence, or apply `-X` client properties.

mod answers;
mod sender;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::latency::SharedRecorder;
use super::payload::BenchClock;
use super::producers::{ProduceStats, ProducerPlan};
use crate::cli::produce::{Acks, Compression};
use answers::connect;
use sender::Sender;

/// Produce v8: the last version before flexible encodings, as librdkafka 2.x sends.
const PRODUCE_VERSION: i16 = 8;
/// librdkafka's request.timeout.ms: how long the leader may wait for acks=all.
const REQUEST_TIMEOUT_MS: i32 = 30_000;
/// librdkafka's message.timeout.ms as the bench sets it: how long an answer may take before
/// the connection counts as lost (a slow answer is latency, not a failure).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// librdkafka's message.max.bytes: a batch never grows past it, whatever batch.size says.
const MESSAGE_MAX_BYTES: usize = 1_000_000;
/// librdkafka's queue.buffering.max.messages: records produced and not yet answered. A full
/// queue holds the sender back, and the wait counts in the records' latency.
const QUEUE_MESSAGES_MAX: u64 = 100_000;
/// librdkafka's sticky.partitioning.linger.ms: records without a key go to one partition,
/// chosen at random, for this long.
const STICKY_FOR: Duration = Duration::from_millis(10);
/// A v2 batch's header, and what a record's framing typically adds to its key and value
/// (length, attributes, timestamp and offset deltas, key and value lengths, header count: 10
/// bytes for a 1 KiB value without a key). batch.size is a target, as in librdkafka.
const BATCH_HEADER_BYTES: usize = 61;
const RECORD_FRAMING_BYTES: usize = 10;
/// At most this many records are taken in one turn of a max-rate sender before it sends.
const TURN_RECORDS_MAX: usize = 1024;
/// How long a sender whose queue is full waits before looking again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);
/// How long the end of a run waits for the last answers (as the librdkafka producer's flush).
const FLUSH_WAIT: Duration = Duration::from_secs(60);

/// What one protocol producer sends.
#[derive(Debug, Clone)]
pub struct RawProduce {
    pub index: usize,
    pub plan: ProducerPlan,
    /// Each partition's leader, host:port.
    pub leaders: BTreeMap<i32, String>,
    pub acks: Acks,
    pub batch_size: usize,
    pub linger: Duration,
    pub compression: Compression,
    pub timeout: Duration,
}

/// What the sender and the answer readers share.
struct Shared {
    clock: BenchClock,
    recorder: SharedRecorder,
    stats: Arc<ProduceStats>,
    message_size: u64,
    /// Records taken and not yet answered (or failed).
    outstanding: AtomicU64,
    /// A connection failed: the sender stops.
    broken: AtomicBool,
}

/// Starts one protocol producer thread; it ends when its plan is done or `halt` is set, after
/// the answers to everything it sent are in (or [`FLUSH_WAIT`] passed).
pub fn spawn(
    job: RawProduce,
    clock: BenchClock,
    recorder: SharedRecorder,
    stats: Arc<ProduceStats>,
    halt: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let message_size = job.plan.message_size as u64;
    let shared = Arc::new(Shared { clock, recorder, stats, message_size, outstanding: AtomicU64::new(0), broken: AtomicBool::new(false) });
    let mut links = BTreeMap::new();
    for leader in job.leaders.values() {
        if !links.contains_key(leader) {
            links.insert(leader.clone(), connect(leader, job.timeout, job.acks, &shared)?);
        }
    }
    let thread = std::thread::Builder::new().name(format!("bench-producer-{}", job.index)).spawn(move || {
        let sent = Sender::new(&job, &shared).run(&mut links, &halt);
        let deadline = Instant::now() + FLUSH_WAIT;
        // A lost connection's reader settles its requests as lost; the others' answers still count.
        while shared.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for link in links.values_mut() {
            // Closing the queue ends the reader once it has settled what was sent.
            link.in_flight = None;
            let _ = link.connection.shutdown();
            if let Some(reader) = link.reader.take() {
                let _ = reader.join();
            }
        }
        sent
    })?;
    Ok(thread)
}

fn note_error(shared: &Shared, name: String) {
    if let Ok(mut first) = shared.stats.first_error.lock() {
        first.get_or_insert(name);
    }
}

#[cfg(test)]
mod test_support {
    use super::*;
    use crate::cli::bench::latency::LatencyRecorder;

    pub(super) fn job(rate: f64, keys: bool, batch_size: usize) -> RawProduce {
        let start = Instant::now();
        RawProduce {
            index: 0,
            plan: ProducerPlan {
                topic: "t".to_owned(),
                message_size: 100,
                keys,
                rate: Some(rate),
                send_start: start,
                measure_start: start,
                send_end: start + Duration::from_secs(1),
                messages: None,
            },
            leaders: (0..4).map(|p| (p, "127.0.0.1:1".to_owned())).collect(),
            acks: Acks::All,
            batch_size,
            linger: Duration::from_millis(1),
            compression: Compression::None,
            timeout: Duration::from_secs(1),
        }
    }

    pub(super) fn shared() -> Shared {
        let clock = BenchClock::new();
        Shared {
            clock,
            recorder: LatencyRecorder::shared(clock.epoch),
            stats: Arc::default(),
            message_size: 100,
            outstanding: AtomicU64::new(0),
            broken: AtomicBool::new(false),
        }
    }
}
