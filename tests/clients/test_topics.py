"""Topic lifecycle: auto-creation, CreateTopics errors, DeleteTopics, unknown partitions."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import (
    ADMIN_TIMEOUT_S,
    ERR_NONE,
    ERR_UNKNOWN_TOPIC_OR_PARTITION,
    RawKafka,
    admin_client,
    consume_topic,
    consumer_conf,
    create_topic,
    metadata_node_id,
    produce_and_wait,
    producer_conf,
    record_batch,
    unique_topic,
    wait_for_topic,
    wait_until,
)


def _create_error(bootstrap: str, new_topic: NewTopic) -> KafkaError:
    # keep the AdminClient referenced until the future resolves: a collected
    # client fails its pending futures with _DESTROY
    admin = admin_client(bootstrap)
    futs = admin.create_topics([new_topic], request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as ei:
        futs[new_topic.topic].result(timeout=ADMIN_TIMEOUT_S + 5)
    return ei.value.args[0]


def test_auto_create_on_metadata_request(broker):
    topic = unique_topic("auto-md")
    p = Producer(producer_conf(broker.bootstrap))
    # a producer's Metadata request for one topic has allow_auto_topic_creation=true
    p.list_topics(topic=topic, timeout=10)
    md = wait_for_topic(broker.bootstrap, topic, 1, timeout=20)
    node = metadata_node_id(md)
    t = md.topics[topic]
    assert list(t.partitions) == [0], "auto-created topic must have num.partitions=1"
    assert t.partitions[0].leader == node


def test_auto_create_on_produce(broker):
    topic = unique_topic("auto-prod")
    p = Producer(producer_conf(broker.bootstrap))
    reports = produce_and_wait(p, [dict(topic=topic, key=b"k", value=f"v{i}".encode()) for i in range(5)],
                               timeout=60)
    assert [r[0] for r in reports] == [None] * 5
    assert [(r[1], r[2]) for r in reports] == [(0, i) for i in range(5)]
    md = wait_for_topic(broker.bootstrap, topic, 1)
    assert list(md.topics[topic].partitions) == [0]
    records, errors, _eof = consume_topic(broker.bootstrap, topic, 1, 5, timeout=30)
    assert not errors, errors[:5]
    assert [r.value for r in records] == [f"v{i}".encode() for i in range(5)]


def test_listing_all_topics_does_not_create_any(broker):
    a = admin_client(broker.bootstrap)
    before = set(a.list_topics(timeout=10).topics)
    probe = unique_topic("never")
    # a consumer's Metadata request does not ask for auto-creation
    c = Consumer(consumer_conf(broker.bootstrap, **{"allow.auto.create.topics": False}))
    try:
        c.list_topics(topic=probe, timeout=10)
    finally:
        c.close()
    after = set(a.list_topics(timeout=10).topics)
    assert probe not in after
    assert before <= after


def test_delete_topic(broker):
    topic = unique_topic("del")
    create_topic(broker.bootstrap, topic, 2)
    a = admin_client(broker.bootstrap)
    assert topic in a.list_topics(timeout=10).topics
    futs = a.delete_topics([topic], request_timeout=ADMIN_TIMEOUT_S)
    assert futs[topic].result(timeout=ADMIN_TIMEOUT_S + 5) is None
    wait_until(lambda: topic not in admin_client(broker.bootstrap).list_topics(timeout=10).topics,
               timeout=15, what=f"{topic} to disappear from Metadata")
    # deleted topics can be created again, fresh
    create_topic(broker.bootstrap, topic, 1)
    c = Consumer(consumer_conf(broker.bootstrap))
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()


def test_delete_unknown_topic(broker):
    topic = unique_topic("nodel")
    admin = admin_client(broker.bootstrap)
    futs = admin.delete_topics([topic], request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as ei:
        futs[topic].result(timeout=ADMIN_TIMEOUT_S + 5)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART, ei.value


def test_create_existing_topic(broker):
    topic = unique_topic("dup")
    create_topic(broker.bootstrap, topic, 2)
    err = _create_error(broker.bootstrap, NewTopic(topic, num_partitions=2, replication_factor=1))
    assert err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err
    # the original is untouched
    md = wait_for_topic(broker.bootstrap, topic, 2)
    assert len(md.topics[topic].partitions) == 2


@pytest.mark.parametrize("partitions", [0, -5])
def test_create_invalid_partitions(broker, partitions):
    topic = unique_topic("badp")
    # librdkafka validates num_partitions locally (it rejects < -1 with a
    # ValueError before sending); such values must still reach the broker, so
    # fall back to kafka-python, which sends any value as-is.
    try:
        err = _create_error(broker.bootstrap, NewTopic(topic, num_partitions=partitions, replication_factor=1))
    except ValueError:
        err = None
    if err is not None:
        assert err.code() == KafkaError.INVALID_PARTITIONS, err
    else:
        from kafka.admin import KafkaAdminClient
        from kafka.admin import NewTopic as KNewTopic
        from kafka.errors import InvalidPartitionsError

        a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
        try:
            with pytest.raises(InvalidPartitionsError):
                a.create_topics([KNewTopic(topic, partitions, 1)])
        finally:
            a.close()
    assert topic not in admin_client(broker.bootstrap).list_topics(timeout=10).topics


def test_create_invalid_replication_factor(broker):
    topic = unique_topic("badrf")
    err = _create_error(broker.bootstrap, NewTopic(topic, num_partitions=1, replication_factor=3))
    # a single broker cannot host 3 replicas: INVALID_REPLICATION_FACTOR (38)
    assert err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert topic not in admin_client(broker.bootstrap).list_topics(timeout=10).topics


def test_produce_to_missing_partition_client_side(broker):
    """librdkafka knows the partition count and fails the message."""
    topic = unique_topic("nopart")
    create_topic(broker.bootstrap, topic, 1)
    p = Producer(producer_conf(broker.bootstrap, **{"message.timeout.ms": 10_000}))
    reports = produce_and_wait(p, [dict(topic=topic, partition=7, value=b"x")], timeout=30)
    err = reports[0][0]
    assert err is not None, "produce to partition 7 of a 1-partition topic succeeded"
    assert err.code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART), err


def test_raw_produce_fetch_list_offsets_missing_partition(broker):
    """The broker itself must reject a partition index that does not exist."""
    topic = unique_topic("rawnp")
    create_topic(broker.bootstrap, topic, 1)
    with RawKafka(broker.bootstrap) as raw:
        [(t, p, err, _off)] = raw.produce(topic, 7, record_batch([b"x"]))
        assert (t, p, err) == (topic, 7, ERR_UNKNOWN_TOPIC_OR_PARTITION)
        [(t, p, err, _hw, _recs)] = raw.fetch(topic, 7, 0)
        assert (t, p, err) == (topic, 7, ERR_UNKNOWN_TOPIC_OR_PARTITION)
        [(t, p, err, _ts, _off)] = raw.list_offsets(topic, 7, -1)
        assert (t, p, err) == (topic, 7, ERR_UNKNOWN_TOPIC_OR_PARTITION)
        # the real partition 0 still works on the same connection
        [(t, p, err, off)] = raw.produce(topic, 0, record_batch([b"a", b"b"]))
        assert (t, p, err, off) == (topic, 0, ERR_NONE, 0)
        [(t, p, err, hw, recs)] = raw.fetch(topic, 0, 0)
        assert (err, hw) == (ERR_NONE, 2) and recs, (err, hw, recs)
        # and nothing was appended anywhere by the rejected produce
        [(_t, _p, err, _ts, off)] = raw.list_offsets(topic, 0, -1)
        assert (err, off) == (ERR_NONE, 2)


def test_raw_requests_for_unknown_topic(broker):
    topic = unique_topic("rawnt")
    with RawKafka(broker.bootstrap) as raw:
        [(t, p, err, _hw, _recs)] = raw.fetch(topic, 0, 0)
        assert err == ERR_UNKNOWN_TOPIC_OR_PARTITION
        [(t, p, err, _ts, _off)] = raw.list_offsets(topic, 0, -1)
        assert err == ERR_UNKNOWN_TOPIC_OR_PARTITION
    # Fetch / ListOffsets never auto-create
    assert topic not in admin_client(broker.bootstrap).list_topics(timeout=10).topics
