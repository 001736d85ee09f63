//! A minimal blocking Kafka protocol connection (codecs from the kafka-protocol crate) for
//! what librdkafka does not expose: the broker's ApiVersions answer and the Metadata
//! controller id, and the bench's protocol clients (src/cli/bench/raw_drain.rs and
//! raw_produce/). Everything else in the CLI goes through librdkafka.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context as _;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Decodable, Encodable, StrBytes};

/// Largest response frame accepted.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

/// One connection to one broker.
pub struct RawConnection {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl RawConnection {
    pub fn connect(broker: &str, timeout: Duration) -> anyhow::Result<Self> {
        let addr = broker.to_socket_addrs()?.next().with_context(|| format!("{broker}: no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("no broker at {broker}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self { stream, next_correlation_id: 1 })
    }

    pub(crate) fn call<Req: Encodable, Resp: Decodable>(&mut self, api_key: ApiKey, version: i16, request: &Req) -> anyhow::Result<Resp> {
        let correlation_id = self.send(api_key, version, request)?;
        self.receive(api_key, version, correlation_id)
    }

    /// Writes one request and returns its correlation id, without waiting for the answer:
    /// requests may be pipelined, their answers read in order with [`Self::receive`].
    pub(crate) fn send<Req: Encodable>(&mut self, api_key: ApiKey, version: i16, request: &Req) -> anyhow::Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strand-cli")));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        encode_request_header_into_buffer(&mut frame, &header)?;
        request.encode(&mut frame, version)?;
        let size = i32::try_from(frame.len() - 4)?;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&frame).with_context(|| format!("sending {api_key:?}"))?;
        Ok(correlation_id)
    }

    /// Reads the next answer, which must be the one to `correlation_id`.
    pub(crate) fn receive<Resp: Decodable>(&mut self, api_key: ApiKey, version: i16, correlation_id: i32) -> anyhow::Result<Resp> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).with_context(|| format!("{api_key:?}: the broker closed the connection"))?;
        let size = usize::try_from(i32::from_be_bytes(size)).context("negative frame size")?;
        anyhow::ensure!(size <= RESPONSE_BYTES_MAX, "{api_key:?} response of {size} bytes is too large");
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame)?;
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, api_key.response_header_version(version))?;
        anyhow::ensure!(header.correlation_id == correlation_id, "{api_key:?}: correlation id mismatch");
        Resp::decode(&mut frame, version)
    }

    /// How long a read or a write may wait (the connection's timeout until then); the socket's,
    /// so every handle on it.
    pub(crate) fn set_timeouts(&self, timeout: Duration) -> std::io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))
    }

    /// Closes the socket both ways: a thread blocked reading it wakes with an error.
    pub(crate) fn shutdown(&self) -> std::io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Both)
    }

    /// A second handle on the same socket, to read answers on one thread while another sends.
    pub(crate) fn try_clone(&self) -> anyhow::Result<Self> {
        Ok(Self { stream: self.stream.try_clone()?, next_correlation_id: self.next_correlation_id })
    }

    /// ApiVersions v3 (v0 when the broker only answers that): (api key, min, max) per API.
    pub fn api_versions(&mut self) -> anyhow::Result<Vec<(i16, i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strand-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = self.call(ApiKey::ApiVersions, 3, &request)?;
        let response = if response.error_code == 35 {
            self.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?
        } else {
            response
        };
        anyhow::ensure!(response.error_code == 0, "ApiVersions: error code {}", response.error_code);
        Ok(response.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect())
    }

    /// Metadata without topics at `version` (1..=12): brokers, cluster id, controller.
    pub fn cluster_metadata(&mut self, version: i16) -> anyhow::Result<MetadataResponse> {
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        self.call(ApiKey::Metadata, version, &request)
    }
}
