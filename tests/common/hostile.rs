//! Hostile input for the broker's front door: well-formed requests to start from, mutations of
//! them (bit flips, truncations, splices, planted lengths), and whole hostile frames as a
//! broken or malicious client sends them. The property tests feed these to the decoder; the
//! socket test sends them to the real binary.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{encode_request_header_into_buffer, StrBytes};
use proptest::prelude::*;
use proptest::sample::Index;

pub use super::request_frame;
use super::requests::{size_prefixed, topic_name};

/// The topic hostile requests name; the well-behaved client uses another.
pub const HOSTILE_TOPIC: &str = "hostile";

/// Well-formed Produce, Fetch, JoinGroup and Metadata frames, at old and new versions.
pub fn valid_requests() -> Vec<(ApiKey, Vec<u8>)> {
    let records = super::batch(&["a", "bb", "ccc"], 1_700_000_000_000);
    let produce = ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![
        TopicProduceData::default().with_name(topic_name(HOSTILE_TOPIC)).with_partition_data(vec![
            PartitionProduceData::default().with_index(0).with_records(Some(records)),
        ]),
    ]);
    let fetch_topic = |version: i16| {
        let named = FetchTopic::default().with_topic(topic_name(HOSTILE_TOPIC));
        let named = if version >= 13 { named.with_topic_id(uuid::Uuid::nil()) } else { named };
        named.with_partitions(vec![FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 16)])
    };
    let fetch = |version: i16| {
        FetchRequest::default().with_replica_id(BrokerId(-1)).with_max_wait_ms(0).with_min_bytes(0).with_max_bytes(1 << 20).with_topics(vec![fetch_topic(version)])
    };
    // JoinGroup v0 has no rebalance timeout: it is the session timeout there.
    let join = |version: i16| JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("hostile-group")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(Bytes::from_static(b"\0\0\0\0\0\x01\0\x07hostile\0\0\0\0"))]);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic_name(HOSTILE_TOPIC)))]));
    vec![
        (ApiKey::Produce, request_frame(ApiKey::Produce, 3, 1, &produce)),
        (ApiKey::Produce, request_frame(ApiKey::Produce, 9, 2, &produce)),
        (ApiKey::Fetch, request_frame(ApiKey::Fetch, 4, 3, &fetch(4))),
        (ApiKey::Fetch, request_frame(ApiKey::Fetch, 12, 4, &fetch(12))),
        (ApiKey::JoinGroup, request_frame(ApiKey::JoinGroup, 0, 5, &join(0))),
        (ApiKey::JoinGroup, request_frame(ApiKey::JoinGroup, 9, 6, &join(9))),
        (ApiKey::Metadata, request_frame(ApiKey::Metadata, 0, 7, &metadata)),
        (ApiKey::Metadata, request_frame(ApiKey::Metadata, 12, 8, &metadata)),
    ]
}

/// One change to a frame.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(Index, u8),
    Truncate(Index),
    Splice(Index, Vec<u8>),
    Overwrite(Index, Vec<u8>),
    /// A 4-byte big-endian or varint-encoded count, where array and string lengths live.
    PlantLength(Index, i32, bool),
}

impl Mutation {
    pub fn apply(&self, frame: &mut Vec<u8>) {
        if frame.is_empty() {
            return;
        }
        let len = frame.len();
        match self {
            Self::FlipBit(at, bit) => frame[at.index(len)] ^= 1 << (bit % 8),
            Self::Truncate(at) => frame.truncate(at.index(frame.len())),
            Self::Splice(at, bytes) => {
                let at = at.index(frame.len());
                frame.splice(at..at, bytes.iter().copied());
            }
            Self::Overwrite(at, bytes) => overwrite(frame, at.index(len), bytes),
            Self::PlantLength(at, n, varint) => {
                let bytes = if *varint { unsigned_varint(*n as u32) } else { n.to_be_bytes().to_vec() };
                overwrite(frame, at.index(len), &bytes);
            }
        }
    }
}

/// Writes `bytes` over `frame` from `at`, clipped at the frame's end.
fn overwrite(frame: &mut [u8], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(frame.len());
    frame[at..end].copy_from_slice(&bytes[..end - at]);
}

fn unsigned_varint(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let length = prop_oneof![Just(i32::MAX), Just(-2), Just(0x033c_0c00), 0..i32::MAX, any::<i32>()];
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Splice(at, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Overwrite(at, b)),
        2 => (any::<Index>(), length, any::<bool>()).prop_map(|(at, n, v)| Mutation::PlantLength(at, n, v)),
    ]
}

