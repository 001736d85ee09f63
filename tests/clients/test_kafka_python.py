"""kafka-python (pure-Python client, API versions auto-detected from ApiVersions)."""

from __future__ import annotations

import collections
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from conftest import now_ms, unique_topic, wait_until

N = 1000
PARTITIONS = 2


@pytest.fixture
def admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000,
                         client_id="strand-tests-admin")
    yield a
    a.close()


def _consume(bootstrap, tps, expected, timeout=30.0):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", request_timeout_ms=20_000, fetch_max_wait_ms=100)
    try:
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for _tp, recs in c.poll(timeout_ms=300, max_records=500).items():
                out.extend(recs)
        # give an over-delivering broker a chance to show extra records
        for _tp, recs in c.poll(timeout_ms=300).items():
            out.extend(recs)
        return out
    finally:
        c.close()


def test_create_produce_consume_offsets_delete(broker, admin):
    topic = unique_topic("kp")
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], timeout_ms=20_000)
    wait_until(lambda: topic in admin.list_topics(), timeout=20, what=f"{topic} listed")
    desc = admin.describe_topics([topic])
    assert len(desc) == 1 and desc[0]["error_code"] == 0, desc
    assert sorted(p["partition"] for p in desc[0]["partitions"]) == list(range(PARTITIONS))

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=20_000, max_block_ms=30_000)
    base = now_ms() - 600_000
    sent = []
    futures = []
    for i in range(N):
        key = f"user-{i % 37}".encode()
        value = f"payload-{i}".encode() * (1 + i % 5)
        headers = [("seq", str(i).encode()), ("kind", b"kp")]
        ts = base + i * 10
        sent.append((key, value, headers, ts))
        futures.append(producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
    producer.flush(timeout=60)
    metas = [f.get(timeout=30) for f in futures]
    producer.close(timeout=10)

    per_part = collections.defaultdict(list)
    for i, md in enumerate(metas):
        assert md.topic == topic
        per_part[md.partition].append((md.offset, i))
    assert set(per_part) <= set(range(PARTITIONS))
    for p, lst in per_part.items():
        assert [o for o, _ in lst] == list(range(len(lst))), f"partition {p}: offsets not 0..n-1 in send order"

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    records = _consume(broker.bootstrap, tps, N)
    assert len(records) == N, f"consumed {len(records)} of {N}"
    got = collections.defaultdict(list)
    for r in records:
        got[r.partition].append(r)
    for p, lst in per_part.items():
        recs = got[p]
        assert [r.offset for r in recs] == [o for o, _ in lst], f"partition {p} order/offsets differ"
        for r, (_o, i) in zip(recs, lst):
            key, value, headers, ts = sent[i]
            assert (r.key, r.value) == (key, value)
            assert list(r.headers) == headers
            assert r.timestamp == ts and r.timestamp_type == 0  # CreateTime

    # ListOffsets through kafka-python
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      request_timeout_ms=20_000)
    try:
        counts = {tp: len(per_part.get(tp.partition, [])) for tp in tps}
        assert c.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert c.end_offsets(tps) == counts
        # first message of partition 0 at/after a timestamp
        lst0 = per_part[0]
        mid_off, mid_i = lst0[len(lst0) // 2]
        q = sent[mid_i][3] - 1  # just before that message; earlier ones in p0 are older
        res = c.offsets_for_times({tps[0]: q})
        assert res[tps[0]] is not None, res
        assert (res[tps[0]].offset, res[tps[0]].timestamp) == (mid_off, sent[mid_i][3])
        assert c.offsets_for_times({tps[0]: base + N * 10 + 1})[tps[0]] is None
    finally:
        c.close()

    admin.delete_topics([topic], timeout_ms=20_000)
    wait_until(lambda: topic not in admin.list_topics(), timeout=20, what=f"{topic} deleted")


def test_admin_errors(broker, admin):
    topic = unique_topic("kpe")
    admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=20_000)
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(topic, 1, 1)], timeout_ms=20_000)
    admin.delete_topics([topic], timeout_ms=20_000)
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics([unique_topic("kpnone")], timeout_ms=20_000)


def test_producer_detects_api_versions(broker):
    """Without api_version, kafka-python negotiates from ApiVersions; it must
    settle on a modern broker version (record batch v2 needs >= 0.11)."""
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000)
    try:
        assert p.config["api_version"] >= (0, 11), p.config["api_version"]
    finally:
        p.close(timeout=10)
