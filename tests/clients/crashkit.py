"""Helpers for the crash and fault tests (test_crash.py, test_faults.py).

- ``ConfiguredBroker``: the conftest ``Broker`` started with ``--config FILE``; ``own_broker``
  starts one for a test and stops it when the test's block ends, however it ends.
- ``Ledger`` and ``LoadSession``: a background confluent-kafka producer (acks=all, no
  idempotence, no retries, so every message is sent at most once) that produces unique
  numbered messages at a paced rate and records every delivery report that said success.
- ``read_back`` and ``verify``: read every partition from the earliest offset and compare it
  with the ledger: every acknowledged message at its acknowledged (partition, offset), in
  order, exactly once, and nothing else at an acknowledged offset.
- Offline helpers for segment files: walk the record batches of a ``.log`` file.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import Broker, BrokerError, consumer_conf, producer_conf

# ---------------------------------------------------------------------------
# broker with a config file
# ---------------------------------------------------------------------------


class ConfiguredBroker(Broker):
    """A ``Broker`` that also passes ``--config FILE`` (flags still override the file)."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, config: str, shards: int = 2):
        super().__init__(binary, data_dir, log_path, shards=shards)
        self.config_path = Path(log_path).with_name("strand.toml")
        self.config_path.write_text(config)

    def command(self) -> list[str]:
        return super().command() + ["--config", str(self.config_path)]


def log_of_start(broker: Broker, start: int | None = None) -> str:
    """The broker log written by start number ``start`` (default: the latest start)."""
    n = broker.starts if start is None else start
    text = broker.log_text()
    marker = f"===== [test harness] start #{n}:"
    at = text.rfind(marker)
    if at < 0:
        return ""
    end = text.find("===== [test harness] start #", at + len(marker))
    return text[at:] if end < 0 else text[at:end]