/// A valid request with one to four mutations.
pub fn mutated_request() -> impl Strategy<Value = Vec<u8>> {
    let valid = valid_requests();
    (0..valid.len(), proptest::collection::vec(mutation(), 1..5)).prop_map(move |(which, mutations)| {
        let mut frame = valid[which].1.clone();
        for m in &mutations {
            m.apply(&mut frame);
        }
        frame
    })
}

/// A frame body with a well-formed header for `api_key` at a served version and a random body.
pub fn garbage_body() -> impl Strategy<Value = Vec<u8>> {
    let keys = [ApiKey::Produce, ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::Metadata, ApiKey::SyncGroup, ApiKey::OffsetCommit];
    (proptest::sample::select(keys.to_vec()), 0i16..10, proptest::collection::vec(any::<u8>(), 0..256)).prop_map(
        |(key, version, body)| {
            let header = RequestHeader::default().with_request_api_key(key as i16).with_request_api_version(version);
            let mut frame = BytesMut::new();
            encode_request_header_into_buffer(&mut frame, &header).unwrap();
            frame.extend_from_slice(&body);
            frame.to_vec()
        },
    )
}

/// `frame` claiming `version` instead (the header's layout is the same at every version given).
pub fn with_version(mut frame: Vec<u8>, version: i16) -> Vec<u8> {
    frame[2..4].copy_from_slice(&version.to_be_bytes());
    frame
}

/// What the broker must do with a hostile frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Close the connection (after answering what came before).
    Close,
    /// Answer ApiVersions with UNSUPPORTED_VERSION.
    UnsupportedVersionAnswer,
    /// Either: an answer (error codes or not), or a close.
    AnswerOrClose,
}

/// A frame as a hostile client writes it on the wire, size prefix included. A frame marked
/// `last` leaves the stream unframed (a truncated frame), so nothing may follow it.
#[derive(Debug, Clone)]
pub struct HostileFrame {
    pub kind: &'static str,
    pub wire: Vec<u8>,
    pub expect: Expect,
    pub last: bool,
}

/// `body` with its size prefix, as a whole frame.
pub fn framed(kind: &'static str, body: &[u8], expect: Expect) -> HostileFrame {
    HostileFrame { kind, wire: size_prefixed(body), expect, last: false }
}

fn prefix_only(kind: &'static str, size: i32) -> HostileFrame {
    HostileFrame { kind, wire: size.to_be_bytes().to_vec(), expect: Expect::Close, last: true }
}

/// Every kind of hostile frame; `request_max_bytes` is the broker's socket.request.max.bytes.
pub fn hostile_frame(request_max_bytes: i32) -> impl Strategy<Value = HostileFrame> {
    let valid = valid_requests();
    let truncated = (0..valid.len(), any::<Index>()).prop_map(move |(which, cut)| {
        let body = &valid[which].1;
        let mut frame = framed("truncated", body, Expect::Close);
        frame.wire.truncate(4 + cut.index(body.len()));
        frame.last = true;
        frame
    });
    // Produce v9, Fetch v12 and Metadata v12 have the flexible header, as every later version.
    let flexible: Vec<Vec<u8>> = [1, 3, 7].iter().map(|&i| valid_requests()[i].1.clone()).collect();
    let unsupported = (proptest::sample::select(flexible), 14i16..i16::MAX)
        .prop_map(|(frame, version)| framed("unsupported version", &with_version(frame, version), Expect::Close));
    let api_versions = request_frame(ApiKey::ApiVersions, 3, 12, &ApiVersionsRequest::default());
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(|wire| HostileFrame { kind: "random bytes", wire, expect: Expect::Close, last: true }),
        1 => ((request_max_bytes + 1)..=i32::MAX).prop_map(|size| prefix_only("oversized prefix", size)),
        1 => (i32::MIN..8).prop_map(|size| prefix_only("negative or tiny prefix", size)),
        1 => truncated,
        1 => unsupported,
        1 => (4i16..i16::MAX).prop_map(move |v| {
            framed("api versions unsupported", &with_version(api_versions.clone(), v), Expect::UnsupportedVersionAnswer)
        }),
        1 => prop_oneof![i16::MIN..0, 1000i16..i16::MAX].prop_map(|key| {
            let mut body = request_frame(ApiKey::Metadata, 0, 13, &MetadataRequest::default());
            body[..2].copy_from_slice(&key.to_be_bytes());
            framed("unknown api key", &body, Expect::Close)
        }),
        2 => garbage_body().prop_map(|body| framed("garbage body", &body, Expect::AnswerOrClose)),
        6 => mutated_request().prop_map(|body| framed("mutated request", &body, Expect::AnswerOrClose)),
    ]
}
