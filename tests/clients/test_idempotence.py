"""The idempotent producer (enable.idempotence=true, the default of modern clients): a
connection cut mid-stream, by a broker restart or a SIGKILL, ends with every message exactly
once and in order, because the broker answers retried batches with their original offsets."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from conftest import consume_topic, create_topic, producer_conf, unique_topic, wait_until

PARTITIONS = 3
MESSAGES = 12_000


def produce_through(broker, topic: str, interrupt) -> tuple[list, list]:
    """Produces MESSAGES numbered values with an idempotent producer while `interrupt` runs
    from another thread; returns (delivered values, delivery errors)."""
    p = Producer(producer_conf(
        broker.bootstrap,
        **{"enable.idempotence": True, "linger.ms": 2, "batch.num.messages": 200,
           "message.timeout.ms": 120_000, "retry.backoff.ms": 50},
    ))
    delivered, errors = [], []
    lock = threading.Lock()

    def cb(err, msg):
        with lock:
            (errors if err else delivered).append(err or (msg.partition(), msg.offset(), msg.value()))

    started = threading.Event()
    worker = threading.Thread(target=lambda: (started.wait(), interrupt()))
    worker.start()
    for i in range(MESSAGES):
        key = f"k{i % 50}".encode()
        while True:
            try:
                p.produce(topic, key=key, value=str(i).encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        if i == MESSAGES // 3:
            started.set()
        p.poll(0)
    remaining = p.flush(120)
    worker.join(60)
    assert remaining == 0, f"{remaining} messages never delivered"
    return delivered, errors


def check_exactly_once_in_order(broker, topic: str, delivered: list):
    records, errors, _ = consume_topic(broker.bootstrap, topic, PARTITIONS, MESSAGES, timeout=60)
    assert not errors, errors
    values = [int(r.value) for r in records]
    assert len(values) == MESSAGES, f"{len(values)} records for {MESSAGES} messages"
    assert sorted(values) == list(range(MESSAGES)), "every message exactly once"
    by_key: dict = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key, []).append(int(r.value))
    for key, seq in by_key.items():
        assert seq == sorted(seq), f"messages of {key} out of order"
    acked = {(p, o): int(v) for p, o, v in delivered}
    stored = {(r.partition, r.offset): int(r.value) for r in records}
    assert all(stored.get(k) == v for k, v in acked.items()), "an ack points at another record"


@pytest.mark.parametrize("how", ["restart", "sigkill"])
def test_idempotent_producer_survives_a_cut_connection_exactly_once(broker, how):
    topic = unique_topic(f"idem-{how}")
    create_topic(broker.bootstrap, topic, PARTITIONS)

    def interrupt():
        if how == "restart":
            broker.restart()
        else:
            broker.kill()
            broker.start()

    delivered, errors = produce_through(broker, topic, interrupt)
    assert not errors, errors[:5]
    assert len(delivered) == MESSAGES
    check_exactly_once_in_order(broker, topic, delivered)


def test_producer_ids_are_never_reused_across_restarts(broker):
    from kafka.protocol.init_producer_id import InitProducerIdRequest, InitProducerIdResponse  # noqa: F401
    from conftest import RawKafka

    def init_producer_id() -> int:
        with RawKafka(broker.bootstrap) as raw:
            version = raw.pick_version(22, 0, 1)
            request = InitProducerIdRequest[version](transactional_id=None, transaction_timeout_ms=60_000)
            body = raw.roundtrip(22, version, request.encode())
            response = InitProducerIdRequest[version].RESPONSE_TYPE.decode(body)
            assert response.error_code == 0, response
            return response.producer_id

    first = init_producer_id()
    second = init_producer_id()
    assert second != first
    broker.restart()
    third = init_producer_id()
    assert third not in (first, second) and third > second
