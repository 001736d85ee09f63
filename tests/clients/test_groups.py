"""Consumer groups and committed offsets, with real clients against the real binary.

The module's broker runs with group.initial.rebalance.delay.ms = 100 (Kafka's 3000 would make
every first rebalance wait three seconds).
"""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import KafkaConsumer
from kafka.protocol.commit import OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse
from kafka.protocol.group import (
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)

from conftest import (
    Broker,
    RawKafka,
    admin_client,
    create_topic,
    produce_and_wait,
    producer_conf,
    unique_topic,
    wait_until,
)
from crashkit import pass_config

SESSION_TIMEOUT_MS = 6000

BROKER_CONFIG = """
group.initial.rebalance.delay.ms = 100
"""

API_JOIN_GROUP, API_SYNC_GROUP, API_HEARTBEAT = 11, 14, 12
API_OFFSET_COMMIT, API_OFFSET_FETCH, API_OFFSET_DELETE = 8, 9, 47
ERR_ILLEGAL_GENERATION = 22
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86
ERR_NON_EMPTY_GROUP = 68


class GroupsBroker(Broker):
    """The shared fixture's broker, started with this module's config file."""

    def __init__(self, *args, config_path: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.config_path = config_path

    def command(self) -> list[str]:
        return super().command() + ["--config", str(self.config_path)]


@pytest.fixture(scope="module")
def _module_broker(strand_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("groups")
    config = base / "strand.toml"
    config.write_text(pass_config(BROKER_CONFIG))
    b = GroupsBroker(strand_bin, base / "data", base / "broker.log", config_path=config)
    b.start()
    yield b
    b.stop(check=True)


def group_conf(bootstrap: str, group: str, **overrides) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
    }
    conf.update(overrides)
    return conf


def produce_per_partition(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str = "") -> None:
    messages = [
        {"topic": topic, "partition": p, "value": f"{tag}{p}-{i}".encode()}
        for i in range(per_partition)
        for p in range(partitions)
    ]
    reports = produce_and_wait(Producer(producer_conf(bootstrap)), messages)
    assert all(r[0] is None for r in reports), [r for r in reports if r[0] is not None][:3]


class Ledger:
    """Every delivery of every member, and the assignment each member believes it holds.

    Checked as the test runs: a member is only given partitions no other member holds (in
    the eager protocol a generation's assignments are disjoint, and members give theirs up
    before the next generation is formed), and a member only receives records of partitions
    it holds. Together: no record reaches two members of the same generation.
    """

    def __init__(self):
        self.deliveries: dict[tuple[int, int], list[str]] = {}
        self.uncommitted: set[tuple[int, int]] = set()
        self.members: list[Member] = []

    def on_assign(self, member: Member, partitions: set[int]) -> None:
        for other in self.members:
            if other is not member:
                overlap = other.assigned & partitions
                assert not overlap, f"{member.name} given {sorted(overlap)} still held by {other.name}"

    def deliver(self, member: Member, partition: int, offset: int) -> None:
        assert partition in member.assigned, f"{member.name} got partition {partition} outside {sorted(member.assigned)}"
        self.deliveries.setdefault((partition, offset), []).append(member.name)


class Member:
    def __init__(self, name: str, conf: dict, topic: str, ledger: Ledger):
        self.name = name
        self.ledger = ledger
        self.assigned: set[int] = set()
        self.assignments = 0
        self.consumer = Consumer(conf)
        ledger.members.append(self)
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, _consumer, partitions):
        got = {tp.partition for tp in partitions}
        self.ledger.on_assign(self, got)
        self.assigned = got
        self.assignments += 1

    def _on_revoke(self, _consumer, _partitions):
        self.assigned = set()

    def poll(self) -> int:
        """One consume call; commits what it got. Returns the records received."""
        got = []
        for m in self.consumer.consume(num_messages=50, timeout=0.05):
            if m.error() is not None:
                assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                continue
            self.ledger.deliver(self, m.partition(), m.offset())
            got.append((m.partition(), m.offset()))
        if got:
            try:
                self.consumer.commit(asynchronous=False)
            except KafkaException:
                # A commit refused in a rebalance: these may legitimately be delivered again.
                self.ledger.uncommitted.update(got)
        return len(got)

    def close(self) -> None:
        self.consumer.close()
        self.ledger.members.remove(self)
        self.assigned = set()


