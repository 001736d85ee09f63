//! Slow, idle and greedy clients against the real broker: idle and half-sent connections are
//! closed after connections.max.idle.ms, connections past max.connections(.per.ip) are closed on
//! accept, a client that never reads its responses cannot grow the broker's memory, and one
//! that pipelines past max.in.flight.requests.per.connection and never reads is closed when
//! idle, while other clients keep being served.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::requests::{create_topic, fetch_request, produce, size_prefixed, FETCH_V};
use common::{batch, request_frame, Broker, Client};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, ResponseHeader};
use kafka_protocol::protocol::Decodable;

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

/// Whether the broker admitted `stream`: it answers an ApiVersions request on it (true) or
/// closes it (false), within the liveness bound.
fn admitted(stream: &mut TcpStream) -> bool {
    const CORRELATION_ID: i32 = 41;
    let request = request_frame(ApiKey::ApiVersions, 3, CORRELATION_ID, &ApiVersionsRequest::default());
    if stream.write_all(&size_prefixed(&request)).is_err() {
        return false;
    }
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("a connection was neither answered nor closed within {LIVENESS:?}")
        }
        Err(_) => return false,
    }
    let mut response = vec![0u8; usize::try_from(i32::from_be_bytes(size)).unwrap()];
    stream.read_exact(&mut response).unwrap();
    let mut response = Bytes::from(response);
    let header = ResponseHeader::decode(&mut response, ApiKey::ApiVersions.response_header_version(3)).unwrap();
    assert_eq!(header.correlation_id, CORRELATION_ID);
    assert_eq!(ApiVersionsResponse::decode(&mut response, 3).unwrap().error_code, 0);
    true
}

#[test]
fn idle_and_half_sent_connections_are_closed_after_the_idle_time_and_others_are_served() {
    const IDLE_CONNECTIONS: usize = 2000;
    const IDLE: Duration = Duration::from_millis(2000);
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(hard, hard).unwrap();
    assert!(hard >= 2 * IDLE_CONNECTIONS as u64 + 100, "open files hard limit {hard} (soft {soft}) is too low");
    let broker = Broker::start_with_config(2, Some(&format!("connections.max.idle.ms = {}\n", IDLE.as_millis())));
    // Every connection below is opened after this, so none may be closed before `IDLE` from it.
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
    // A close seen before `IDLE` from `opened` came early. A look that ends later proves
    // nothing (a slow machine may get here late), so it is not counted, and the looks stop.
    let mut looked_early = 0;
    for stream in idle.iter_mut().take(50) {
        let closed = closed_within(stream, Duration::from_millis(1));
        let seen_after = opened.elapsed();
        if seen_after >= IDLE {
            break;
        }
        assert!(!closed, "an idle connection was closed {seen_after:?} after opening, before connections.max.idle.ms");
        looked_early += 1;
    }
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
         all closed {all_closed_after:?} after opening (connections.max.idle.ms = {IDLE:?}), none of {looked_early} \
         looked at before then closed early, busy client served throughout"
    );
    assert_eq!(closed, IDLE_CONNECTIONS + 1);
    assert!(!broker.log().contains("panicked"));
}

/// Opens `n` connections the broker keeps, each proven by an answer. The broker's own start-up
/// probe connections (and connections closed before) close asynchronously, so until their
/// places are given back an attempt may be refused: retry.
fn open_admitted(broker: &Broker, n: usize) -> Vec<TcpStream> {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let mut streams: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(("127.0.0.1", broker.port)).unwrap()).collect();
        if streams.iter_mut().all(admitted) {
            return streams;
        }
        assert!(Instant::now() < deadline, "{n} connections were not admitted:\n{}", broker.log());
        drop(streams);
        std::thread::sleep(Duration::from_millis(20));
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

