//! The real broker over real sockets, with two shards so that requests cross between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::requests::{create_topic, fetch, fetch_request, list_offset, produce, produce_request, topic_name, FETCH_V, PRODUCE_V};
use common::{batch, records, Broker, Client};
use kafka_protocol::messages::*;

#[test]
fn produce_and_fetch_cross_shards_and_survive_a_restart() {
    let mut broker = Broker::start(2);
    let mut client = broker.connect();
    let created = create_topic(&mut client, "orders", 4, &[]);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    for partition in 0..4 {
        let first = format!("p{partition}-a");
        assert_eq!(produce(&mut client, "orders", partition, batch(&[&first, "x", "y"], 1000)), (0, 0));
        assert_eq!(produce(&mut client, "orders", partition, batch(&["z"], 2000)), (0, 3));
    }
    let check = |client: &mut Client| {
        for partition in 0..4 {
            let data = fetch(client, "orders", partition, 0, 0);
            assert_eq!(data.error_code, 0);
            assert_eq!(data.high_watermark, 4);
            let got = records(data.records.unwrap());
            let first = format!("p{partition}-a");
            let expected: Vec<(i64, String)> =
                vec![(0, first), (1, "x".into()), (2, "y".into()), (3, "z".into())];
            assert_eq!(got, expected);
        }
    };
    check(&mut client);
    broker.restart();
    check(&mut broker.connect());
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "pipe", 2, &[]);
    // A parked fetch first: later requests finish sooner, yet must be answered after it.
    let mut sent = vec![(client.send(ApiKey::Fetch, FETCH_V, &fetch_request("pipe", 0, 0, 300)), ApiKey::Fetch)];
    for i in 0..20 {
        let partition = i % 2;
        let request = produce_request("pipe", partition, batch(&["v"], 0), -1);
        sent.push((client.send(ApiKey::Produce, PRODUCE_V, &request), ApiKey::Produce));
        sent.push((client.send(ApiKey::Metadata, 12, &MetadataRequest::default()), ApiKey::Metadata));
    }
    for (correlation_id, api_key) in sent {
        let version = if api_key == ApiKey::Produce { PRODUCE_V } else if api_key == ApiKey::Fetch { FETCH_V } else { 12 };
        let (got, _) = client.receive(api_key, version);
        assert_eq!(got, correlation_id);
    }
    assert_eq!(fetch(&mut client, "pipe", 1, 0, 0).high_watermark, 10);
}

#[test]
fn a_parked_fetch_wakes_when_data_arrives() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "tail", 1, &[]);
    let port = broker.port;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut other = Client::connect(port);
        produce(&mut other, "tail", 0, batch(&["late"], 0))
    });
    let started = Instant::now();
    let data = fetch(&mut client, "tail", 0, 0, 20_000);
    assert_eq!(producer.join().unwrap(), (0, 0));
    assert_eq!(records(data.records.unwrap()), vec![(0, "late".to_owned())]);
    // The wait ended on the append, not on max_wait_ms.
    assert!(started.elapsed() < Duration::from_secs(15), "fetch waited {:?}", started.elapsed());
}

#[test]
fn bad_produces_get_kafka_error_codes_and_nothing_is_written() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "strict", 1, &[]);
    // Unknown topic and unknown partition: UNKNOWN_TOPIC_OR_PARTITION (3).
    assert_eq!(produce(&mut client, "no-such-topic", 0, batch(&["v"], 0)).0, 3);
    assert_eq!(produce(&mut client, "strict", 7, batch(&["v"], 0)).0, 3);
    // A flipped byte: CORRUPT_MESSAGE (2).
    let mut corrupt = BytesMut::from(&batch(&["v"], 0)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    assert_eq!(produce(&mut client, "strict", 0, corrupt.freeze()).0, 2);
    // A cut batch: Kafka's batch iterator finds no whole batch, and ProduceRequest.validateRecords
    // answers INVALID_RECORD (87).
    let whole = batch(&["v"], 0);
    assert_eq!(produce(&mut client, "strict", 0, whole.slice(..whole.len() - 3)).0, 87);
    // Over message.max.bytes (1 MiB default): MESSAGE_TOO_LARGE (10).
    let big = "b".repeat(1_100_000);
    assert_eq!(produce(&mut client, "strict", 0, batch(&[&big], 0)).0, 10);
    // Nothing was written, and the partition still takes good data at offset 0.
    assert_eq!(fetch(&mut client, "strict", 0, 0, 0).high_watermark, 0);
    assert_eq!(produce(&mut client, "strict", 0, batch(&["ok"], 0)), (0, 0));
}

