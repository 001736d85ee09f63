//! The sending side of a protocol producer: records taken on their schedule into per-partition
//! batches as librdkafka forms them, sealed at batch.size or linger.ms, one Produce request each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression as BatchCompression;
use strand::protocol::record_batch::{encode_batch, BatchProducer, NewRecord};

use super::answers::{settle, InFlight, Link, Outcome};
use super::{
    note_error, RawProduce, Shared, BATCH_HEADER_BYTES, MESSAGE_MAX_BYTES, PRODUCE_VERSION, QUEUE_FULL_WAIT,
    QUEUE_MESSAGES_MAX, RECORD_FRAMING_BYTES, REQUEST_TIMEOUT_MS, STICKY_FOR, TURN_RECORDS_MAX,
};
use crate::cli::bench::payload::filler;
use crate::cli::produce::{Acks, Compression};

/// Records gathered for one partition's next batch.
struct Pending {
    records: Vec<NewRecord>,
    intended: Vec<u64>,
    bytes: usize,
    since: Instant,
}

/// A batch ready to send.
struct Sealed {
    partition: i32,
    batch: Bytes,
    intended: Vec<u64>,
}

/// The sending side of one protocol producer.
pub(super) struct Sender<'a> {
    job: &'a RawProduce,
    shared: &'a Shared,
    partitions: Vec<i32>,
    pending: BTreeMap<i32, Pending>,
    sealed: Vec<Sealed>,
    payload: Vec<u8>,
    /// Payloads are cut from this buffer, so a record costs no allocation of its own.
    arena: BytesMut,
    sticky: Option<(i32, Instant)>,
    random: u64,
}

impl<'a> Sender<'a> {
    pub(super) fn new(job: &'a RawProduce, shared: &'a Shared) -> Self {
        let seed = shared.clock.run_id ^ (job.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            job,
            shared,
            partitions: job.leaders.keys().copied().collect(),
            pending: BTreeMap::new(),
            sealed: Vec::new(),
            payload: filler(job.plan.message_size, seed),
            arena: BytesMut::new(),
            sticky: None,
            random: seed | 1,
        }
    }

    pub(super) fn run(&mut self, links: &mut BTreeMap<String, Link>, halt: &AtomicBool) -> anyhow::Result<()> {
        let plan = &self.job.plan;
        let interval = plan.rate.map(|r| 1.0 / r);
        let (mut sequence, mut measured) = (0u64, 0u64);
        let mut done = false;
        while !done {
            let now = Instant::now();
            let wall_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            // The next record's intended time, or when to look again at a full queue.
            let mut next_send = None;
            let mut queue_full = false;
            let mut taken = 0;
            loop {
                if halt.load(Ordering::Relaxed) || self.shared.broken.load(Ordering::Relaxed) || plan.messages.is_some_and(|n| measured >= n) {
                    done = true;
                    break;
                }
                let intended = match interval {
                    Some(seconds) => plan.send_start + Duration::from_secs_f64(seconds * sequence as f64),
                    None => now.max(plan.send_start),
                };
                if intended >= plan.send_end && plan.messages.is_none() {
                    done = true;
                    break;
                }
                if intended > now {
                    next_send = Some(intended);
                    break;
                }
                if self.shared.outstanding.load(Ordering::Relaxed) >= QUEUE_MESSAGES_MAX {
                    queue_full = true;
                    break;
                }
                if interval.is_none() && taken >= TURN_RECORDS_MAX {
                    break;
                }
                self.take(sequence, intended, wall_ms);
                sequence += 1;
                taken += 1;
                measured += u64::from(intended >= plan.measure_start);
            }
            // Counted once a turn, not once a record.
            self.shared.stats.sent.fetch_add(taken as u64, Ordering::Relaxed);
            self.seal_lingered(now, done);
            self.send(links);
            if done {
                break;
            }
            // Records are taken when the batch they join is due, not one wake-up each: a record
            // waits in its batch from its intended time as it would in librdkafka's queue, and the
            // batch is sealed when linger.ms has passed since its first record's intended time, or
            // when the record that does not fit in it is due.
            let next_seal = self.pending.values().map(|p| p.since + self.job.linger).min();
            let wake = if queue_full {
                [Some(now + QUEUE_FULL_WAIT), next_seal].into_iter().flatten().min()
            } else if interval.is_none() {
                // As fast as possible: take more at once (from the start time on).
                next_send
            } else if self.pending.is_empty() {
                next_send
            } else {
                [next_seal, self.overflows_at(sequence, interval)].into_iter().flatten().min()
            };
            let Some(wake) = wake else { continue };
            let now = Instant::now();
            if wake > now {
                std::thread::sleep(wake - now);
            }
        }
        anyhow::ensure!(!self.shared.broken.load(Ordering::Relaxed), "protocol producer {}: a connection failed", self.job.index);
        Ok(())
    }

