//! Test support: the real `strand` binary on a free port, and a minimal blocking Kafka client
//! built on the kafka-protocol crate's codecs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod hostile;
pub mod requests;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use strand::protocol::record_batch::{encode_batch, BatchProducer};

/// A broker process on a free port with its own data directory.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    pub data_dir: tempfile::TempDir,
    shards: u16,
    log_path: PathBuf,
    config_path: Option<PathBuf>,
}

impl Broker {
    pub fn start(shards: u16) -> Self {
        Self::start_with_config(shards, None)
    }

    /// Starts with `config` (TOML, Kafka key names) as the config file, if given.
    pub fn start_with_config(shards: u16, config: Option<&str>) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let log_path = data_dir.path().join("broker.log");
        let config_path = config.map(|text| {
            let path = data_dir.path().join("strand.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        // Port 0: the broker picks a free port and claims it in one step. A port picked here and
        // released could be picked again by another test, or taken by a client's connection,
        // before the broker binds it.
        let mut broker = Self { child: None, port: 0, data_dir, shards, log_path, config_path };
        broker.spawn();
        broker
    }

    /// Starts the process on `self.port` (0 the first time: the broker picks it) and waits until
    /// it says it serves, then learns the port from that line.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).unwrap();
        let earlier = self.log().len();
        let child = Command::new(env!("CARGO_BIN_EXE_strand"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .args(["--shards", &self.shards.to_string()])
            .args(self.config_path.iter().flat_map(|path| [std::ffi::OsStr::new("--config"), path.as_os_str()]))
            .env("RUST_LOG", with_serving_line(std::env::var("RUST_LOG").ok()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = serving_port(&self.log()[earlier..]) {
                self.port = port;
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("broker exited with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "broker did not start serving:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().unwrap().is_none())
    }

    /// A line of the process's /proc status, in kB: "VmHWM" (peak RSS) or "VmRSS".
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn log(&self) -> String {
        match std::fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("reading the broker log {}: {e}", self.log_path.display()),
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "broker exited with {status}:\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "broker did not stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, then start again on the same port and data.
    pub fn kill_and_start(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        // The kernel tears a killed process's io_uring down asynchronously, and its listening
        // sockets with it: wait until nothing answers on the port before starting again.
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "the killed broker's port still accepts");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.port)
    }
}

/// A RUST_LOG for the broker that keeps whatever the caller asked for and the "strand is
/// serving" line the harness waits for.
fn with_serving_line(rust_log: Option<String>) -> String {
    match rust_log {
        Some(filter) if !filter.is_empty() => format!("{filter},strand::broker=info"),
        _ => "info".to_owned(),
    }
}

/// The port of the broker's "strand is serving listen=HOST:PORT" line in `log`, once the whole
/// line is there.
fn serving_port(log: &str) -> Option<u16> {
    let line = log.split_inclusive('\n').find(|line| line.contains("strand is serving") && line.ends_with('\n'))?;
    let listen = line.split_whitespace().find_map(|field| field.strip_prefix("listen="))?;
    listen.rsplit(':').next()?.parse().ok()
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            // A failing test shows what the broker said, and whether it had died.
            if std::thread::panicking() {
                let state = exited.map_or_else(|| "still running".to_owned(), |status| format!("exited with {status}"));
                eprintln!("broker on port {} ({state}) logged:\n{}", self.port, self.log());
            }
        }
    }
}

/// A blocking Kafka connection.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Self { stream, next_correlation_id: 1 }
    }

    /// Sends a request without reading the response; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, api_key: ApiKey, version: i16, request: &R) -> i32 {
        self.try_send(api_key, version, request).unwrap()
    }

    /// As [`Client::send`], with a failed write returned (a broker that stopped reading).
    pub fn try_send<R: Encodable>(&mut self, api_key: ApiKey, version: i16, request: &R) -> std::io::Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        self.try_send_raw(&request_frame(api_key, version, correlation_id, request))?;
        Ok(correlation_id)
    }

    pub fn set_write_timeout(&mut self, timeout: Duration) {
        self.stream.set_write_timeout(Some(timeout)).unwrap();
    }

    /// Sends `body` with a size prefix.
    pub fn send_raw(&mut self, body: &[u8]) {
        self.try_send_raw(body).unwrap();
    }

    fn try_send_raw(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(i32::try_from(body.len()).unwrap());
        frame.put_slice(body);
        self.stream.write_all(&frame)
    }

    /// Reads one response frame: (correlation id, body after the header).
    pub fn receive(&mut self, api_key: ApiKey, version: i16) -> (i32, Bytes) {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap();
        let mut frame = vec![0u8; usize::try_from(i32::from_be_bytes(size)).unwrap()];
        self.stream.read_exact(&mut frame).unwrap();
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version)).unwrap();
        (header.correlation_id, frame)
    }

    /// True if the broker closed the connection (reads EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }

    pub fn call<Req: Encodable, Resp: Decodable>(&mut self, api_key: ApiKey, version: i16, request: &Req) -> Resp {
        let sent = self.send(api_key, version, request);
        let (correlation_id, mut body) = self.receive(api_key, version);
        assert_eq!(correlation_id, sent);
        Resp::decode(&mut body, version).unwrap()
    }
}

/// A request frame body (header and request, no size prefix).
pub fn request_frame<R: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, request: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("strand-tests")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    request.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// A record batch of `values`, keys "k<i>", timestamps from `timestamp`.
pub fn batch(values: &[&str], timestamp: i64) -> Bytes {
    compressed_batch(values, timestamp, Compression::None)
}

/// [`batch`] compressed with `compression`.
pub fn compressed_batch(values: &[&str], timestamp: i64, compression: Compression) -> Bytes {
    let records = (0_i64..).zip(values).map(|(i, value)| {
        (Some(Bytes::from(format!("k{i}"))), Some(Bytes::copy_from_slice(value.as_bytes())), timestamp + i)
    });
    encode_batch(records, BatchProducer::NONE, compression).unwrap().freeze()
}

/// Every record in a fetched record set: (offset, value).
pub fn records(mut set: Bytes) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while set.has_remaining() {
        let decoded = RecordBatchDecoder::decode(&mut set).unwrap();
        for record in decoded.records {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            out.push((record.offset, value));
        }
    }
    out
}

/// A batch of `values` from idempotent producer `producer_id` at `epoch`, first sequence
/// `base_sequence`.
pub fn producer_batch(values: &[&str], producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    let records = values.iter().map(|value| (None, Some(Bytes::copy_from_slice(value.as_bytes())), 0));
    let producer = BatchProducer { id: producer_id, epoch, base_sequence };
    encode_batch(records, producer, Compression::None).unwrap().freeze()
}