/// A broker started with `config` and a topic "big" whose partition 0 holds about 1 MB: a Fetch
/// from offset 0 is answered with all of it.
fn broker_with_a_big_partition(config: &str) -> Broker {
    let broker = Broker::start_with_config(2, Some(config));
    let mut client = broker.connect();
    assert_eq!(create_topic(&mut client, "big", 1, &[]).topics[0].error_code, 0);
    let value = "x".repeat(100_000);
    for _ in 0..10 {
        assert_eq!(produce(&mut client, "big", 0, batch(&[&value], 1_700_000_000_000)).0, 0);
    }
    broker
}

#[test]
fn a_client_that_never_reads_its_responses_cannot_grow_the_broker_and_others_are_served() {
    // Far more than socket buffers hold, so the broker must stop reading for the writes to block.
    const REQUESTS: usize = 1_000_000;
    // What the broker may hold for the client: the response buffer (and the answers of the few
    // requests read while it fills) and its own working set's noise. With this many requests
    // in flight and no response buffer limit, it would hold about 1 MB for each Fetch read:
    // the in-flight limit cannot be what keeps the growth under this bound.
    const GROWTH_MAX_KIB: u64 = 64 * 1024;
    let broker = broker_with_a_big_partition(
        "max.in.flight.requests.per.connection = 65536\nconnection.response.buffer.max.bytes = 4194304\n",
    );
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
    assert!(peak_kib < before_kib + GROWTH_MAX_KIB, "RSS grew from {before_kib} kB to {peak_kib} kB");
}

#[test]
fn a_client_that_pipelines_past_max_in_flight_and_never_reads_is_closed_when_idle() {
    const MAX_IN_FLIGHT: usize = 4;
    const IDLE: Duration = Duration::from_millis(1000);
    const CLOSE_BOUND: Duration = Duration::from_secs(20);
    // The response buffer holds far more than the answers of the requests in flight (about
    // 1 MB each), so what stops the broker reading is the full queue of requests in flight,
    // while its writer waits for socket buffers the client never empties.
    let broker = broker_with_a_big_partition(&format!(
        "max.in.flight.requests.per.connection = {MAX_IN_FLIGHT}\nconnection.response.buffer.max.bytes = {}\n\
         connections.max.idle.ms = {}\n",
        256 << 20,
        IDLE.as_millis()
    ));
    let fetch = size_prefixed(&request_frame(ApiKey::Fetch, FETCH_V, 1, &fetch_request("big", 0, 0, 0)));
    let started = Instant::now();
    let mut greedy = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    greedy.set_write_timeout(Some(Duration::from_millis(100))).unwrap();
    // Fetch requests back to back, never a response read, until a write fails: the broker
    // closed the connection (with requests unread, it resets it). A write that times out wrote
    // nothing, and a partial write is resumed where it stopped, so the stream stays framed.
    let mut written = 0usize;
    let closed_after = loop {
        let elapsed = started.elapsed();
        assert!(
            elapsed < CLOSE_BOUND,
            "a client with {} requests written and none of its responses read is still connected after {elapsed:?} \
             (connections.max.idle.ms = {}):\n{}",
            written / fetch.len(),
            IDLE.as_millis(),
            broker.log()
        );
        match greedy.write(&fetch[written % fetch.len()..]) {
            Ok(0) => break started.elapsed(),
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => break started.elapsed(),
        }
    };
    let requests = written / fetch.len();
    println!(
        "pipelined Fetch requests written (about 1 MB of answer each, none read): {requests}, \
         connection closed by the broker {closed_after:?} after opening \
         (max.in.flight.requests.per.connection = {MAX_IN_FLIGHT}, connections.max.idle.ms = {})",
        IDLE.as_millis()
    );
    assert!(requests > 10 * MAX_IN_FLIGHT, "only {requests} requests were written before the close");
    // Not refused for what it sent (that is logged, and would come at once): closed as idle,
    // which cannot be before the idle time from its opening.
    assert!(closed_after >= IDLE, "closed after {closed_after:?}, before connections.max.idle.ms");
    let log = broker.log();
    assert!(!log.contains("closing connection") && !log.contains("panicked"), "{log}");
    assert_served(&broker);
}
