"""message.max.bytes (default 1048588) is enforced by the broker."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from conftest import (
    ERR_MESSAGE_TOO_LARGE,
    ERR_NONE,
    RawKafka,
    consume_partitions,
    consume_topic,
    consumer_conf,
    create_topic,
    produce_and_wait,
    producer_conf,
    record_batch,
    unique_topic,
)

BROKER_MESSAGE_MAX_BYTES = 1_048_588


def _watermarks(bootstrap, topic, partition=0):
    c = Consumer(consumer_conf(bootstrap))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def test_oversized_message_rejected_by_broker(broker):
    topic = unique_topic("big")
    create_topic(broker.bootstrap, topic, 1)
    # raise the client's own limit so the 2 MiB record is actually sent
    p = Producer(producer_conf(broker.bootstrap, **{
        "message.max.bytes": 10_000_000,
        "batch.size": 10_000_000,
        "message.timeout.ms": 30_000,
    }))
    big = b"\xab" * (2 * 1024 * 1024)
    reports = produce_and_wait(p, [dict(topic=topic, partition=0, key=b"big", value=big)], timeout=60)
    err = reports[0][0]
    assert err is not None, f"2 MiB message was accepted at offset {reports[0][2]}"
    # 10 = broker MESSAGE_TOO_LARGE; -181 (_MSG_SIZE_TOO_LARGE) would mean the
    # client rejected it locally and the broker was never asked.
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE == ERR_MESSAGE_TOO_LARGE, err

    # nothing was stored, and the broker keeps serving the same producer and topic
    assert _watermarks(broker.bootstrap, topic) == (0, 0)
    small = [dict(topic=topic, partition=0, key=f"k{i}".encode(), value=f"small-{i}".encode()) for i in range(10)]
    reports = produce_and_wait(p, small)
    assert [(r[0], r[2]) for r in reports] == [(None, i) for i in range(10)]
    records, errors, _ = consume_topic(broker.bootstrap, topic, 1, 10, timeout=30)
    assert not errors, errors[:5]
    assert [(r.offset, r.key, r.value) for r in records] == [
        (i, f"k{i}".encode(), f"small-{i}".encode()) for i in range(10)
    ]


def test_large_message_under_limit_accepted(broker):
    topic = unique_topic("nearmax")
    create_topic(broker.bootstrap, topic, 1)
    value = bytes(range(256)) * (1_000_000 // 256)  # ~1 MB, batch stays below 1048588
    p = Producer(producer_conf(broker.bootstrap, **{"message.max.bytes": 10_000_000}))
    reports = produce_and_wait(p, [dict(topic=topic, partition=0, value=value)], timeout=60)
    assert reports[0][0] is None, reports[0][0]
    assert reports[0][2] == 0
    records, errors, _ = consume_partitions(broker.bootstrap, [TopicPartition(topic, 0, 0)], 1, timeout=30,
                                            conf_overrides={"fetch.message.max.bytes": 2_000_000})
    assert not errors, errors[:5]
    assert len(records) == 1 and records[0].value == value


def test_raw_batch_over_limit(broker):
    """A single record batch just over message.max.bytes gets MESSAGE_TOO_LARGE (10)."""
    topic = unique_topic("rawbig")
    create_topic(broker.bootstrap, topic, 1)
    with RawKafka(broker.bootstrap) as raw:
        over = record_batch([b"z" * (BROKER_MESSAGE_MAX_BYTES + 100)])
        [(_t, _p, err, _off)] = raw.produce(topic, 0, over)
        assert err == ERR_MESSAGE_TOO_LARGE, err
        ok = record_batch([b"z" * 1000])
        [(_t, _p, err, off)] = raw.produce(topic, 0, ok)
        assert (err, off) == (ERR_NONE, 0)
    assert _watermarks(broker.bootstrap, topic) == (0, 1)