#[test]
fn unsupported_api_versions_request_gets_the_v0_fallback() {
    let broker = Broker::start(1);
    let mut client = broker.connect();
    // ApiVersions v9: answered at v0 with UNSUPPORTED_VERSION (35) and the supported list.
    let sent = client.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let _ = client.receive(ApiKey::ApiVersions, 3);
    let mut header = BytesMut::new();
    use bytes::BufMut;
    header.put_i16(ApiKey::ApiVersions as i16);
    header.put_i16(9);
    header.put_i32(sent + 1);
    header.put_i16(-1); // null client id
    header.put_u8(0); // no tagged fields: versions past 3 would use request header v2
    client.send_raw(&header);
    let (correlation_id, mut body) = client.receive(ApiKey::ApiVersions, 0);
    assert_eq!(correlation_id, sent + 1);
    let response = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35);
    assert!(response.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));
    // Another API at a version not served closes the connection.
    client.send(ApiKey::Metadata, 13, &MetadataRequest::default());
    assert!(client.is_closed());
    // The broker is still up for others.
    let mut other = broker.connect();
    let response: MetadataResponse = other.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(response.brokers.len(), 1);
}

#[test]
fn list_offsets_by_time_finds_the_first_record_at_or_after() {
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "times", 1, &[]);
    produce(&mut client, "times", 0, batch(&["a", "b", "c"], 1000)); // 1000, 1001, 1002
    produce(&mut client, "times", 0, batch(&["d", "e"], 5000)); // 5000, 5001
    let list = |client: &mut Client, timestamp: i64| list_offset(client, "times", 0, timestamp);
    assert_eq!(list(&mut client, -2), (0, 0, -1));
    assert_eq!(list(&mut client, -1), (0, 5, -1));
    assert_eq!(list(&mut client, 1001), (0, 1, 1001));
    assert_eq!(list(&mut client, 2000), (0, 3, 5000));
    assert_eq!(list(&mut client, 9000), (0, -1, -1));
}

#[test]
fn a_retried_idempotent_batch_is_written_once_and_answered_with_its_offset() {
    let mut broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "idem", 1, &[]);
    let init = |client: &mut Client| {
        let response: InitProducerIdResponse =
            client.call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000));
        assert_eq!(response.error_code, 0);
        (response.producer_id.0, response.producer_epoch)
    };
    let (producer_id, epoch) = init(&mut client);
    let batch = common::producer_batch(&["a", "b"], producer_id, epoch, 0);
    assert_eq!(produce(&mut client, "idem", 0, batch.clone()), (0, 0));
    assert_eq!(produce(&mut client, "idem", 0, batch.clone()), (0, 0), "the retry gets the original offset");
    assert_eq!(fetch(&mut client, "idem", 0, 0, 0).high_watermark, 2, "and is not written again");
    // A gap: OUT_OF_ORDER_SEQUENCE_NUMBER (45); an older epoch: INVALID_PRODUCER_EPOCH (47).
    assert_eq!(produce(&mut client, "idem", 0, common::producer_batch(&["c"], producer_id, epoch, 5)).0, 45);
    assert_eq!(produce(&mut client, "idem", 0, common::producer_batch(&["c"], producer_id, epoch - 1, 2)).0, 47);
    assert_eq!(produce(&mut client, "idem", 0, common::producer_batch(&["c"], producer_id, epoch, 2)), (0, 2));
    // After a crash the broker still knows the producer's last batches.
    drop(client);
    broker.kill_and_start();
    let mut client = broker.connect();
    let retried = common::producer_batch(&["c"], producer_id, epoch, 2);
    assert_eq!(produce(&mut client, "idem", 0, retried), (0, 2));
    assert_eq!(fetch(&mut client, "idem", 0, 0, 0).high_watermark, 3);
    let (next_id, _) = init(&mut client);
    assert!(next_id > producer_id, "producer ids are never handed out twice");
    // DescribeProducers shows the producer with its last sequence.
    let request = DescribeProducersRequest::default().with_topics(vec![describe_producers_request::TopicRequest::default()
        .with_name(topic_name("idem"))
        .with_partition_indexes(vec![0])]);
    let response: DescribeProducersResponse = client.call(ApiKey::DescribeProducers, 0, &request);
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let producers: Vec<(i64, i32)> = partition.active_producers.iter().map(|p| (p.producer_id.0, p.last_sequence)).collect();
    assert_eq!(producers, vec![(producer_id, 2)]);
}

