"""ListOffsets: earliest / latest watermarks and lookup by timestamp."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

from conftest import (
    ERR_NONE,
    RawKafka,
    consumer_conf,
    create_topic,
    now_ms,
    produce_and_wait,
    producer_conf,
    unique_topic,
)

N = 20
STEP_MS = 1000


def _produce(bootstrap, topic, timestamps, partition=0, one_batch_each=False):
    p = Producer(producer_conf(bootstrap, **({"linger.ms": 0} if one_batch_each else {})))
    reports = []
    if one_batch_each:
        for i, ts in enumerate(timestamps):
            reports += produce_and_wait(p, [dict(topic=topic, partition=partition, value=f"m{i}".encode(),
                                                 timestamp=ts)])
    else:
        reports = produce_and_wait(p, [dict(topic=topic, partition=partition, value=f"m{i}".encode(),
                                            timestamp=ts) for i, ts in enumerate(timestamps)])
    assert all(r[0] is None for r in reports), [r[0] for r in reports if r[0]][:5]
    assert [r[2] for r in reports] == list(range(len(timestamps)))
    return reports


@pytest.fixture
def consumer(broker):
    c = Consumer(consumer_conf(broker.bootstrap))
    yield c
    c.close()


def test_watermarks_empty_and_after_produce(broker, consumer):
    topic = unique_topic("wm")
    create_topic(broker.bootstrap, topic, 2)
    for p in (0, 1):
        assert consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False) == (0, 0)
    base = now_ms() - 100_000
    _produce(broker.bootstrap, topic, [base + i * STEP_MS for i in range(N)], partition=0)
    _produce(broker.bootstrap, topic, [base + i for i in range(7)], partition=1, one_batch_each=True)
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
    assert consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 7)


@pytest.mark.parametrize("one_batch_each", [False, True], ids=["single-batch", "batch-per-message"])
def test_offsets_for_times(broker, consumer, one_batch_each):
    topic = unique_topic("oft")
    create_topic(broker.bootstrap, topic, 1)
    base = now_ms() - 1_000_000
    stamps = [base + i * STEP_MS for i in range(N)]
    _produce(broker.bootstrap, topic, stamps, one_batch_each=one_batch_each)

    cases = {
        base - 50_000: 0,  # before everything -> first offset
        base: 0,  # exact match on the first
        base + 1: 1,  # between 0 and 1 -> first with ts >= query
        base + 5 * STEP_MS + 500: 6,
        base + 7 * STEP_MS: 7,  # exact match in the middle
        stamps[-1]: N - 1,  # exact match on the last
    }
    for ts, want in cases.items():
        res = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
        assert len(res) == 1
        assert res[0].error is None, res[0].error
        assert res[0].offset == want, f"offsets_for_times({ts - base:+d}ms from base) = {res[0].offset}, want {want}"

    # after every message: Kafka answers offset -1 (librdkafka: OFFSET_END)
    res = consumer.offsets_for_times([TopicPartition(topic, 0, stamps[-1] + 1)], timeout=10)
    assert res[0].error is None, res[0].error
    assert res[0].offset == OFFSET_END == -1, res[0].offset


def test_offsets_for_times_non_monotonic(broker, consumer):
    """Kafka semantics: the *earliest offset* whose timestamp is >= the query."""
    topic = unique_topic("oftnm")
    create_topic(broker.bootstrap, topic, 1)
    base = now_ms() - 500_000
    stamps = [base + 100, base + 300, base + 200, base + 400, base + 250]
    _produce(broker.bootstrap, topic, stamps)
    for q, want in [(base + 150, 1), (base + 250, 1), (base + 301, 3), (base + 400, 3), (base + 50, 0)]:
        res = consumer.offsets_for_times([TopicPartition(topic, 0, q)], timeout=10)
        assert res[0].error is None, res[0].error
        assert res[0].offset == want, f"query +{q - base}: got {res[0].offset}, want {want}"


def test_raw_list_offsets_earliest_latest_timestamp(broker):
    """The same through a hand-built ListOffsets request (checks the returned timestamps too)."""
    topic = unique_topic("rawlo")
    create_topic(broker.bootstrap, topic, 1)
    base = now_ms() - 200_000
    stamps = [base + i * STEP_MS for i in range(5)]
    _produce(broker.bootstrap, topic, stamps)
    with RawKafka(broker.bootstrap) as raw:
        [(t, p, err, ts, off)] = raw.list_offsets(topic, 0, -2)  # EARLIEST
        assert (t, p, err, off) == (topic, 0, ERR_NONE, 0)
        [(t, p, err, ts, off)] = raw.list_offsets(topic, 0, -1)  # LATEST
        assert (t, p, err, off) == (topic, 0, ERR_NONE, 5)
        [(t, p, err, ts, off)] = raw.list_offsets(topic, 0, base + 2 * STEP_MS - 10)
        assert (err, off, ts) == (ERR_NONE, 2, stamps[2])
        [(t, p, err, ts, off)] = raw.list_offsets(topic, 0, stamps[-1] + 1)
        assert (err, off, ts) == (ERR_NONE, -1, -1)


def test_kafka_python_offsets(broker):
    topic = unique_topic("kpo")
    create_topic(broker.bootstrap, topic, 2)
    base = now_ms() - 300_000
    _produce(broker.bootstrap, topic, [base + i * STEP_MS for i in range(N)], partition=0)
    _produce(broker.bootstrap, topic, [base + i * STEP_MS for i in range(3)], partition=1)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=20_000)
    try:
        tp0, tp1 = KTopicPartition(topic, 0), KTopicPartition(topic, 1)
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: N, tp1: 3}
        res = c.offsets_for_times({tp0: base + 4 * STEP_MS + 1, tp1: base + 100 * STEP_MS})
        assert res[tp0] is not None and res[tp0].offset == 5 and res[tp0].timestamp == base + 5 * STEP_MS, res
        assert res[tp1] is None, res  # nothing at/after the query time
    finally:
        c.close()