    /// Adds one record, intended at `intended`, to its partition's batch (sealing that batch
    /// first when the record would take it past batch.size, or came after its linger.ms).
    fn take(&mut self, sequence: u64, intended: Instant, wall_ms: i64) {
        let key = self.job.plan.keys.then(|| Bytes::from((sequence % 1024).to_string()));
        let partition = match &key {
            // librdkafka's default partitioner (consistent_random): CRC-32 of the key.
            Some(key) => self.partitions[crc32fast::hash(key) as usize % self.partitions.len()],
            None => self.sticky_partition(intended),
        };
        let size = self.payload.len();
        if self.arena.capacity() < size {
            self.arena = BytesMut::with_capacity(size.max(1 << 20));
        }
        self.shared.clock.stamp(&mut self.payload, intended);
        self.arena.extend_from_slice(&self.payload);
        let value = self.arena.split().freeze();
        let record_bytes = RECORD_FRAMING_BYTES + size + key.as_ref().map_or(0, Bytes::len);
        // The batch was sealed before this record was due (it is taken late, at the wake-up
        // that seals it) or has no room for it: the record starts the next one.
        let lingered = |p: &Pending| !self.job.linger.is_zero() && intended >= p.since + self.job.linger;
        if self.pending.get(&partition).is_some_and(|p| p.bytes + record_bytes > self.batch_limit() || lingered(p)) {
            self.seal(partition);
        }
        let pending = self.pending.entry(partition).or_insert_with(|| Pending {
            records: Vec::new(),
            intended: Vec::new(),
            bytes: BATCH_HEADER_BYTES,
            since: intended,
        });
        pending.records.push((key, Some(value), wall_ms));
        pending.intended.push(self.shared.clock.nanos(intended));
        pending.bytes += record_bytes;
        self.shared.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// With a rate: the intended time of the first record that will not fit in its partition's
    /// batch (record `sequence` is the next to take). Without keys that is the sticky partition's
    /// batch; with keys, spread evenly over the partitions, the fullest batch's.
    fn overflows_at(&self, sequence: u64, interval: Option<f64>) -> Option<Instant> {
        let interval = interval?;
        let record_bytes = RECORD_FRAMING_BYTES + self.payload.len();
        let later = |pending: &Pending, every: u64| {
            let fit = self.batch_limit().saturating_sub(pending.bytes) / record_bytes;
            self.job.plan.send_start + Duration::from_secs_f64(interval * (sequence + fit as u64 * every) as f64)
        };
        if self.job.plan.keys {
            self.pending.values().map(|p| later(p, self.partitions.len() as u64)).min()
        } else {
            Some(later(self.pending.get(&self.sticky?.0)?, 1))
        }
    }

    /// The most a batch may hold: batch.size, never past message.max.bytes.
    fn batch_limit(&self) -> usize {
        self.job.batch_size.min(MESSAGE_MAX_BYTES)
    }

    /// The sticky partition for a record intended at `at`.
    fn sticky_partition(&mut self, at: Instant) -> i32 {
        match self.sticky {
            Some((partition, since)) if at.saturating_duration_since(since) < STICKY_FOR => partition,
            _ => {
                self.random ^= self.random << 13;
                self.random ^= self.random >> 7;
                self.random ^= self.random << 17;
                let partition = self.partitions[(self.random % self.partitions.len() as u64) as usize];
                self.sticky = Some((partition, at));
                partition
            }
        }
    }

    /// Seals every batch that waited linger.ms (all of them at the end).
    fn seal_lingered(&mut self, now: Instant, all: bool) {
        let due: Vec<i32> =
            self.pending.iter().filter(|(_, p)| all || now.saturating_duration_since(p.since) >= self.job.linger).map(|(k, _)| *k).collect();
        for partition in due {
            self.seal(partition);
        }
    }

    fn seal(&mut self, partition: i32) {
        let Some(pending) = self.pending.remove(&partition) else { return };
        let compression = batch_compression(self.job.compression);
        match encode_batch(pending.records, BatchProducer::NONE, compression) {
            Ok(batch) => self.sealed.push(Sealed { partition, batch: batch.freeze(), intended: pending.intended }),
            Err(e) => {
                let count = pending.intended.len() as u64;
                self.shared.stats.failed.fetch_add(count, Ordering::Relaxed);
                note_error(self.shared, format!("encoding a batch: {e}"));
                self.shared.outstanding.fetch_sub(count, Ordering::Relaxed);
            }
        }
    }

    /// Sends the sealed batches in order, one Produce request each. When a connection fails,
    /// what was not sent counts as lost, and the sender stops at its next turn (with what it
    /// still holds counted as lost too).
    fn send(&mut self, links: &mut BTreeMap<String, Link>) {
        let mut sealed = std::mem::take(&mut self.sealed).into_iter();
        while let Some(batch) = sealed.next() {
            if self.shared.broken.load(Ordering::Relaxed) {
                self.lose(std::iter::once(batch).chain(sealed));
                return;
            }
            let link = links.get_mut(&self.job.leaders[&batch.partition]).expect("a link per leader");
            if let Err(e) = self.send_one(link, batch) {
                tracing::warn!(error = %e, "protocol producer: sending failed");
                self.shared.broken.store(true, Ordering::Relaxed);
                note_error(self.shared, "NETWORK_EXCEPTION".to_owned());
                // The reader wakes, settles what this connection has in flight as lost, and ends.
                let _ = link.connection.shutdown();
                self.lose(sealed);
                return;
            }
        }
    }

    fn lose(&self, batches: impl Iterator<Item = Sealed>) {
        let flight = InFlight { correlation_id: 0, parts: batches.map(|s| (s.partition, s.intended)).collect() };
        settle(self.shared, &flight, &Outcome::Lost, Instant::now());
    }

    /// Writes one batch's request and hands it to the answer reader; a batch that was not
    /// written (or whose answer no reader will read) is settled as lost here.
    fn send_one(&self, link: &mut Link, batch: Sealed) -> anyhow::Result<()> {
        let request = ProduceRequest::default()
            .with_acks(acks_value(self.job.acks))
            .with_timeout_ms(REQUEST_TIMEOUT_MS)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(self.job.plan.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default().with_index(batch.partition).with_records(Some(batch.batch))])]);
        let flight = |correlation_id| InFlight { correlation_id, parts: vec![(batch.partition, batch.intended)] };
        let correlation_id = match link.connection.send(ApiKey::Produce, PRODUCE_VERSION, &request) {
            Ok(id) => id,
            Err(e) => {
                settle(self.shared, &flight(0), &Outcome::Lost, Instant::now());
                return Err(e);
            }
        };
        match &link.in_flight {
            Some(in_flight) => in_flight.send(flight(correlation_id)).map_err(|lost| {
                settle(self.shared, &lost.into_inner(), &Outcome::Lost, Instant::now());
                anyhow::anyhow!("protocol producer: the answer reader stopped")
            }),
            // acks=0: the broker does not answer.
            None => {
                settle(self.shared, &flight(correlation_id), &Outcome::Written, Instant::now());
                Ok(())
            }
        }
    }
}

