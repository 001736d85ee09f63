"""Produce-path record validation seen by real clients: timestamps outside the topic's
message.timestamp.before/after.max.ms window are refused with INVALID_TIMESTAMP (32) and nothing
is written; a LogAppendTime topic stamps batches with the broker's clock instead."""

from __future__ import annotations

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka import KafkaProducer

from conftest import (
    ADMIN_TIMEOUT_S,
    admin_client,
    consume_partitions,
    now_ms,
    produce_and_wait,
    producer_conf,
    unique_topic,
    wait_for_topic,
)

ERR_INVALID_TIMESTAMP = 32
DAY_MS = 24 * 3_600_000


def _create(bootstrap: str, prefix: str, config: dict) -> str:
    topic = unique_topic(prefix)
    admin = admin_client(bootstrap)  # kept alive until the future resolves
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config)], request_timeout=ADMIN_TIMEOUT_S)
    futures[topic].result(timeout=ADMIN_TIMEOUT_S)
    wait_for_topic(bootstrap, topic, 1, client=admin)
    return topic


def _consume(bootstrap: str, topic: str, expected: int):
    records, errors, _ = consume_partitions(bootstrap, [TopicPartition(topic, 0, 0)], expected)
    assert not errors, errors[:5]
    return records


def test_timestamps_outside_the_window_get_invalid_timestamp_and_are_not_written(broker):
    topic = _create(broker.bootstrap, "ts-window", {"message.timestamp.after.max.ms": "3600000",
                                                    "message.timestamp.before.max.ms": "3600000"})
    producer = Producer(producer_conf(broker.bootstrap))
    # One message per produce call and flush, so that no good message shares the bad one's batch.
    for name, timestamp in (("future", now_ms() + DAY_MS), ("past", now_ms() - DAY_MS)):
        reports = produce_and_wait(producer, [dict(topic=topic, partition=0, value=name.encode(), timestamp=timestamp)])
        err = reports[0][0]
        assert err is not None, f"a timestamp in the {name} was accepted at offset {reports[0][2]}"
        assert err.code() == KafkaError.INVALID_TIMESTAMP == ERR_INVALID_TIMESTAMP, err
        assert not err.retriable(), err
    good = [dict(topic=topic, partition=0, value=f"good-{i}".encode()) for i in range(5)]
    reports = produce_and_wait(producer, good)
    assert [(r[0], r[2]) for r in reports] == [(None, i) for i in range(5)]
    records = _consume(broker.bootstrap, topic, 5)
    assert [(r.offset, r.value) for r in records] == [(i, f"good-{i}".encode()) for i in range(5)]


def test_a_log_append_time_topic_overwrites_producer_timestamps(broker):
    topic = _create(broker.bootstrap, "ts-append", {"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    # kafka-python, gzip: the broker stamps the compressed batch without rewriting its records.
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    futures = [producer.send(topic, value=f"v{i}".encode(), partition=0, timestamp_ms=1) for i in range(3)]
    metadata = [f.get(timeout=30) for f in futures]
    producer.close()
    after = now_ms()
    assert [m.offset for m in metadata] == [0, 1, 2]
    records = _consume(broker.bootstrap, topic, 3)
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    for r in records:
        assert r.ts_type == TIMESTAMP_LOG_APPEND_TIME, f"timestamp type {r.ts_type} is not LogAppendTime"
        assert before <= r.timestamp <= after, (before, r.timestamp, after)
