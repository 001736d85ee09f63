//! Group offsets against librdkafka's mock cluster, a Kafka protocol implementation with group
//! coordination, OffsetFetch and OffsetCommit (but no ListGroups, DescribeGroups or
//! DeleteGroups, which the commands then do without or refuse by name).

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::*;
use crate::cli::group_offsets::committed;

fn args(bootstrap: &str) -> BrokerArgs {
    BrokerArgs { brokers: bootstrap.to_owned(), client_property: vec![], timeout: Duration::from_secs(10) }
}

fn committed_offsets(b: &BrokerArgs, group: &str, keys: &[TopicPartitionKey]) -> Vec<Option<i64>> {
    let consumer = b.consumer(Some(group)).unwrap();
    let found = committed(&consumer, keys, b.timeout).unwrap();
    keys.iter().map(|k| found[k]).collect()
}

#[test]
fn offsets_are_described_and_reset_against_a_kafka_protocol_mock() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 2, 1).unwrap();
    let b = args(&mock.bootstrap_servers());
    let producer: BaseProducer = b.client_config().unwrap().create().unwrap();
    for i in 0..10 {
        producer.send(BaseRecord::<str, str>::to("orders").payload("v").partition(i % 2)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let consumer = b.consumer(Some("billing")).unwrap();
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset("orders", 0, Offset::Offset(3)).unwrap();
    commit.add_partition_offset("orders", 1, Offset::Offset(5)).unwrap();
    consumer.commit(&commit, CommitMode::Sync).unwrap();
    let keys = vec![("orders".to_owned(), 0), ("orders".to_owned(), 1)];
    let before = offsets(&consumer, &keys, b.timeout).unwrap();
    assert_eq!(before[&keys[0]].lag(), Some(2));
    assert_eq!(before[&keys[1]].lag(), Some(0));

    describe(&b, "billing").unwrap();
    reset_offsets(&b, "billing", "orders", ResetTo::Earliest, false).unwrap();
    assert_eq!(committed_offsets(&b, "billing", &keys), vec![Some(3), Some(5)], "a dry run commits nothing");
    reset_offsets(&b, "billing", "orders", ResetTo::Earliest, true).unwrap();
    assert_eq!(committed_offsets(&b, "billing", &keys), vec![Some(0), Some(0)]);
    reset_offsets(&b, "billing", "orders", ResetTo::Offset(99), true).unwrap();
    assert_eq!(committed_offsets(&b, "billing", &keys), vec![Some(5), Some(5)], "clamped to the log end");

    let err = delete(&b, "billing").unwrap_err().to_string();
    assert!(err.contains("UNSUPPORTED_VERSION (the broker does not serve DeleteGroups)"), "{err}");
}

#[test]
fn a_group_consumer_commits_what_it_printed_against_a_kafka_protocol_mock() {
    use crate::cli::consume::{self, ConsumeArgs};
    use crate::cli::offset_spec::StartFrom;

    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("events", 1, 1).unwrap();
    let b = args(&mock.bootstrap_servers());
    let producer: BaseProducer = b.client_config().unwrap().create().unwrap();
    for _ in 0..20 {
        producer.send(BaseRecord::<str, str>::to("events").payload("e").partition(0)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let consume = ConsumeArgs {
        brokers: b.clone(),
        topic: "events".to_owned(),
        from: StartFrom::Beginning,
        group: Some("readers".to_owned()),
        partition: vec![],
        count: Some(10),
        exit_at_end: false,
        format: Some("%o\\n".parse().unwrap()),
        json: false,
    };
    consume::run(&consume).unwrap();
    assert_eq!(committed_offsets(&b, "readers", &[("events".to_owned(), 0)]), vec![Some(10)]);
}
