//! The answering side of a protocol producer: one connection per leader, whose reader thread
//! settles each Produce request's records, in order, as acknowledged or failed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ProduceResponse};

use super::{note_error, Shared, ANSWER_TIMEOUT, PRODUCE_VERSION};
use crate::cli::kafka_error::protocol_name;
use crate::cli::produce::Acks;
use crate::cli::raw_client::RawConnection;

/// One Produce request on its way: its records' intended send times, by partition.
pub(super) struct InFlight {
    pub(super) correlation_id: i32,
    pub(super) parts: Vec<(i32, Vec<u64>)>,
}

/// One leader's connection: the sender writes, a reader thread settles the answers in order.
pub(super) struct Link {
    pub(super) connection: RawConnection,
    pub(super) in_flight: Option<flume::Sender<InFlight>>,
    pub(super) reader: Option<JoinHandle<()>>,
}

pub(super) fn connect(leader: &str, timeout: Duration, acks: Acks, shared: &Arc<Shared>) -> anyhow::Result<Link> {
    let connection = RawConnection::connect(leader, timeout)?;
    if acks == Acks::None {
        return Ok(Link { connection, in_flight: None, reader: None });
    }
    let (in_flight, answers) = flume::unbounded::<InFlight>();
    // A slow answer, or a broker that stops reading while it works through what it has, is
    // latency up to message.timeout.ms, not a lost connection (the timeouts are the socket's,
    // so the sending handle has them too).
    let mut reading = connection.try_clone()?;
    reading.set_timeouts(ANSWER_TIMEOUT)?;
    let shared = Arc::clone(shared);
    let reader = std::thread::Builder::new().name("bench-produce-answers".to_owned()).spawn(move || {
        while let Ok(flight) = answers.recv() {
            match reading.receive::<ProduceResponse>(ApiKey::Produce, PRODUCE_VERSION, flight.correlation_id) {
                Ok(response) => settle(&shared, &flight, &Outcome::Answered(&response), Instant::now()),
                Err(e) => {
                    tracing::warn!(error = %e, "protocol producer: connection lost");
                    shared.broken.store(true, Ordering::Relaxed);
                    note_error(&shared, "NETWORK_EXCEPTION".to_owned());
                    settle(&shared, &flight, &Outcome::Lost, Instant::now());
                    // Until the sender stops (it sees `broken` at its next batch), whatever it
                    // still hands over is lost too.
                    answers.iter().for_each(|f| settle(&shared, &f, &Outcome::Lost, Instant::now()));
                    return;
                }
            }
        }
    })?;
    Ok(Link { connection, in_flight: Some(in_flight), reader: Some(reader) })
}

/// How a Produce request ended.
pub(super) enum Outcome<'a> {
    /// The broker answered: each partition's error code.
    Answered(&'a ProduceResponse),
    /// acks=0: written to the socket, which is all librdkafka waits for before reporting it
    /// delivered.
    Written,
    /// The connection failed before an answer.
    Lost,
}

/// Counts the records of `flight` as acknowledged at `now`, or failed.
pub(super) fn settle(shared: &Shared, flight: &InFlight, outcome: &Outcome<'_>, now: Instant) {
    let errors: BTreeMap<i32, i16> = match outcome {
        Outcome::Answered(response) => {
            response.responses.iter().flat_map(|t| &t.partition_responses).map(|p| (p.index, p.error_code)).collect()
        }
        Outcome::Written => flight.parts.iter().map(|(p, _)| (*p, 0)).collect(),
        Outcome::Lost => BTreeMap::new(),
    };
    let stats = &shared.stats;
    let mut recorder = shared.recorder.lock().ok();
    for (partition, intended) in &flight.parts {
        let count = intended.len() as u64;
        match errors.get(partition).copied() {
            Some(0) => {
                stats.acked.fetch_add(count, Ordering::Relaxed);
                let mut measured = 0;
                if let Some(recorder) = recorder.as_mut() {
                    for ns in intended {
                        measured += u64::from(recorder.record(shared.clock.instant(*ns), now));
                    }
                }
                if measured > 0 {
                    stats.measured_acked.fetch_add(measured, Ordering::Relaxed);
                    stats.measured_bytes.fetch_add(measured * shared.message_size, Ordering::Relaxed);
                    stats.last_ack_ns.fetch_max(shared.clock.nanos(now), Ordering::Relaxed);
                }
            }
            code => {
                stats.failed.fetch_add(count, Ordering::Relaxed);
                if let Outcome::Answered(_) = outcome {
                    note_error(shared, code.and_then(protocol_name).unwrap_or_else(|| format!("no answer for partition {partition}")));
                }
            }
        }
        shared.outstanding.fetch_sub(count, Ordering::Relaxed);
    }
}
