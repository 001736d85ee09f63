"""Storage faults end-to-end: a full disk and failing I/O, against the real broker.

1. Disk full: the data directory lives on a size-limited tmpfs the test mounts (needs root).
   Produce gets KAFKA_STORAGE_ERROR, the broker stays up and serves reads, and accepts writes
   again once space is freed; the log holds exactly what was acknowledged (plus the one batch
   in flight when the disk filled), also read from disk after a clean restart.
2. EIO on write, on fdatasync and on read, injected into a broker built with the io crate's
   fault seam (``cargo build --features fault-injection``, kept as target/release/strand-faults,
   or STRAND_FAULTS_BIN) through the STRAND_FAULTS environment variable. A failed write or
   fdatasync takes its partition offline (KAFKA_STORAGE_ERROR for produce and fetch, as
   Kafka's offline replicas answer) and acknowledges nothing it did not make durable; a failed
   read fails that fetch only. Other partitions are unaffected, and after a restart without
   the fault every acknowledged record is there.
3. A panic (a bug) on one shard, injected the same way, aborts the whole broker rather than
   leaving it half alive; restarted, it has every acknowledged record.

Requests go through the raw protocol client (one request, one write): the error code of each
produce and fetch is asserted exactly.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest
from kafka.record import MemoryRecords

from conftest import (
    DEFAULT_BIN,
    Broker,
    RawKafka,
    create_topic,
    record_batch,
    unique_topic,
    wait_until,
)
from crashkit import own_broker, pass_config, wait_ready

ERR_KAFKA_STORAGE_ERROR = 56
EIO = 5
SMALL_FS_MB = 48
BIG_BATCH_BYTES = 64 << 10
SEGMENT = "00000000000000000000.log"


@pytest.fixture(scope="session")
def faults_bin() -> Path:
    given = os.environ.get("STRAND_FAULTS_BIN")
    path = Path(given) if given else Path(DEFAULT_BIN).with_name("strand-faults")
    if not (path.is_file() and os.access(path, os.X_OK)):
        if given:
            pytest.fail(f"STRAND_FAULTS_BIN={given} is not an executable", pytrace=False)
        pytest.skip(f"no fault-injection build at {path} (scripts/test.sh builds it)")
    return path


def restart(broker: Broker) -> None:
    """A clean stop (SIGTERM, exit code 0), then a start; returns once the broker serves."""
    broker.stop(check=True)
    broker.start()
    wait_ready(broker)


def produce_one(raw: RawKafka, topic: str, value: bytes) -> tuple[int, int]:
    """Produces one single-record batch: (error code, base offset)."""
    [(_, _, code, offset)] = raw.produce(topic, 0, record_batch([value]))
    return code, offset


def fetch_values(raw: RawKafka, topic: str) -> tuple[int, list[bytes]]:
    """Fetches the partition from offset 0 until its high watermark: (error code, values)."""
    values: list[bytes] = []
    offset = 0
    while True:
        [(_, _, code, high, records)] = raw.fetch(topic, 0, offset)
        if code != 0:
            return code, values
        batches = MemoryRecords(records) if records else None
        got = 0
        while batches is not None and batches.has_next():
            for record in batches.next_batch():
                if record.offset >= offset:
                    assert record.offset == offset, f"{topic}: offset {record.offset} where {offset} was next"
                    values.append(record.value)
                    offset += 1
                    got += 1
        if offset >= high or got == 0:
            return 0, values


def assert_no_panic(broker: Broker) -> None:
    log = broker.log_text()
    assert "panicked" not in log, log[-5000:]


# ---------------------------------------------------------------------------
# 1. disk full
# ---------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A SMALL_FS_MB tmpfs mounted for the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_FS_MB}m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> int:
    """Writes ``path`` until the filesystem is full; returns its size."""
    chunk = b"\xa5" * (256 << 10)
    written = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                if len(chunk) <= 4096:
                    return written
                chunk = chunk[: len(chunk) // 2]


@pytest.mark.timeout(120)
def test_disk_full_refuses_produce_keeps_reads_and_recovers_when_space_is_freed(strand_bin, small_fs, tmp_path,
                                                                                request, capsys):
    with own_broker(strand_bin, small_fs / "data", tmp_path / "broker.log", pass_config(), request=request,
                    shards=1) as broker:
        full, other = unique_topic("full"), unique_topic("other")
        create_topic(broker.bootstrap, full, 1)
        create_topic(broker.bootstrap, other, 1)
        with RawKafka(broker.bootstrap) as raw:
            acked = []
            for i in range(20):
                value = b"before-%d" % i
                code, _ = produce_one(raw, full, value)
                assert code == 0
                acked.append(value)
            assert produce_one(raw, other, b"other-0")[0] == 0

            filler = small_fs / "filler"
            filled = fill(filler)
            # The active segment keeps the space it reserved ahead (log.segment.preallocate.bytes):
            # produce succeeds until that is used up, then the disk is full for it too.
            code, big = 0, 0
            while code == 0:
                assert big < (SMALL_FS_MB << 20) // BIG_BATCH_BYTES, "the disk never filled up"
                value = b"big-%06d|" % big + b"x" * (BIG_BATCH_BYTES - 11)
                code, _ = produce_one(raw, full, value)
                if code == 0:
                    acked.append(value)
                    big += 1
            assert code == ERR_KAFKA_STORAGE_ERROR, code
            in_flight, acked_while_room = value, len(acked)
            refused = [produce_one(raw, full, b"refused-%d" % i)[0] for i in range(5)]
            assert refused == [ERR_KAFKA_STORAGE_ERROR] * 5, refused
            # reads go on while the disk is full
            assert fetch_values(raw, full) == (0, acked)
            assert fetch_values(raw, other) == (0, [b"other-0"])
            assert broker.is_running()

            filler.unlink()
            attempts = []

            def after_0_accepted() -> bool:
                attempts.append(produce_one(raw, full, b"after-0")[0])
                return attempts[-1] == 0

            wait_until(after_0_accepted, 20, interval=0.2, what="produce accepted again after space was freed")
            assert set(attempts[:-1]) <= {ERR_KAFKA_STORAGE_ERROR}, attempts
            acked.append(b"after-0")
            for i in range(1, 20):
                value = b"after-%d" % i
                code, _ = produce_one(raw, full, value)
                assert code == 0
                acked.append(value)
            code, values = fetch_values(raw, full)
        assert code == 0
        # Exactly the acknowledged values, in order, each once, plus one batch: the big one in
        # flight when the disk filled. It had its offset when its write hit ENOSPC; its produce
        # was answered KAFKA_STORAGE_ERROR, but the writer (src/log/log_writer.rs,
        # requeue_unwritten / set_out_of_space) keeps it queued at the head and writes it once
        # space returns, before anything appended later: the log has no gap at its offset, and
        # an idempotent producer's retry would find it by sequence. Every produce while the
        # partition is out of space (refused-*, the after-0 attempts before the writer wrote
        # again) is refused before it gets an offset (PartitionLog::append_as_leader), so
        # none of them can ever be stored.
        expected = acked[:acked_while_room] + [in_flight] + acked[acked_while_room:]
        assert values == expected, summarize(values, expected)
        assert_no_panic(broker)
        log = broker.log_text()
        assert "out of disk space" in log and "disk space available again" in log

        # The reads above may all have come from the tail cache: after a clean restart they
        # come from the segment files.
        restart(broker)
        with RawKafka(broker.bootstrap) as raw:
            code, from_disk = fetch_values(raw, full)
            assert fetch_values(raw, other) == (0, [b"other-0"])
        assert code == 0
        assert from_disk == expected, summarize(from_disk, expected)
        assert_no_panic(broker)
    with capsys.disabled():  # the figures reach the terminal even without -s
        print(f"\n    disk full: filler {filled >> 10} KiB, then {big} x 64 KiB acknowledged into the reserved space; "
              f"{len(acked)} acknowledged in all, {len(values)} read back (the one in flight at ENOSPC included), "
              f"the same after a restart; refused with KAFKA_STORAGE_ERROR: the one in flight, 5 more, "
              f"{len(attempts) - 1} after-0 attempts before space was seen again")


def summarize(values: list[bytes], expected: list[bytes]) -> str:
    """Where two value lists first differ (the values are up to 64 KiB: no full dump)."""
    short = [v[:12] for v in values]
    for i, (v, e) in enumerate(zip(values, expected)):
        if v != e:
            return f"at {i}: read {v[:12]!r}, expected {e[:12]!r}; read {len(values)}: {short}"
    return f"read {len(values)} values, expected {len(expected)}: {short}"


# ---------------------------------------------------------------------------
# 2. injected EIO
# ---------------------------------------------------------------------------


def faulty_broker(faults_bin, tmp_path, request, monkeypatch, spec: str, extra: str = ""):
    """``own_broker`` of the fault-injection build with STRAND_FAULTS=``spec``."""
    monkeypatch.setenv("STRAND_FAULTS", spec)
    return own_broker(faults_bin, tmp_path / "data", tmp_path / "broker.log", pass_config(extra), request=request)


def restart_without_faults(broker: Broker, monkeypatch) -> None:
    broker.stop(check=True)
    monkeypatch.delenv("STRAND_FAULTS")
    broker.start()
    wait_ready(broker)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("op", ["write", "sync"])
def test_eio_on_write_or_fdatasync_takes_the_partition_offline_and_acks_nothing_unsynced(
        faults_bin, tmp_path, request, monkeypatch, op):
    topic, other = unique_topic(f"eio{op}"), unique_topic("healthy")
    # The segment file's first 3 writes (or fdatasyncs) succeed; every later one fails. Each
    # partition fdatasyncs its own segment before an ack (no shard journal).
    with faulty_broker(faults_bin, tmp_path, request, monkeypatch,
                       f"{op}:{topic}-0/{SEGMENT}:{EIO}:1000000:3", extra="shard.journal.bytes = 0\n") as broker:
        create_topic(broker.bootstrap, topic, 1)
        with RawKafka(broker.bootstrap) as raw:
            codes = [produce_one(raw, topic, b"v-%d" % i)[0] for i in range(6)]
            assert codes == [0, 0, 0] + [ERR_KAFKA_STORAGE_ERROR] * 3, codes
            assert fetch_values(raw, topic)[0] == ERR_KAFKA_STORAGE_ERROR, "an offline partition serves no reads"
            check_other_partition(broker, raw, other)
        assert "going offline" in broker.log_text()
        assert_no_panic(broker)
        restart_without_faults(broker, monkeypatch)
        with RawKafka(broker.bootstrap) as raw:
            code, values = fetch_values(raw, topic)
            assert code == 0
            # The fourth batch was never acknowledged; after a failed fdatasync it may still have
            # reached the disk, after a failed write it cannot have.
            assert values[:3] == [b"v-0", b"v-1", b"v-2"], values
            possible = ([], [b"v-3"]) if op == "sync" else ([],)
            assert values[3:] in possible, values
            assert produce_one(raw, topic, b"v-after")[0] == 0, "the partition takes writes after the restart"
            assert fetch_values(raw, other) == (0, [b"o-0", b"o-1", b"o-2"])
        assert_no_panic(broker)


def check_other_partition(broker: Broker, raw: RawKafka, other: str) -> None:
    """Another partition, on either shard, takes and serves writes."""
    create_topic(broker.bootstrap, other, 1)
    assert [produce_one(raw, other, b"o-%d" % i)[0] for i in range(3)] == [0, 0, 0]
    assert fetch_values(raw, other) == (0, [b"o-0", b"o-1", b"o-2"])


@pytest.mark.timeout(90)
def test_eio_on_the_journal_fdatasync_puts_it_out_of_use_and_loses_no_ack(faults_bin, tmp_path, request, monkeypatch):
    topic, other = unique_topic("eiojournal"), unique_topic("healthy")
    # Per shard, the journal's first 3 fdatasyncs succeed (its zeros, its header page, one
    # round); every later one fails. The partitions then fdatasync their own segments.
    with faulty_broker(faults_bin, tmp_path, request, monkeypatch, f"sync:journal/:{EIO}:1000000:3",
                       extra="shard.journal.bytes = 4194304\n") as broker:
        create_topic(broker.bootstrap, topic, 1)
        with RawKafka(broker.bootstrap) as raw:
            codes = [produce_one(raw, topic, b"v-%d" % i)[0] for i in range(6)]
            assert codes == [0] * 6, codes
            assert fetch_values(raw, topic) == (0, [b"v-%d" % i for i in range(6)])
            check_other_partition(broker, raw, other)
        log = broker.log_text()
        assert "journal failed" in log and "going offline" not in log
        assert_no_panic(broker)
        restart_without_faults(broker, monkeypatch)
        with RawKafka(broker.bootstrap) as raw:
            assert fetch_values(raw, topic) == (0, [b"v-%d" % i for i in range(6)])
            assert fetch_values(raw, other) == (0, [b"o-0", b"o-1", b"o-2"])
        assert_no_panic(broker)


@pytest.mark.timeout(90)
def test_eio_on_read_fails_the_fetch_and_leaves_the_log_intact(faults_bin, tmp_path, request, monkeypatch):
    topic = unique_topic("eioread")
    # No tail cache: every fetch reads the segment file, and every read of it fails.
    with faulty_broker(faults_bin, tmp_path, request, monkeypatch, f"read:{topic}-0/:{EIO}:1000000",
                       extra="shard.tail.cache.bytes = 0\n") as broker:
        create_topic(broker.bootstrap, topic, 1)
        with RawKafka(broker.bootstrap) as raw:
            assert [produce_one(raw, topic, b"r-%d" % i)[0] for i in range(3)] == [0, 0, 0]
            assert fetch_values(raw, topic)[0] == ERR_KAFKA_STORAGE_ERROR
            assert produce_one(raw, topic, b"r-3")[0] == 0, "a failed read does not stop writes"
        assert_no_panic(broker)
        restart_without_faults(broker, monkeypatch)
        with RawKafka(broker.bootstrap) as raw:
            assert fetch_values(raw, topic) == (0, [b"r-0", b"r-1", b"r-2", b"r-3"])


@pytest.mark.timeout(90)
def test_a_panicking_shard_aborts_the_broker_and_a_restart_loses_no_ack(faults_bin, tmp_path, request, monkeypatch):
    victim, bystander = unique_topic("panics"), unique_topic("bystander")
    # The victim segment's first write goes through; the second panics its shard, as a bug would.
    with faulty_broker(faults_bin, tmp_path, request, monkeypatch, f"write:{victim}-0/{SEGMENT}:panic:1:1") as broker:
        create_topic(broker.bootstrap, victim, 1)
        create_topic(broker.bootstrap, bystander, 1)
        with RawKafka(broker.bootstrap) as raw:
            assert [produce_one(raw, bystander, b"b-%d" % i)[0] for i in range(3)] == [0, 0, 0]
            assert produce_one(raw, victim, b"v-0") == (0, 0)
            with pytest.raises(Exception):
                produce_one(raw, victim, b"v-1")  # no answer: the process is gone
        # Not a half-alive broker whose other shard goes on serving: the whole process stops.
        wait_until(lambda: not broker.is_running(), timeout=15, what="the broker to exit")
        log = broker.log_text()
        assert broker.stop(check=False) == -signal.SIGABRT
        assert "fault injection: Write of" in log and "panic: aborting the broker" in log, log[-3000:]
        monkeypatch.delenv("STRAND_FAULTS")
        broker.start()
        wait_ready(broker)
        with RawKafka(broker.bootstrap) as raw:
            assert fetch_values(raw, bystander) == (0, [b"b-0", b"b-1", b"b-2"])
            code, values = fetch_values(raw, victim)
            assert code == 0 and values[:1] == [b"v-0"] and values[1:] in ([], [b"v-1"]), values
            assert produce_one(raw, victim, b"v-after")[0] == 0
        assert "panicked" not in broker.log_text()[len(log):]