def wait_ready(broker: Broker, timeout: float = 30.0) -> str:
    """Waits until the latest start logged "strand is serving" (every shard has recovered its
    partitions and listens; the port accepts as soon as the first shard listens). Returns that
    start's log."""
    deadline = time.monotonic() + timeout
    while True:
        log = log_of_start(broker)
        if "strand is serving" in log:
            return log
        if not broker.is_running():
            raise AssertionError(f"strand exited during startup\n{log[-5000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"strand did not log 'strand is serving' within {timeout}s\n{log[-5000:]}")
        time.sleep(0.02)


def kill_during_startup(broker: Broker, delay_s: float) -> bool:
    """Starts the broker and SIGKILLs it ``delay_s`` after the spawn, typically while it is still
    recovering its partitions. Returns whether it had logged "strand is serving" by then."""
    assert not broker.is_running()
    broker.starts += 1
    with open(broker.log_path, "ab", buffering=0) as log:
        log.write(f"\n===== [test harness] start #{broker.starts}: {' '.join(broker.command())} "
                  f"(SIGKILL after {delay_s:.3f}s)\n".encode())
        proc = subprocess.Popen(broker.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=str(broker.data_dir.parent))
        try:
            time.sleep(delay_s)  # the random moment of the kill; nothing to poll for
        finally:
            proc.kill()
            proc.wait(timeout=10)
    return "strand is serving" in log_of_start(broker)


def pass_config(extra: str = "") -> str:
    """The config of this suite pass (the file STRAND_CONFIG names, e.g. buffered mode or the shard
    journal) followed by ``extra``: a broker started with ``--config`` does not read STRAND_CONFIG,
    so a test's own config must carry the pass's. A key ``extra`` sets is the test's."""
    base = os.environ.get("STRAND_CONFIG")
    own = {line.split("=")[0].strip() for line in extra.splitlines() if "=" in line and not line.lstrip().startswith("#")}
    kept = [line for line in (Path(base).read_text() if base else "").splitlines()
            if "=" not in line or line.split("=")[0].strip() not in own]
    return "\n".join(kept) + "\n" + extra


def pass_has_journal() -> bool:
    """Whether this suite pass runs the broker with a shard journal (``shard.journal.bytes`` > 0)."""
    for line in pass_config().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "shard.journal.bytes":
            return int(value.strip()) > 0
    return False


@contextmanager
def own_broker(binary: Path, data_dir: Path, log_path: Path, config: str, request=None,
               shards: int = 2) -> Iterator[ConfiguredBroker]:
    """A broker of the test's own: a ``ConfiguredBroker`` of ``binary`` with ``config``, started
    and ready ("strand is serving") when the block begins, stopped when it ends, however it
    ends, so a failed check never leaves it running (holding its port, its data directory, a
    mount under it). ``request``: the test's, so the failure report attaches this broker's log.

    The block may stop, kill and restart the broker. When the block ends normally the broker
    must stop cleanly (SIGTERM, exit code 0; already stopped is fine): a crash or a hang there
    fails the test. When it ends with an exception the broker is stopped (killed if it hangs)
    and that exception is the one reported."""
    b = ConfiguredBroker(binary, data_dir, log_path, config, shards=shards)
    if request is not None:
        request.node._strand_broker = b
    try:
        b.start()
        wait_ready(b)
        yield b
    except BaseException:
        try:
            b.stop(check=False)
        except BrokerError:
            pass  # it hung on SIGTERM and was killed: the failure in flight is the one to report
        raise
    b.stop(check=True)


def startup_errors(log: str) -> list[str]:
    """ERROR lines of a start's log (e.g. a partition that failed to open)."""
    return [ln for ln in log.splitlines() if " ERROR " in ln]


RECOVERY_WARNINGS = ("log ends early", "truncating", "offset index disagrees", "removing segment after damaged")


def recovery_warnings(log: str) -> list[str]:
    return [ln for ln in log.splitlines() if any(w in ln for w in RECOVERY_WARNINGS)]


def partition_dirs(data_dir: Path) -> list[Path]:
    """Every ``<topic>-<partition>`` directory that holds a segment."""
    out = []
    for d in sorted(Path(data_dir).iterdir()):
        if d.is_dir() and re.search(r"-\d+$", d.name) and any(d.glob("*.log")):
            out.append(d)
    return out


# ---------------------------------------------------------------------------
# message numbering
# ---------------------------------------------------------------------------

def encode_key(seq: int, key_space: int = 0) -> bytes:
    """The key of message ``seq``: unique, or one of ``key_space`` keys (for compacted topics)."""
    return b"%012d" % seq if not key_space else b"key-%d" % (seq % key_space)


def seq_of(value: bytes | None) -> int:
    """The sequence number a value carries (ValueError/AttributeError if it carries none)."""
    return int(value.split(b"|", 3)[2])


def expected_value(topic: str, partition: int, seq: int) -> bytes:
    """The value of message ``seq``: names its partition, and varies in length (32..543 bytes of
    padding) so batches end at every position within a page."""
    return b"%s|%d|%012d|" % (topic.encode(), partition, seq) + b"." * (32 + (seq * 7919) % 512)


# ---------------------------------------------------------------------------
# the acknowledgement ledger
# ---------------------------------------------------------------------------


@dataclass
class Ledger:
    """Everything sent and acknowledged, across all producer sessions of one test."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    next_seq: int = 0
    # (topic, partition, offset) -> seq of the message acknowledged there
    acked: dict = field(default_factory=dict)
    # seq -> (topic, partition, offset)
    acked_by_seq: dict = field(default_factory=dict)
    # two success reports for one offset: [(tp_offset, first seq, second seq)]
    conflicts: list = field(default_factory=list)
    failed: Counter = field(default_factory=Counter)

    def take_seq(self) -> int:
        with self.lock:
            s = self.next_seq
            self.next_seq += 1
            return s

    def on_delivery(self, err, msg) -> None:
        seq = seq_of(msg.value())
        if err is not None:
            with self.lock:
                self.failed[err.name()] += 1
            return
        where = (msg.topic(), msg.partition(), msg.offset())
        with self.lock:
            prev = self.acked.get(where)
            if prev is not None and prev != seq:
                self.conflicts.append((where, prev, seq))
            self.acked[where] = seq
            self.acked_by_seq[seq] = where

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked_by_seq)

    def acked_ends(self) -> dict:
        """(topic, partition) -> 1 + the highest acknowledged offset."""
        ends: dict = {}
        with self.lock:
            for (t, p, o) in self.acked:
                if o + 1 > ends.get((t, p), 0):
                    ends[(t, p)] = o + 1
        return ends


class LoadSession:
    """One producer, in a background thread, producing paced numbered messages round-robin
    over ``targets`` [(topic, partition)] until ``stop()``."""

    TICK_S = 0.01

    def __init__(self, bootstrap: str, ledger: Ledger, targets: list, rate_per_s: int, key_space: int = 0,
                 **conf):
        self.ledger = ledger
        self.key_space = key_space
        self.targets = list(targets)
        self.per_tick = max(1, int(rate_per_s * self.TICK_S))
        overrides = {
            "acks": "all",
            "enable.idempotence": False,
            "retries": 0,  # = message.send.max.retries: a message is sent at most once
            "linger.ms": 2,
            "message.timeout.ms": 20_000,
            "socket.timeout.ms": 10_000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
            "log_level": 2,  # connection-refused chatter while the broker is down is expected
        }
        overrides.update(conf)
        self.producer = Producer(producer_conf(bootstrap, **overrides))
        self.acked_at_start = ledger.acked_count()
        self.sent = 0
        self.unreported = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crash-load", daemon=True)

    def start(self) -> "LoadSession":
        self._thread.start()
        return self

    def acked_since_start(self) -> int:
        return self.ledger.acked_count() - self.acked_at_start

    def _run(self) -> None:
        try:
            i = 0
            n = len(self.targets)
            next_tick = time.monotonic()
            while not self._stop.is_set():
                for _ in range(self.per_tick):
                    seq = self.ledger.take_seq()
                    topic, partition = self.targets[i % n]
                    i += 1
                    while True:
                        try:
                            self.producer.produce(topic, value=expected_value(topic, partition, seq),
                                                  key=encode_key(seq, self.key_space), partition=partition,
                                                  on_delivery=self.ledger.on_delivery)
                            self.sent += 1
                            break
                        except BufferError:
                            self.producer.poll(0.01)
                            if self._stop.is_set():
                                # never handed over: not sent, cannot be present
                                break
                self.producer.poll(0)
                next_tick += self.TICK_S
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_tick = time.monotonic()
        except BaseException as e:  # reported by stop()
            self.error = e

    def stop(self, drain_s: float = 1.0) -> None:
        """Stops producing, waits up to ``drain_s`` for outstanding delivery reports, then purges
        what is left (those messages count as unacknowledged: they may or may not be stored)."""
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "producer thread did not stop within 30s"
        self.producer.flush(drain_s)
        self.unreported = len(self.producer)
        if self.unreported:
            self.producer.purge(in_queue=True, in_flight=True, blocking=False)
            self.producer.flush(5.0)
        if self.error is not None:
            raise AssertionError(f"producer thread failed: {self.error!r}") from self.error


# ---------------------------------------------------------------------------
# reading back and checking
# ---------------------------------------------------------------------------


def watermarks(bootstrap: str, tps: list, timeout: float = 30.0) -> dict:
    """(topic, partition) -> (low, high), retried until the deadline (a restarted broker may
    still be opening partitions)."""
    c = Consumer(consumer_conf(bootstrap))
    out = {}
    deadline = time.monotonic() + timeout
    try:
        for (t, p) in tps:
            while True:
                try:
                    out[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=5, cached=False)
                    break
                except KafkaException as e:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"no watermarks for {t}-{p} within {timeout}s: {e}") from e
                    time.sleep(0.1)
    finally:
        c.close()
    return out


@dataclass
class ReadBack:
    # (topic, partition) -> [(offset, key, value)] in the order the consumer delivered them
    records: dict
    high_watermarks: dict
    errors: list


def read_back(bootstrap: str, tps: list, timeout: float = 120.0) -> ReadBack:
    """Reads every partition in ``tps`` from the earliest offset up to its high watermark."""
    hwm = {tp: hi for tp, (_lo, hi) in watermarks(bootstrap, tps).items()}
    records: dict = {tp: [] for tp in tps}
    errors: list = []
    c = Consumer(consumer_conf(bootstrap, **{"fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 2 << 20}))
    try:
        c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in tps])
        pending = {tp for tp in tps if hwm[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                got = {tp: len(records[tp]) for tp in pending}
                raise AssertionError(f"read-back did not reach the high watermarks {hwm} within {timeout}s; "
                                     f"still pending {got}; errors {errors[:5]}")
            for m in c.consume(num_messages=10_000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        errors.append(err)
                        if err.fatal():
                            raise KafkaException(err)
                    continue
                tp = (m.topic(), m.partition())
                records[tp].append((m.offset(), m.key(), m.value()))
                if m.offset() + 1 >= hwm[tp]:
                    pending.discard(tp)
    finally:
        c.close()
    return ReadBack(records, hwm, errors)


@dataclass
class Verdict:
    acknowledged: int = 0
    recovered: int = 0
    lost: int = 0  # acknowledged, found nowhere
    compacted_away: int = 0  # acknowledged, gone, and a newer message with its key is stored
    misplaced: int = 0  # acknowledged, found at another offset
    overwritten: int = 0  # an acknowledged offset holds a different message
    duplicated: int = 0  # extra copies of a message (acknowledged or not)
    unacked_present: int = 0  # no success report, but stored (allowed)
    corrupt: int = 0  # a record that is not a message we sent, or in the wrong partition
    out_of_order: int = 0  # offsets not increasing, or acknowledged messages not in send order
    ack_conflicts: int = 0  # two success reports for one offset
    read_errors: int = 0
    examples: list = field(default_factory=list)

    def bad(self) -> bool:
        return bool(self.lost or self.misplaced or self.overwritten or self.duplicated or self.corrupt
                    or self.out_of_order or self.ack_conflicts or self.read_errors
                    or self.recovered + self.compacted_away != self.acknowledged)

    def note(self, text: str) -> None:
        if len(self.examples) < 20:
            self.examples.append(text)

    def totals(self) -> str:
        compacted = f"compacted-away={self.compacted_away} " if self.compacted_away else ""
        return (f"acknowledged={self.acknowledged} recovered={self.recovered} {compacted}lost={self.lost} "
                f"misplaced={self.misplaced} overwritten={self.overwritten} duplicated={self.duplicated} "
                f"unacknowledged-but-present={self.unacked_present} corrupt={self.corrupt} "
                f"out-of-order={self.out_of_order} ack-conflicts={self.ack_conflicts} read-errors={self.read_errors}")


def verify(ledger: Ledger, back: ReadBack, key_space: int = 0) -> Verdict:
    """The read-back against the ledger. With ``key_space`` (a compacted topic), an acknowledged
    message may be gone when a newer message with its key is stored: it is then counted as
    ``compacted_away`` instead of lost."""
    v = Verdict()
    v.acknowledged = len(ledger.acked_by_seq)
    v.ack_conflicts = len(ledger.conflicts)
    for where, first, second in ledger.conflicts[:5]:
        v.note(f"offset {where} acknowledged twice: seq {first} and seq {second}")
    v.read_errors = len(back.errors)
    for e in back.errors[:3]:
        v.note(f"consumer error: {e}")

    found_at: dict = defaultdict(list)  # seq -> [(topic, partition, offset)]
    stored: dict = {}  # (topic, partition, offset) -> seq
    for (t, p), recs in back.records.items():
        last_offset = -1
        for offset, key, value in recs:
            if offset <= last_offset:
                v.out_of_order += 1
                v.note(f"{t}-{p}: offset {offset} read after {last_offset}")
            last_offset = max(last_offset, offset)
            try:
                seq = seq_of(value)
            except (AttributeError, IndexError, ValueError):
                v.corrupt += 1
                v.note(f"{t}-{p}@{offset}: value {value[:60]!r} carries no sequence number")
                continue
            if value != expected_value(t, p, seq) or key != encode_key(seq, key_space):
                v.corrupt += 1
                v.note(f"{t}-{p}@{offset}: seq {seq} value {value[:60]!r} is not what was sent to this partition")
                continue
            found_at[seq].append((t, p, offset))
            stored[(t, p, offset)] = seq

    # (topic, partition, key index) -> highest offset stored with that key
    newest_of_key: dict = {}
    for seq, places in found_at.items():
        for (t, p, o) in places:
            k = (t, p, seq % key_space) if key_space else None
            if k is not None and o > newest_of_key.get(k, -1):
                newest_of_key[k] = o
    for seq, places in found_at.items():
        if len(places) > 1:
            v.duplicated += len(places) - 1
            v.note(f"seq {seq} stored {len(places)} times: {places[:4]}")
        if seq not in ledger.acked_by_seq:
            v.unacked_present += 1

    # every acknowledged message (two success reports for one offset: both are checked, and at
    # most one can be there); then, per partition in offset order, seq must increase
    per_tp: dict = defaultdict(list)
    for seq, (t, p, o) in ledger.acked_by_seq.items():
        per_tp[(t, p)].append((o, seq))
        there = stored.get((t, p, o))
        if there == seq:
            v.recovered += 1
            continue
        if there is not None:
            v.overwritten += 1
            v.note(f"{t}-{p}@{o}: acknowledged seq {seq}, holds seq {there}")
        if seq in found_at:
            v.misplaced += 1
            v.note(f"{t}-{p}@{o}: acknowledged seq {seq} found at {found_at[seq][:3]}")
        elif there is None and key_space and newest_of_key.get((t, p, seq % key_space), -1) > o:
            v.compacted_away += 1
        else:
            v.lost += 1
            v.note(f"{t}-{p}@{o}: acknowledged seq {seq} is missing")
    for (t, p), pairs in per_tp.items():
        pairs.sort()
        for (o1, s1), (o2, s2) in zip(pairs, pairs[1:]):
            if s2 <= s1:
                v.out_of_order += 1
                v.note(f"{t}-{p}: acknowledged seq {s1}@{o1} then seq {s2}@{o2}")
    return v


# ---------------------------------------------------------------------------
# segment files, offline
# ---------------------------------------------------------------------------

BATCH_HEADER_BYTES = 61


@dataclass(frozen=True)
class BatchAt:
    position: int
    base_offset: int
    size: int  # whole batch, including the 12-byte offset + length prefix
    last_offset_delta: int

    @property
    def end(self) -> int:
        return self.position + self.size

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1


def segment_batches(path: Path) -> list[BatchAt]:
    """The record batches of a segment file, up to the first thing that is not a v2 batch
    (e.g. the zero padding an O_DIRECT writer leaves up to the page boundary)."""
    data = Path(path).read_bytes()
    out = []
    pos = 0
    while pos + BATCH_HEADER_BYTES <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        magic = data[pos + 16]
        size = 12 + length
        if length < BATCH_HEADER_BYTES - 12 or magic != 2 or pos + size > len(data):
            break
        (last_delta,) = struct.unpack_from(">i", data, pos + 23)
        out.append(BatchAt(pos, base, size, last_delta))
        pos += size
    return out


def active_segment(partition_dir: Path) -> Path:
    logs = sorted(Path(partition_dir).glob("*.log"))
    assert logs, f"no segment in {partition_dir}"
    return logs[-1]
