//! The produce and fetch paths allocate per request, per batch and per disk read, never per
//! record: a batch of 500 records costs the heap no more allocations than a batch of one record
//! of the same size (counted per thread by the test build's allocator, `crate::alloc_count`).

#![allow(clippy::unwrap_used)] // inside executor closures, which clippy does not see as tests

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record};
use strand_config::{BrokerConfig, TopicConfig};
use uuid::Uuid;

use super::Partition;
use crate::alloc_count::allocations;
use crate::handlers::{decode_request, RequestBody};
use crate::log::{BrokerWrites, LogShared};
use crate::protocol::record_batch::tests::{encode_records, test_records};
use crate::protocol::record_batch::BATCH_HEADER_BYTES;
use crate::protocol::encode_response;

/// Batches per measurement, after one that warms the path up.
const BATCHES: usize = 20;

/// Each batch's size before compression, whatever its record count.
const BATCH_BYTES: usize = 64_000;

/// One batch of `count` records whose values fill it to `BATCH_BYTES` (within a byte per
/// record), with bytes that compress only somewhat.
fn batch(count: usize, compression: Compression) -> Bytes {
    let mut records = test_records(count, 0);
    let fill = |records: &mut [Record], value_bytes: usize| {
        for (i, record) in records.iter_mut().enumerate() {
            record.value = Some((0..value_bytes).map(|j| ((i * 7 + j * 31) % 251) as u8).collect());
        }
    };
    let mut value_bytes = (BATCH_BYTES - BATCH_HEADER_BYTES) / count;
    // The framing (lengths as varints) grows with the value size: settle in a few steps.
    for _ in 0..3 {
        fill(&mut records, value_bytes);
        let len = encode_records(&records, Compression::None).len();
        value_bytes = (value_bytes * count + BATCH_BYTES).saturating_sub(len) / count;
    }
    fill(&mut records, value_bytes);
    encode_records(&records, compression).freeze()
}

/// Heap allocations of `BATCHES` produce requests and `BATCHES` fetches of one batch each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counted {
    produce: u64,
    fetch: u64,
}

/// A Produce v9 request frame (header and body) carrying `records`.
fn produce_frame(records: Bytes) -> Bytes {
    let partition = PartitionProduceData::default().with_index(0).with_records(Some(records));
    let topic = TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("t"))).with_partition_data(vec![partition]);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let header = RequestHeader::default().with_request_api_key(ApiKey::Produce as i16).with_request_api_version(9).with_correlation_id(7);
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).unwrap();
    let mut body = BytesMut::new();
    request.encode(&mut body, 9).unwrap();
    buf.put_slice(&body);
    buf.freeze()
}

/// Decodes a produce frame and appends its records with acks=-1: the request's path on the
/// partition's shard, from the frame to the durable ack.
async fn produce(partition: &Partition, frame: Bytes) -> i64 {
    let request = decode_request(frame).unwrap();
    let RequestBody::Kind(kind) = request.body else { panic!("a produce request") };
    let kafka_protocol::messages::RequestKind::Produce(produce) = *kind else { panic!("a produce request") };
    let records = produce.topic_data[0].partition_data[0].records.clone().unwrap();
    partition.produce(records, -1).await.unwrap().base_offset
}

/// Reads the batch at `offset` and encodes it into a Fetch v12 response frame.
async fn fetch(partition: &Partition, offset: i64) -> usize {
    let read = partition.fetch(offset, 1, true).await.unwrap();
    let data = PartitionData::default()
        .with_partition_index(0)
        .with_high_watermark(read.offsets.high_watermark)
        .with_records(Some(read.records.clone()));
    let topic = FetchableTopicResponse::default().with_topic(TopicName(StrBytes::from_static_str("t"))).with_partitions(vec![data]);
    let response = FetchResponse::default().with_responses(vec![topic]);
    encode_response(ApiKey::Fetch, 12, 7, &response, std::slice::from_ref(&read.records)).unwrap().len()
}

fn count(records_per_batch: usize, compression: Compression, tail_cache_bytes: usize) -> Counted {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "log.dirs = {:?}\nshard.tail.cache.bytes = {tail_cache_bytes}\nshard.journal.bytes = 0\n",
        dir.path().display().to_string()
    );
    let broker = Arc::new(BrokerConfig::load(&config, Default::default()).unwrap());
    let frames: Vec<Bytes> =
        (0..=BATCHES).map(|_| produce_frame(batch(records_per_batch, compression))).collect();
    strand_shards::run_one(256 << 10, move || async move {
        strand_io::fs::probe_device(dir.path(), "alloc-probe").await.unwrap();
        let topic = TopicConfig::resolve(&broker, &BTreeMap::new()).unwrap();
        let shared = LogShared::new(&broker, BrokerWrites::new());
        let partition = Partition::open(&dir.path().join("t-0"), "t", 0, Uuid::nil(), topic, &broker, &shared).await.unwrap();
        let mut frames = frames.into_iter();
        let first = produce(&partition, frames.next().unwrap()).await;
        fetch(&partition, first).await;
        let before = allocations();
        let mut offsets = Vec::with_capacity(BATCHES);
        for frame in frames {
            offsets.push(produce(&partition, frame).await);
        }
        let produced = allocations() - before;
        let before = allocations();
        for &offset in &offsets {
            assert!(fetch(&partition, offset).await > 0);
        }
        let counted = Counted { produce: produced, fetch: allocations() - before };
        partition.log.close().await;
        counted
    })
}

#[test]
fn producing_and_fetching_allocate_per_batch_not_per_record() {
    // Served from the tail cache, read from the disk, and compressed (decompressed to validate).
    for (compression, tail_cache_bytes) in [(Compression::None, 64 << 20), (Compression::None, 0), (Compression::Lz4, 64 << 20)] {
        let one = count(1, compression, tail_cache_bytes);
        let many = count(500, compression, tail_cache_bytes);
        let case = format!("{compression:?}, tail cache {tail_cache_bytes} B: 1 record per batch {one:?}, 500 records {many:?}");
        // One allocation per record would add 499 per batch; the slack is one per batch.
        assert!(many.produce <= one.produce + BATCHES as u64, "produce allocates per record: {case}");
        assert!(many.fetch <= one.fetch + BATCHES as u64, "fetch allocates per record: {case}");
        assert!(one.produce < 50 * BATCHES as u64, "produce allocates {} times per batch: {case}", one.produce / BATCHES as u64);
    }
}