fn acks_value(acks: Acks) -> i16 {
    match acks {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    }
}

fn batch_compression(compression: Compression) -> BatchCompression {
    match compression {
        Compression::None => BatchCompression::None,
        Compression::Gzip => BatchCompression::Gzip,
        Compression::Snappy => BatchCompression::Snappy,
        Compression::Lz4 => BatchCompression::Lz4,
        Compression::Zstd => BatchCompression::Zstd,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::answers::connect;
    use super::super::test_support::{job, shared};
    use super::*;

    #[test]
    fn keyless_records_stick_to_one_partition_and_batches_stop_at_batch_size_or_linger() {
        // Three 100-byte records fit: 61 + 3 * 110 = 391 <= 400. Records 100 us apart.
        let (job, shared) = (job(10_000.0, false, 400), shared());
        let mut sender = Sender::new(&job, &shared);
        let start = job.plan.send_start;
        let at = |i: u64| start + Duration::from_micros(100 * i);
        for i in 0..7 {
            sender.take(i, at(i), 0);
        }
        // All within the sticky 10 ms: one partition, two full batches sealed, one pending.
        let partitions: Vec<i32> = sender.sealed.iter().map(|s| s.partition).chain(sender.pending.keys().copied()).collect();
        assert_eq!(partitions.len(), 3);
        assert!(partitions.iter().all(|p| *p == partitions[0]));
        assert_eq!(sender.sealed.iter().map(|s| s.intended.len()).collect::<Vec<_>>(), vec![3, 3]);
        assert_eq!(shared.outstanding.load(Ordering::Relaxed), 7);
        // The pending batch holds record 6; records 7 and 8 fit, so record 9 is the one that
        // overflows it.
        assert_eq!(sender.overflows_at(7, Some(0.0001)), Some(at(9)));
        // Each sealed batch is a valid v2 batch of its records, stamped with their send times.
        let mut batch = sender.sealed[1].batch.clone();
        let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).expect("a valid batch");
        let sent: Vec<Option<Instant>> = decoded.records.iter().map(|r| shared.clock.read(r.value.as_deref().unwrap_or_default())).collect();
        assert_eq!(sent, (3..6).map(|i| Some(at(i))).collect::<Vec<_>>());
        // A record due linger.ms (1 ms) after the pending batch's first starts a new batch, even
        // when it is taken late.
        sender.take(7, at(16), 0);
        assert_eq!(sender.sealed.iter().map(|s| s.intended.len()).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert_eq!(sender.pending.values().map(|p| p.intended.len()).collect::<Vec<_>>(), vec![1]);
        // After 10 ms the partition changes at random; over many changes every partition is used.
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200u64 {
            sender.take(8 + i, start + Duration::from_millis(20 + 10 * i), 0);
            seen.insert(sender.sticky.map(|s| s.0));
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn records_on_a_lost_connection_count_as_failed_and_nothing_stays_outstanding() {
        // A "broker" that accepts and hangs up at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let address = listener.local_addr().expect("an address").to_string();
        let closer = std::thread::spawn(move || drop(listener.accept()));
        let mut job = job(1000.0, false, 400);
        job.leaders = (0..4).map(|p| (p, address.clone())).collect();
        let shared = Arc::new(shared());
        let mut links = BTreeMap::from([(address.clone(), connect(&address, Duration::from_secs(5), Acks::All, &shared).expect("connects"))]);
        closer.join().expect("closed");
        let mut sender = Sender::new(&job, &shared);
        let start = job.plan.send_start;
        // Batches are sent until the lost connection shows; then everything counts as lost.
        for round in 0..50u64 {
            for i in 0..7 {
                sender.take(round * 7 + i, start + Duration::from_millis(round * 7 + i), 0);
            }
            sender.seal_lingered(start + Duration::from_secs(1), true);
            sender.send(&mut links);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(shared.outstanding.load(Ordering::Relaxed), 0);
        assert!(shared.broken.load(Ordering::Relaxed));
        assert_eq!(shared.stats.failed.load(Ordering::Relaxed), 350);
        assert_eq!(shared.stats.acked.load(Ordering::Relaxed), 0);
        assert_eq!(shared.stats.first_error.lock().expect("not poisoned").as_deref(), Some("NETWORK_EXCEPTION"));
    }

    #[test]
    fn keyed_records_go_to_their_keys_partition_and_lingered_batches_seal() {
        let (job, shared) = (job(1000.0, true, 1 << 20), shared());
        let mut sender = Sender::new(&job, &shared);
        let start = job.plan.send_start;
        for i in 0..2048 {
            sender.take(i, start, 0);
        }
        sender.seal_lingered(start + Duration::from_micros(999), false);
        assert!(sender.sealed.is_empty(), "nothing waited linger.ms yet");
        sender.seal_lingered(start + Duration::from_millis(1), false);
        assert!(sender.pending.is_empty() && sender.sealed.len() == 4);
        // Key k went where key k + 1024 went.
        let mut partition_of = BTreeMap::new();
        for sealed in &sender.sealed {
            let mut batch = sealed.batch.clone();
            for record in kafka_protocol::records::RecordBatchDecoder::decode(&mut batch).expect("valid").records {
                let key = record.key.expect("keyed");
                assert_eq!(*partition_of.entry(key).or_insert(sealed.partition), sealed.partition);
            }
        }
        assert_eq!(partition_of.len(), 1024);
    }
}