def poll_until(members: list[Member], condition, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"timed out after {timeout}s waiting for {what}: " + ", ".join(
            f"{m.name}={sorted(m.assigned)}" for m in members
        )
        for m in members:
            m.poll()
    return time.monotonic() - start


def split_evenly(members: list[Member], partitions: int) -> bool:
    held = [m.assigned for m in members]
    union = set().union(*held)
    return union == set(range(partitions)) and sum(len(h) for h in held) == partitions and all(
        len(h) == partitions // len(members) for h in held
    )


def test_three_consumers_split_partitions_and_two_take_over_after_one_leaves(broker):
    topic, group, partitions = unique_topic("split"), unique_topic("g-split"), 6
    create_topic(broker.bootstrap, topic, partitions)
    produce_per_partition(broker.bootstrap, topic, partitions, 50, tag="a")
    ledger = Ledger()
    members = [Member(f"c{i}", group_conf(broker.bootstrap, group, **{"client.id": f"c{i}"}), topic, ledger) for i in range(3)]
    try:
        poll_until(members, lambda: split_evenly(members, partitions), 45, "three members with two partitions each")
        poll_until(members, lambda: len(ledger.deliveries) >= partitions * 50, 45, "the first 300 records")
        produce_per_partition(broker.bootstrap, topic, partitions, 50, tag="b")
        leaving, staying = members[2], members[:2]
        leaving.close()
        took = poll_until(staying, lambda: split_evenly(staying, partitions), SESSION_TIMEOUT_MS / 1000, "two members with three partitions each")
        assert took < SESSION_TIMEOUT_MS / 1000
        poll_until(staying, lambda: len(ledger.deliveries) >= partitions * 100, 45, "all 600 records")
        for _ in range(10):
            for m in staying:
                m.poll()
    finally:
        for m in list(ledger.members):
            m.close()
    expected = {(p, o) for p in range(partitions) for o in range(100)}
    assert set(ledger.deliveries) == expected
    duplicated = {k: v for k, v in ledger.deliveries.items() if len(v) > 1}
    assert set(duplicated) <= ledger.uncommitted, f"delivered twice though committed: {sorted(duplicated)[:5]}"


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(broker):
    topic, group, partitions = unique_topic("static"), unique_topic("g-static"), 4
    create_topic(broker.bootstrap, topic, partitions)
    ledger = Ledger()

    def static(name: str) -> Member:
        conf = group_conf(broker.bootstrap, group, **{"group.instance.id": name, "client.id": name})
        return Member(name, conf, topic, ledger)

    first, other = static("instance-a"), static("instance-b")
    poll_until([first, other], lambda: split_evenly([first, other], partitions), 45, "two static members with two partitions each")
    held_before, other_assignments = set(first.assigned), other.assignments
    first.close()  # a static member does not leave the group when it closes
    again = static("instance-a")
    try:
        poll_until([again, other], lambda: again.assigned == held_before, SESSION_TIMEOUT_MS / 1000, "the same partitions back")
        for _ in range(20):
            again.poll()
            other.poll()
        assert other.assignments == other_assignments, "the other member went through a rebalance"
        assert other.assigned == set(range(partitions)) - held_before
    finally:
        again.close()
        other.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer(group_conf(bootstrap, group))
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def first_offsets_after_joining(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Joins the group and returns the first offset delivered from each partition."""
    c = Consumer(group_conf(bootstrap, group))
    first: dict[int, int] = {}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 45
        while len(first) < partitions:
            assert time.monotonic() < deadline, f"only got the first records of {sorted(first)}"
            for m in c.consume(num_messages=100, timeout=0.2):
                if m.error() is None:
                    first.setdefault(m.partition(), m.offset())
    finally:
        c.close()
    return first


def test_committed_offsets_survive_a_restart_and_a_sigkill(broker):
    topic, group, partitions = unique_topic("durable"), unique_topic("g-durable"), 3
    create_topic(broker.bootstrap, topic, partitions)
    produce_per_partition(broker.bootstrap, topic, partitions, 40)

    c = Consumer(group_conf(broker.bootstrap, group))
    c.subscribe([topic])
    wait_until(lambda: c.consume(num_messages=100, timeout=0.2) is not None and len(c.assignment()) == partitions, 45, what="assignment")
    commits = {p: 10 + 5 * p for p in range(partitions)}
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in commits.items()], asynchronous=False)
    c.close()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == commits

    broker.restart()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == commits
    assert first_offsets_after_joining(broker.bootstrap, group, topic, partitions) == commits

    c = Consumer(group_conf(broker.bootstrap, group))
    later = {p: 21 + 3 * p for p in range(partitions)}
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in later.items()], asynchronous=False)
    c.close()
    broker.kill()
    broker.start()
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == later
    assert first_offsets_after_joining(broker.bootstrap, group, topic, partitions) == later


def test_kafka_python_auto_commit_reads_everything_once_across_a_restart(broker):
    topic, group, partitions, total = unique_topic("kp-group"), unique_topic("g-kp"), 2, 400
    create_topic(broker.bootstrap, topic, partitions)
    produce_per_partition(broker.bootstrap, topic, partitions, total // partitions)

    def consumer():
        return KafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            enable_auto_commit=True,
            auto_commit_interval_ms=200,
            auto_offset_reset="earliest",
            request_timeout_ms=20_000,
            fetch_max_wait_ms=100,
            max_poll_records=50,
        )

    seen: list[tuple[int, int]] = []
    first = consumer()
    deadline = time.monotonic() + 45
    while len(seen) < total // 2:
        assert time.monotonic() < deadline, f"read {len(seen)} of the first half"
        for _tp, records in first.poll(timeout_ms=200, max_records=50).items():
            seen.extend((r.partition, r.offset) for r in records)
    first.close()  # commits what was returned, then leaves the group
    half = len(seen)
    assert half < total

    broker.restart()
    second = consumer()
    deadline = time.monotonic() + 45
    try:
        while len(seen) < total:
            assert time.monotonic() < deadline, f"read {len(seen)} of {total}"
            for _tp, records in second.poll(timeout_ms=200).items():
                seen.extend((r.partition, r.offset) for r in records)
        for _tp, records in second.poll(timeout_ms=500).items():
            seen.extend((r.partition, r.offset) for r in records)
    finally:
        second.close()
    assert len(seen) == len(set(seen)), "a record was read twice"
    assert set(seen) == {(p, o) for p in range(partitions) for o in range(total // partitions)}


def join(raw: RawKafka, version: int, group: str, member_id: str = "", protocol_type: str = "consumer", protocols=None):
    protocols = [("range", b"\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff")] if protocols is None else protocols
    args = [group, 10_000]
    if version >= 1:
        args.append(30_000)
    args.append(member_id)
    if version >= 5:
        args.append(None)
    args += [protocol_type, protocols]
    request = JoinGroupRequest[version](*args)  # kept alive: kafka-python's encode() holds it weakly
    body = request.encode()
    return JoinGroupResponse[version].decode(io.BytesIO(raw.roundtrip(API_JOIN_GROUP, version, body)))


def encoded(request) -> bytes:
    return request.encode()


def test_bad_group_requests_are_refused_and_the_coordinator_keeps_serving(broker):
    topic, group = unique_topic("bad"), unique_topic("g-bad")
    create_topic(broker.bootstrap, topic, 1)
    with RawKafka(broker.bootstrap) as raw:
        # A first member, then a join of another protocol type and one with no protocols.
        joined = join(raw, 3, group)
        assert joined.error_code == 0, joined
        member, generation = joined.member_id, joined.generation_id
        assert joined.leader_id == member and generation == 1
        assert join(raw, 3, group, protocol_type="connect").error_code == ERR_INCONSISTENT_GROUP_PROTOCOL
        other = join(raw, 3, group, protocols=[("sticky", b"")])
        assert other.error_code == ERR_INCONSISTENT_GROUP_PROTOCOL
        assert join(raw, 3, unique_topic("g-empty"), protocols=[]).error_code == ERR_INCONSISTENT_GROUP_PROTOCOL

        sync = encoded(SyncGroupRequest[1](group, generation + 5, member, [(member, b"assignment")]))
        synced = SyncGroupResponse[1].decode(io.BytesIO(raw.roundtrip(API_SYNC_GROUP, 1, sync)))
        assert synced.error_code == ERR_ILLEGAL_GENERATION
        sync = encoded(SyncGroupRequest[1](group, generation, member, [(member, b"assignment")]))
        synced = SyncGroupResponse[1].decode(io.BytesIO(raw.roundtrip(API_SYNC_GROUP, 1, sync)))
        assert (synced.error_code, synced.member_assignment) == (0, b"assignment")

        beat = encoded(HeartbeatRequest[1](group, generation - 1, member))
        assert HeartbeatResponse[1].decode(io.BytesIO(raw.roundtrip(API_HEARTBEAT, 1, beat))).error_code == ERR_ILLEGAL_GENERATION
        beat = encoded(HeartbeatRequest[1](group, generation, "stranger"))
        assert HeartbeatResponse[1].decode(io.BytesIO(raw.roundtrip(API_HEARTBEAT, 1, beat))).error_code == ERR_UNKNOWN_MEMBER_ID
        beat = encoded(HeartbeatRequest[1](group, generation, member))
        assert HeartbeatResponse[1].decode(io.BytesIO(raw.roundtrip(API_HEARTBEAT, 1, beat))).error_code == 0

        commit = encoded(OffsetCommitRequest[2](group, generation, member, -1, [
            ("no-such-topic", [(0, 5, "")]),
            (topic, [(0, 5, "m"), (7, 5, "")]),
        ]))
        answer = OffsetCommitResponse[2].decode(io.BytesIO(raw.roundtrip(API_OFFSET_COMMIT, 2, commit)))
        codes = {(t, p): e for t, ps in answer.topics for p, e in ps}
        assert codes == {("no-such-topic", 0): ERR_UNKNOWN_TOPIC_OR_PARTITION, (topic, 0): 0, (topic, 7): ERR_UNKNOWN_TOPIC_OR_PARTITION}
        stale = encoded(OffsetCommitRequest[2](group, generation + 1, member, -1, [(topic, [(0, 9, "")])]))
        answer = OffsetCommitResponse[2].decode(io.BytesIO(raw.roundtrip(API_OFFSET_COMMIT, 2, stale)))
        assert answer.topics[0][1][0][1] == ERR_ILLEGAL_GENERATION

        fetch = encoded(OffsetFetchRequest[3](group, [(topic, [0, 1])]))
        fetched = OffsetFetchResponse[3].decode(io.BytesIO(raw.roundtrip(API_OFFSET_FETCH, 3, fetch)))
        assert fetched.error_code == 0
        assert [(p, o, m, e) for _t, ps in fetched.topics for p, o, m, e in ps] == [(0, 5, "m", 0), (1, -1, "", 0)]

    # The coordinator still runs a normal group.
    produce_per_partition(broker.bootstrap, topic, 1, 5)
    assert first_offsets_after_joining(broker.bootstrap, unique_topic("g-after"), topic, 1) == {0: 0}


def offset_delete(raw: RawKafka, group: str, topic: str, partitions: list[int]) -> tuple[int, dict[int, int]]:
    """OffsetDelete v0 by hand (kafka-python has no class for it)."""
    def string(s: str) -> bytes:
        return struct.pack(">h", len(s)) + s.encode()
    body = string(group) + struct.pack(">i", 1) + string(topic) + struct.pack(">i", len(partitions))
    body += b"".join(struct.pack(">i", p) for p in partitions)
    data = io.BytesIO(raw.roundtrip(API_OFFSET_DELETE, 0, body))
    error, _throttle, topics = struct.unpack(">hii", data.read(10))
    codes = {}
    for _ in range(topics):
        (n,) = struct.unpack(">h", data.read(2))
        data.read(n)
        (count,) = struct.unpack(">i", data.read(4))
        for _ in range(count):
            p, e = struct.unpack(">ih", data.read(6))
            codes[p] = e
    return error, codes


def test_consumer_lag_is_latest_offset_minus_committed(broker):
    topic, group, partitions, produced = unique_topic("lag"), unique_topic("g-lag"), 2, 50
    create_topic(broker.bootstrap, topic, partitions)
    produce_per_partition(broker.bootstrap, topic, partitions, produced)
    committed = {0: 20, 1: 35}
    c = Consumer(group_conf(broker.bootstrap, group, **{"client.id": "lag-client"}))
    c.subscribe([topic])
    admin = admin_client(broker.bootstrap)
    try:
        wait_until(lambda: c.consume(num_messages=100, timeout=0.2) is not None and len(c.assignment()) == partitions, 45, what="assignment")
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in committed.items()], asynchronous=False)

        wanted = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])]
        listed = admin.list_consumer_group_offsets(wanted)[group].result(timeout=20)
        got = {tp.partition: tp.offset for tp in listed.topic_partitions}
        assert got == committed
        latest = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)})
        end = {tp.partition: f.result(timeout=20).offset for tp, f in latest.items()}
        assert end == {p: produced for p in range(partitions)}
        lag = {p: end[p] - got[p] for p in range(partitions)}
        assert lag == {0: produced - 20, 1: produced - 35}

        def stable():
            description = admin.describe_consumer_groups([group])[group].result(timeout=20)
            return description if str(description.state).endswith("STABLE") and description.members else None

        description = wait_until(stable, 30, what="a stable group")
        assert description.protocol_type == "consumer" if hasattr(description, "protocol_type") else True
        assert description.partition_assignor in ("range", "roundrobin")
        (member,) = description.members
        assert member.client_id == "lag-client"
        assert member.host.lstrip("/") == "127.0.0.1"
        assert {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} == {(topic, p) for p in range(partitions)}
        listed_groups = admin.list_consumer_groups().result(timeout=20)
        assert group in {g.group_id for g in listed_groups.valid}

        # A member's group cannot be deleted; its offsets of a consumed topic cannot either.
        (deleted,) = admin.delete_consumer_groups([group]).values()
        with pytest.raises(KafkaException) as refused:
            deleted.result(timeout=20)
        assert refused.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
        with RawKafka(broker.bootstrap) as raw:
            assert offset_delete(raw, group, topic, [0]) == (0, {0: ERR_GROUP_SUBSCRIBED_TO_TOPIC})
    finally:
        c.close()

    with RawKafka(broker.bootstrap) as raw:
        assert offset_delete(raw, group, topic, [0, 9]) == (0, {0: 0, 9: ERR_UNKNOWN_TOPIC_OR_PARTITION})
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == {0: -1001, 1: 35}
    (deleted,) = admin.delete_consumer_groups([group]).values()
    deleted.result(timeout=20)
    assert committed_offsets(broker.bootstrap, group, topic, partitions) == {0: -1001, 1: -1001}
