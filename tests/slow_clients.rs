//! Slow, idle and greedy clients against the real broker: idle and half-sent connections are
//! closed after connections.max.idle.ms, connections past max.connections(.per.ip) are closed on
//! accept, and a client that never reads its responses cannot grow the broker's memory, while
//! other clients keep being served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::requests::{create_topic, fetch_request, produce, FETCH_V};
use common::{batch, Broker, Client};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};

/// A generous bound for any one request of a well-behaved client.
const LIVENESS: Duration = Duration::from_secs(5);

/// True if the broker has closed `stream`; false if it is open and silent for `wait`.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => panic!("an idle connection got bytes"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

/// An ApiVersions call on a fresh connection, within the liveness bound.
fn assert_served(broker: &Broker) {
    let started = Instant::now();
    let response: ApiVersionsResponse = broker.connect().call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    assert!(started.elapsed() < LIVENESS, "ApiVersions took {:?}", started.elapsed());
}

#[test]
fn idle_and_half_sent_connections_are_closed_after_the_idle_time_and_others_are_served() {
    const IDLE_CONNECTIONS: usize = 2000;
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(hard, hard).unwrap();
    assert!(hard >= 2 * IDLE_CONNECTIONS as u64 + 100, "open files hard limit {hard} (soft {soft}) is too low");
    let broker = Broker::start_with_config(2, Some("connections.max.idle.ms = 2000\n"));
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE_CONNECTIONS).map(|_| TcpStream::connect(("127.0.0.1", broker.port)).unwrap()).collect();
    // Half a frame: the size prefix says 100 bytes, ten follow.
    let mut half = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    half.write_all(&100i32.to_be_bytes()).unwrap();
    half.write_all(&[0u8; 10]).unwrap();
    // A busy client is never idle, and is served throughout.
    let mut busy = broker.connect();
    while opened.elapsed() < Duration::from_millis(1200) {
        let started = Instant::now();
        let _: ApiVersionsResponse = busy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert!(started.elapsed() < LIVENESS);
        std::thread::sleep(Duration::from_millis(50));
    }
    let open_early = idle.iter_mut().take(50).map(|s| closed_within(s, Duration::from_millis(1))).filter(|closed| !closed).count();
    assert_eq!(open_early, 50, "idle connections were closed before connections.max.idle.ms");
    let deadline = opened + Duration::from_secs(15);
    let mut closed = 0;
    for stream in idle.iter_mut().chain(std::iter::once(&mut half)) {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        closed += usize::from(closed_within(stream, left));
    }
    let all_closed_after = opened.elapsed();
    let _: ApiVersionsResponse = busy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_served(&broker);
    println!(
        "idle connections: {IDLE_CONNECTIONS} + 1 half-sent frame, closed by the broker: {closed}, \
         all closed {all_closed_after:?} after opening (connections.max.idle.ms = 2000), busy client served throughout"
    );
    assert_eq!(closed, IDLE_CONNECTIONS + 1);
    assert!(!broker.log().contains("panicked"));
}

/// Opens `n` connections the broker keeps. The broker's own start-up probe connections close
/// asynchronously, so until their places are given back an attempt may be refused: retry.
fn open_admitted(broker: &Broker, n: usize) -> Vec<TcpStream> {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let mut streams: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(("127.0.0.1", broker.port)).unwrap()).collect();
        if streams.iter_mut().all(|s| !closed_within(s, Duration::from_millis(200))) {
            return streams;
        }
        assert!(Instant::now() < deadline, "{n} connections were not admitted:\n{}", broker.log());
    }
}

#[test]
fn connections_past_max_connections_per_ip_are_closed_on_accept_and_a_close_frees_a_place() {
    let broker = Broker::start_with_config(2, Some("max.connections.per.ip = 5\n"));
    let mut admitted = open_admitted(&broker, 5);
    let mut refused = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    assert!(closed_within(&mut refused, LIVENESS), "the sixth connection from one IP stayed open");
    assert!(broker.log().contains("max.connections.per.ip=5"), "{}", broker.log());
    admitted.pop();
    let _again = open_admitted(&broker, 1);
}

#[test]
fn connections_past_max_connections_are_closed_on_accept() {
    let broker = Broker::start_with_config(2, Some("\"max.connections\" = 3\n"));
    let _admitted = open_admitted(&broker, 3);
    let mut refused = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    assert!(closed_within(&mut refused, LIVENESS), "a fourth connection stayed open");
    assert!(broker.log().contains("max.connections=3"), "{}", broker.log());
}

#[test]
fn a_client_that_never_reads_its_responses_cannot_grow_the_broker_and_others_are_served() {
    // Far more than socket buffers hold, so the broker must stop reading for the writes to block.
    const REQUESTS: usize = 1_000_000;
    let broker = Broker::start(2);
    let mut client = broker.connect();
    assert_eq!(create_topic(&mut client, "big", 1, &[]).topics[0].error_code, 0);
    let value = "x".repeat(100_000);
    for _ in 0..10 {
        assert_eq!(produce(&mut client, "big", 0, batch(&[&value], 1_700_000_000_000)).0, 0);
    }
    let before_kib = broker.memory_kib("VmRSS");
    // Pipelined Fetch (about 1 MB of answer each) and Metadata requests, never read.
    let port = broker.port;
    let greedy = std::thread::spawn(move || {
        let mut greedy = Client::connect(port);
        greedy.set_write_timeout(Duration::from_secs(3));
        let fetch = fetch_request("big", 0, 0, 0);
        (0..REQUESTS)
            .take_while(|i| {
                let sent = if i % 2 == 0 { greedy.try_send(ApiKey::Fetch, FETCH_V, &fetch) } else { greedy.try_send(ApiKey::Metadata, 12, &MetadataRequest::default()) };
                sent.is_ok()
            })
            .count()
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        assert_served(&broker);
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = greedy.join().unwrap();
    let peak_kib = broker.memory_kib("VmHWM");
    println!(
        "unread pipelined requests written before the broker stopped reading: {sent} of {REQUESTS}, \
         broker RSS before: {before_kib} kB, peak: {peak_kib} kB, other clients served throughout"
    );
    assert!(sent < REQUESTS, "the broker read every request of a client that reads nothing");
    assert!(peak_kib < before_kib + 256 * 1024, "RSS grew from {before_kib} kB to {peak_kib} kB");
}
