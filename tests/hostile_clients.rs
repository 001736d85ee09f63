//! The real broker under more than 10,000 hostile frames over many connections while a
//! well-behaved client produces and consumes: the broker stays up, never panics, refuses what it
//! must, and the good client's records are all there, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::requests::{create_topic, fetch, produce};
use common::hostile::{framed, hostile_frame, request_frame, Expect, HostileFrame};
use common::{batch, records, Broker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

const REQUEST_MAX_BYTES: i32 = 1 << 20;
const FRAMES_MIN: usize = 10_000;
const HOSTILE_THREADS: usize = 8;
const PROBE_CORRELATION_ID: i32 = -7;
const UNSUPPORTED_VERSION: i16 = 35;

#[derive(Default)]
struct Figures {
    frames: AtomicUsize,
    connections: AtomicUsize,
    closed_by_broker: AtomicUsize,
    survived: AtomicUsize,
    stalled: AtomicUsize,
    responses: AtomicUsize,
    unsupported_version_answers: AtomicUsize,
}

/// How one hostile connection ended.
enum Outcome {
    /// The probe sent after the hostile frames was answered.
    Survived,
    ClosedByBroker,
    /// No answer and no close within the wait (a parked request, such as a mutated Fetch with
    /// a long max_wait_ms).
    Stalled,
}

#[test]
fn hostile_frames_never_panic_the_broker_nor_disturb_a_good_client() {
    let config = format!(
        "socket.request.max.bytes = {REQUEST_MAX_BYTES}\ngroup.initial.rebalance.delay.ms = 0\nconnections.max.idle.ms = 3000\n"
    );
    let mut broker = Broker::start_with_config(2, Some(&config));
    assert_eq!(create_topic(&mut broker.connect(), "good", 1, &[]).topics[0].error_code, 0);

    let done = Arc::new(AtomicBool::new(false));
    let good = {
        let (port, done) = (broker.port, Arc::clone(&done));
        std::thread::spawn(move || good_client(port, &done))
    };
    let figures = Arc::new(Figures::default());
    let frames_per_thread = FRAMES_MIN / HOSTILE_THREADS + 1;
    let threads: Vec<_> = (0..HOSTILE_THREADS)
        .map(|thread| {
            let (port, figures) = (broker.port, Arc::clone(&figures));
            std::thread::spawn(move || hostile_client(port, thread, frames_per_thread, &figures))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let acknowledged = good.join().unwrap();

    assert!(broker.is_running(), "the broker died:\n{}", broker.log());
    let log = broker.log();
    let panics = log.matches("panicked").count();
    let fetched = fetch_all(&broker, "good");
    let expected: Vec<(i64, String)> = acknowledged.iter().enumerate().map(|(i, v)| (i64::try_from(i).unwrap(), v.clone())).collect();
    let f = |n: &AtomicUsize| n.load(Ordering::Relaxed);
    #[allow(clippy::print_stdout)]
    {
        println!(
            "hostile frames tried: {}, connections: {}, closed by broker: {}, survived (probe answered): {}, \
             stalled: {}, responses: {}, UNSUPPORTED_VERSION answers: {}, panics: {panics}, \
             logged closes: {}, good records: {}, broker peak RSS (VmHWM): {} kB",
            f(&figures.frames),
            f(&figures.connections),
            f(&figures.closed_by_broker),
            f(&figures.survived),
            f(&figures.stalled),
            f(&figures.responses),
            f(&figures.unsupported_version_answers),
            log.matches("closing connection").count(),
            acknowledged.len(),
            broker.memory_kib("VmHWM"),
        );
    }
    assert_eq!(panics, 0, "{log}");
    assert!(f(&figures.frames) >= FRAMES_MIN);
    assert!(f(&figures.closed_by_broker) > 0 && f(&figures.unsupported_version_answers) > 0);
    assert!(acknowledged.len() > 100, "the good client produced only {} records", acknowledged.len());
    assert_eq!(fetched, expected, "the good client's records are not all there in order");
    broker.stop();
}

/// Sends hostile frames on fresh connections until `frames` have gone out.
fn hostile_client(port: u16, thread: usize, frames: usize, figures: &Figures) {
    let mut runner = TestRunner::new_with_rng(Default::default(), proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &[u8::try_from(thread).unwrap(); 32],
    ));
    let strategy = proptest::collection::vec(hostile_frame(REQUEST_MAX_BYTES), 1..8);
    let mut sent = 0;
    while sent < frames {
        let mut batch: Vec<HostileFrame> = strategy.new_tree(&mut runner).unwrap().current();
        if let Some(last) = batch.iter().position(|f| f.last) {
            batch.truncate(last + 1);
        }
        sent += batch.len();
        figures.frames.fetch_add(batch.len(), Ordering::Relaxed);
        figures.connections.fetch_add(1, Ordering::Relaxed);
        let outcome = run_connection(port, &batch, figures);
        let must_close = batch.iter().any(|f| f.expect == Expect::Close);
        match outcome {
            Outcome::Survived => {
                assert!(!must_close, "a connection that sent {:?} was answered after it", kinds(&batch));
                figures.survived.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::ClosedByBroker => _ = figures.closed_by_broker.fetch_add(1, Ordering::Relaxed),
            Outcome::Stalled => _ = figures.stalled.fetch_add(1, Ordering::Relaxed),
        }
    }
}

fn kinds(batch: &[HostileFrame]) -> Vec<&'static str> {
    batch.iter().map(|f| f.kind).collect()
}

/// Writes `batch` then a probe (an ApiVersions request), and reads until the probe's answer,
/// a close, or the wait ends.
fn run_connection(port: u16, batch: &[HostileFrame], figures: &Figures) -> Outcome {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut wire: Vec<u8> = batch.iter().flat_map(|f| f.wire.iter().copied()).collect();
    let ends_unframed = batch.last().is_some_and(|f| f.last);
    if !ends_unframed {
        let probe = request_frame(ApiKey::ApiVersions, 3, PROBE_CORRELATION_ID, &ApiVersionsRequest::default());
        wire.extend_from_slice(&framed("probe", &probe, Expect::AnswerOrClose).wire);
    }
    // The broker may close before it has read everything: a failed write is that close.
    if stream.write_all(&wire).is_err() {
        return Outcome::ClosedByBroker;
    }
    if ends_unframed {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let first_expect = batch[0].expect;
    let mut first = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Stalled;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match read_response(&mut stream) {
            Ok(Some((correlation_id, body))) => {
                figures.responses.fetch_add(1, Ordering::Relaxed);
                if first && first_expect == Expect::UnsupportedVersionAnswer {
                    let error_code = i16::from_be_bytes([body[0], body[1]]);
                    assert_eq!(error_code, UNSUPPORTED_VERSION, "ApiVersions at an unknown version");
                    figures.unsupported_version_answers.fetch_add(1, Ordering::Relaxed);
                }
                first = false;
                if correlation_id == PROBE_CORRELATION_ID {
                    return Outcome::Survived;
                }
            }
            Ok(None) => return Outcome::ClosedByBroker,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Outcome::Stalled,
            Err(_) => return Outcome::ClosedByBroker,
        }
    }
}

/// One response: (correlation id, body), or None at a clean end of stream.
fn read_response(stream: &mut TcpStream) -> std::io::Result<Option<(i32, Vec<u8>)>> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut frame = vec![0u8; usize::try_from(i32::from_be_bytes(size)).unwrap()];
    stream.read_exact(&mut frame)?;
    let correlation_id = i32::from_be_bytes(frame[..4].try_into().unwrap());
    Ok(Some((correlation_id, frame[4..].to_vec())))
}

/// Produces batches of ten and reads them back as it goes until `done`; returns every value
/// acknowledged, in order.
fn good_client(port: u16, done: &AtomicBool) -> Vec<String> {
    let mut client = common::Client::connect(port);
    let mut acknowledged = Vec::new();
    let mut consumed = 0i64;
    let mut n = 0;
    while !done.load(Ordering::Relaxed) {
        let values: Vec<String> = (n..n + 10).map(|i| format!("good-{i}")).collect();
        n += 10;
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let started = Instant::now();
        let (error_code, base_offset) = produce(&mut client, "good", 0, batch(&refs, 1_700_000_000_000));
        assert!(started.elapsed() < Duration::from_secs(10), "a good produce took {:?}", started.elapsed());
        assert_eq!((error_code, base_offset), (0, i64::try_from(acknowledged.len()).unwrap()));
        acknowledged.extend(values);
        let fetched = records(fetch(&mut client, "good", 0, consumed, 0).records.unwrap_or_default());
        for (offset, value) in fetched {
            assert_eq!(offset, consumed);
            assert_eq!(value, format!("good-{offset}"));
            consumed += 1;
        }
    }
    acknowledged
}

fn fetch_all(broker: &Broker, topic: &str) -> Vec<(i64, String)> {
    let mut client = broker.connect();
    let mut all = Vec::new();
    loop {
        let next = i64::try_from(all.len()).unwrap();
        let fetched = records(fetch(&mut client, topic, 0, next, 0).records.unwrap_or_default());
        if fetched.is_empty() {
            return all;
        }
        all.extend(fetched.into_iter().filter(|(offset, _)| *offset >= next));
    }
}