#[test]
fn a_fetch_over_several_partitions_fills_max_bytes_in_partition_order() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    // Two shards: the partitions' owners read their own, and the answers are cut to the budget.
    let mut broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "budget", 3, &[]);
    let value = "v".repeat(1000);
    let one_batch = batch(&[&value], 0);
    for partition in 0..3 {
        for i in 0..10 {
            assert_eq!(produce(&mut client, "budget", partition, one_batch.clone()), (0, i));
        }
    }
    let batch_len = one_batch.len();
    // (records per partition, bytes per partition) of a fetch of all three from offset 0.
    let fetch_all = |client: &mut Client, partition_max: usize, max_bytes: usize| {
        let partitions = (0..3)
            .map(|p| {
                let limit = i32::try_from(partition_max).unwrap();
                FetchPartition::default().with_partition(p).with_fetch_offset(0).with_partition_max_bytes(limit)
            })
            .collect();
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(i32::try_from(max_bytes).unwrap())
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default().with_topic(topic_name("budget")).with_partitions(partitions)]);
        let response: FetchResponse = client.call(ApiKey::Fetch, FETCH_V, &request);
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!((p.error_code, p.high_watermark), (0, 10), "every partition is answered with its offsets");
                let set = p.records.clone().unwrap();
                (records(set.clone()).len(), set.len())
            })
            .collect::<Vec<_>>()
    };
    let counts = |got: Vec<(usize, usize)>| {
        assert!(got.iter().all(|(n, bytes)| *bytes == n * batch_len), "whole batches only: {got:?}");
        got.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    };
    let check = |client: &mut Client| {
        // Room for 15 and a half batches: the first partition's 10, then 5 of the second's,
        // none of the third's; as Kafka fills a fetch partition by partition.
        assert_eq!(counts(fetch_all(client, 1 << 20, 15 * batch_len + batch_len / 2)), vec![10, 5, 0]);
        // Each partition's own limit counts too: 5 batches each, then 2 in what is left.
        assert_eq!(counts(fetch_all(client, 5 * batch_len, 12 * batch_len)), vec![5, 5, 2]);
        // A max_bytes below one batch still gets the first batch (KIP-74), and only it.
        assert_eq!(counts(fetch_all(client, 1 << 20, 100)), vec![1, 0, 0]);
        // So does a partition limit below one batch, for the first partition only.
        assert_eq!(counts(fetch_all(client, 100, 1 << 20)), vec![1, 0, 0]);
    };
    check(&mut client);
    // Again from the segment files instead of the tail cache.
    broker.restart();
    check(&mut broker.connect());
}

#[test]
fn a_second_broker_on_a_served_port_exits_and_the_first_serves_on() {
    let broker = Broker::start(2);
    // The same address, and one that overlaps it.
    for host in ["127.0.0.1", "0.0.0.0"] {
        let other_dir = tempfile::tempdir().unwrap();
        let second = std::process::Command::new(env!("CARGO_BIN_EXE_strand"))
            .args(["serve", "--listen", &format!("{host}:{}", broker.port), "--shards", "1", "--data-dir"])
            .arg(other_dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&second.stderr);
        assert!(!second.status.success(), "a second broker started on {host}:{}:\n{said}", broker.port);
        assert!(said.contains("listener") && said.contains("in use"), "{said}");
    }
    // Every connection still reaches the first broker, and it answers.
    for _ in 0..20 {
        let response: MetadataResponse = broker.connect().call(ApiKey::Metadata, 12, &MetadataRequest::default());
        assert_eq!(response.brokers[0].port, i32::from(broker.port));
    }
}

#[test]
fn one_produce_over_partitions_of_both_shards_answers_each_in_request_order() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let broker = Broker::start(2);
    let mut client = broker.connect();
    create_topic(&mut client, "spread", 4, &[]);
    let partition = |index: i32, value: &str| {
        PartitionProduceData::default().with_index(index).with_records(Some(batch(&[value, value], 0)))
    };
    // Partitions of both shards, interleaved, with an unknown partition and an internal topic
    // in between.
    let topics = vec![
        TopicProduceData::default().with_name(topic_name("spread")).with_partition_data(vec![
            partition(3, "a"),
            partition(0, "b"),
            partition(9, "c"),
            partition(1, "d"),
        ]),
        TopicProduceData::default().with_name(topic_name("__consumer_offsets")).with_partition_data(vec![partition(0, "f")]),
        TopicProduceData::default().with_name(topic_name("spread")).with_partition_data(vec![partition(2, "g")]),
    ];
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(topics);
    let response: ProduceResponse = client.call(ApiKey::Produce, PRODUCE_V, &request);
    let answers: Vec<(String, i32, i16, i64)> = response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(move |p| (t.name.to_string(), p.index, p.error_code, p.base_offset)))
        .collect();
    let spread = |index, code, offset| ("spread".to_owned(), index, code, offset);
    assert_eq!(
        answers,
        vec![
            spread(3, 0, 0),
            spread(0, 0, 0),
            spread(9, 3, -1), // UNKNOWN_TOPIC_OR_PARTITION
            spread(1, 0, 0),
            ("__consumer_offsets".to_owned(), 0, 17, -1), // INVALID_TOPIC_EXCEPTION
            spread(2, 0, 0),
        ]
    );
    for (index, value) in [(3, "a"), (0, "b"), (1, "d"), (2, "g")] {
        let data = fetch(&mut client, "spread", index, 0, 0);
        assert_eq!(records(data.records.unwrap()), vec![(0, value.to_owned()), (1, value.to_owned())], "partition {index}");
    }
}
