"""Shared fixtures and helpers for the real-client integration suite.

Every test module gets its own strand broker process (fresh data dir, free
port).  Tests use unique topic names so they never depend on each other.

Helpers are plain functions in this module; test modules import them with
``from conftest import ...`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.protocol.api_versions import ApiVersionsResponse_v0
from kafka.protocol.fetch import FetchRequest, FetchResponse
from kafka.protocol.list_offsets import ListOffsetsRequest, ListOffsetsResponse
from kafka.protocol.produce import ProduceRequest, ProduceResponse
from kafka.record.memory_records import MemoryRecordsBuilder

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "strand"

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
# Upper bound for any single test (enforced through pytest-timeout when it is
# installed; every poll loop below has its own, much shorter, deadline).
TEST_TIMEOUT_S = 300

LOG_TAIL_CHARS = 30_000


# ---------------------------------------------------------------------------
# broker process management
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The line a broker logs once every shard listens: "strand is serving listen=HOST:PORT ...".
SERVING_LINE = re.compile(r"strand is serving listen=\S+:(\d+) .*\n")


class BrokerError(AssertionError):
    pass


class Broker:
    """A strand broker process and its data dir; the broker picks its port at the first start and keeps it."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, shards: int = 2):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.shards = shards
        # 0 until the first start: the broker picks a free port and claims it in one step (a
        # port picked here and released could be taken before the broker binds it), and the
        # harness learns it from the broker's "strand is serving" line. Restarts keep it.
        self.port = 0
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self.starts = 0
        self.given_listen = ""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "serve",
            "--listen", self.bootstrap,
            "--advertised-listener", self.bootstrap,
            "--data-dir", str(self.data_dir),
            "--shards", str(self.shards),
        ]

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.is_running():
            raise BrokerError("broker already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        # What this start is given as --listen (port 0 the first time).
        self.given_listen = self.bootstrap
        self._log_file = open(self.log_path, "ab", buffering=0)
        self._log_file.write(
            f"\n===== [test harness] start #{self.starts}: {' '.join(self.command())}\n".encode()
        )
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        # keep whatever RUST_LOG asks for, and the "strand is serving" line start() waits for
        env["RUST_LOG"] = f"{env['RUST_LOG']},strand::broker=info" if env.get("RUST_LOG") else "info"

        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            env=env,
            cwd=str(self.data_dir.parent),
        )
        deadline = time.monotonic() + START_DEADLINE_S
        marker = f"===== [test harness] start #{self.starts}:"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._close_log()
                raise BrokerError(
                    f"strand exited with code {rc} during startup\n--- broker log ---\n{self.log_tail()}"
                )
            log = self.log_text()
            serving = SERVING_LINE.search(log, log.rfind(marker))
            if serving:
                self.port = int(serving.group(1))
                return
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._close_log()
                raise BrokerError(
                    f"strand did not start serving on {self.bootstrap} within "
                    f"{START_DEADLINE_S:.0f}s\n--- broker log ---\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM and wait. Fails if the broker needs SIGKILL or exits non-zero."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            self._close_log()
            if check and rc != 0:
                raise BrokerError(f"strand had already exited with code {rc}\n--- broker log ---\n{self.log_tail()}")
            return rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
            self._close_log()
            raise BrokerError(
                f"strand did not exit within {STOP_DEADLINE_S:.0f}s of SIGTERM (killed)\n"
                f"--- broker log ---\n{self.log_tail()}"
            )
        self.proc = None
        self._close_log()
        if check and rc != 0:
            raise BrokerError(f"strand exited with code {rc} after SIGTERM\n--- broker log ---\n{self.log_tail()}")
        return rc

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self._close_log()

    def restart(self) -> None:
        self.stop()
        self.start()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text()
        if len(text) > chars:
            return f"[... {len(text) - chars} earlier characters omitted ...]\n" + text[-chars:]
        return text


@pytest.fixture(scope="session")
def strand_bin() -> Path:
    path = Path(os.environ.get("STRAND_BIN") or DEFAULT_BIN)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"strand binary not found or not executable at {path} "
            "(run `cargo build --release` or set STRAND_BIN)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def _module_broker(strand_bin, tmp_path_factory, request):
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    b = Broker(strand_bin, base / "data", base / "broker.log")
    b.start()
    yield b
    # A clean shutdown is part of the contract: a crash or hang on SIGTERM at
    # the end of a module is reported as an error of the last test.
    b.stop(check=True)


@pytest.fixture
def broker(_module_broker: Broker, request) -> Broker:
    """The module's broker, guaranteed running at the start of each test."""
    if not _module_broker.is_running():
        # an earlier test stopped/killed it and failed before restarting it
        _module_broker.proc = None
        _module_broker.start()
    request.node._strand_broker = _module_broker
    return _module_broker


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    b = getattr(item, "_strand_broker", None)
    if b is None:
        funcargs = getattr(item, "funcargs", {}) or {}
        b = funcargs.get("broker") or funcargs.get("_module_broker")
    if rep.failed and isinstance(b, Broker):
        rep.sections.append(
            (f"strand broker log ({b.log_path})", b.log_tail() or "<empty>")
        )


def pytest_report_header(config):
    import shutil

    import confluent_kafka
    import kafka

    lines = [
        f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]}), "
        f"kafka-python {kafka.__version__}",
        f"strand binary: {os.environ.get('STRAND_BIN') or DEFAULT_BIN}",
    ]
    kcat = shutil.which("kcat")
    if kcat:
        try:
            out = subprocess.run([kcat, "-V"], capture_output=True, text=True, timeout=10).stdout
            ver = next((ln.strip() for ln in out.splitlines() if ln.startswith("Version")), out.strip())
            lines.append(f"kcat: {ver}")
        except Exception as e:  # informational only
            lines.append(f"kcat: {kcat} ({e})")
    else:
        lines.append("kcat: not found (test_kcat.py will skip)")
    return lines


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    if not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_until(pred, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


# ---------------------------------------------------------------------------
# confluent-kafka helpers
# ---------------------------------------------------------------------------

# confluent-kafka (checked with 2.16.1) refuses to build a Consumer without
# group.id ("ValueError: Failed to create consumer: group.id must be set").
# We set one but never subscribe or commit: assign() with explicit offsets
# only uses Metadata / ListOffsets / Fetch.
UNUSED_GROUP_ID = "strand-tests-assign-only"


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})


def producer_conf(bootstrap: str, **overrides) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30_000,
    }
    conf.update(overrides)
    return conf


def consumer_conf(bootstrap: str, **overrides) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": UNUSED_GROUP_ID,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # an out-of-range fetch is a broker bug here: surface it, don't reset
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,
    }
    conf.update(overrides)
    return conf


# Admin operations on a local single node should take well under a second;
# short limits keep a broken broker from stalling the suite for minutes.
ADMIN_TIMEOUT_S = 10.0


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout: float = ADMIN_TIMEOUT_S) -> None:
    """CreateTopics via AdminClient, then wait until Metadata shows every partition with a leader."""
    a = admin_client(bootstrap)
    futs = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                           request_timeout=timeout)
    futs[name].result(timeout=timeout)
    wait_for_topic(bootstrap, name, partitions, timeout=timeout, client=a)


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = ADMIN_TIMEOUT_S, client=None):
    client = client or admin_client(bootstrap)

    def ready():
        md = client.list_topics(timeout=5)
        t = md.topics.get(name)
        if t is None or t.error is not None or len(t.partitions) != partitions:
            return None
        if any(p.leader < 0 or p.error is not None for p in t.partitions.values()):
            return None
        return md

    return wait_until(ready, timeout, interval=0.2, what=f"topic {name} with {partitions} partitions in Metadata")


@dataclass(frozen=True)
class Rec:
    """A record as sent or as received, normalised for comparison."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple
    ts_type: int
    timestamp: int


def norm_headers(h) -> tuple:
    if not h:
        return ()
    out = []
    for k, v in h:
        if isinstance(v, str):
            v = v.encode()
        out.append((k, v))
    return tuple(out)


def produce_and_wait(producer: Producer, messages: list[dict], timeout: float = 60.0) -> list:
    """Produce ``messages`` (kwargs for Producer.produce) and wait for every delivery report.

    Returns, per message index, ``(error, partition, offset, timestamp)``
    from its delivery report.
    """
    reports: list = [None] * len(messages)

    def make_cb(i):
        def cb(err, msg):
            reports[i] = (err, msg.partition(), msg.offset(), msg.timestamp())
        return cb

    deadline = time.monotonic() + timeout
    for i, m in enumerate(messages):
        while True:
            try:
                producer.produce(on_delivery=make_cb(i), **m)
                break
            except BufferError:
                producer.poll(0.05)
                if time.monotonic() > deadline:
                    raise AssertionError("producer queue stayed full until the deadline")
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.monotonic()))
    missing = [i for i, r in enumerate(reports) if r is None]
    assert remaining == 0 and not missing, (
        f"{remaining} messages still queued / {len(missing)} without delivery report after {timeout}s"
    )
    return reports


def consume_partitions(
    bootstrap: str,
    assignments: list,
    expected: int,
    timeout: float = 30.0,
    conf_overrides: dict | None = None,
):
    """Assign ``assignments`` (TopicPartitions with offsets) and read until ``expected``
    records have arrived *and* every assigned partition reported end-of-partition.

    Returns ``(records, errors, eof_partitions)``; records are ``Rec``.
    """
    c = Consumer(consumer_conf(bootstrap, **(conf_overrides or {})))
    wanted = {(tp.topic, tp.partition) for tp in assignments}
    records: list[Rec] = []
    errors: list = []
    eof: set = set()
    try:
        c.assign(assignments)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof.add((m.topic(), m.partition()))
                    else:
                        errors.append(err)
                        if err.fatal():
                            raise KafkaException(err)
                    continue
                eof.discard((m.topic(), m.partition()))
                ts_type, ts = m.timestamp()
                records.append(Rec(m.partition(), m.offset(), m.key(), m.value(),
                                   norm_headers(m.headers()), ts_type, ts))
            if len(records) >= expected and eof >= wanted:
                break
    finally:
        c.close()
    return records, errors, eof


def consume_topic(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 30.0, **kw):
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    return consume_partitions(bootstrap, tps, expected, timeout=timeout, **kw)



def metadata_node_id(md) -> int:
    assert len(md.brokers) == 1, f"expected a single broker in Metadata, got {md.brokers}"
    return next(iter(md.brokers))


# ---------------------------------------------------------------------------
# minimal raw protocol client (for checks a client library would short-circuit
# locally, e.g. a partition index the client already knows does not exist)
# ---------------------------------------------------------------------------

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA = 0, 1, 2, 3
API_VERSIONS, API_CREATE_TOPICS, API_DELETE_TOPICS = 18, 19, 20

ERR_NONE = 0
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_UNSUPPORTED_VERSION = 35
ERR_TOPIC_ALREADY_EXISTS = 36
ERR_INVALID_PARTITIONS = 37


class RawKafka:
    """One blocking TCP connection speaking non-flexible request headers (v1)."""

    def __init__(self, bootstrap: str, timeout: float = 15.0):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.corr = 0
        self.api_versions = self.fetch_api_versions()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"broker closed the connection ({len(buf)}/{n} bytes read)")
            buf += chunk
        return bytes(buf)

    def roundtrip(self, api_key: int, api_version: int, body: bytes, flexible_header: bool = False) -> bytes:
        """Send one request, return the response body (after the correlation id).

        Request header v1, or v2 (trailing empty tagged fields) if ``flexible_header``.
        The response header is always read as v0 (correlation id only), which
        is right for every non-flexible response and for ApiVersions.
        """
        self.corr += 1
        client_id = b"strand-tests-raw"
        header = struct.pack(">hhih", api_key, api_version, self.corr, len(client_id)) + client_id
        if flexible_header:
            header += b"\x00"
        payload = header + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", self._recv_exact(4))
        data = self._recv_exact(size)
        (corr,) = struct.unpack(">i", data[:4])
        assert corr == self.corr, f"correlation id mismatch: sent {self.corr}, got {corr}"
        return data[4:]

    def fetch_api_versions(self) -> dict:
        resp = ApiVersionsResponse_v0.decode(io.BytesIO(self.roundtrip(API_VERSIONS, 0, b"")))
        assert resp.error_code == 0, f"ApiVersions v0 error {resp.error_code}"
        return {k: (lo, hi) for k, lo, hi in resp.api_versions}

    def pick_version(self, api_key: int, client_lo: int, client_hi: int) -> int:
        assert api_key in self.api_versions, f"broker does not advertise api key {api_key}"
        lo, hi = self.api_versions[api_key]
        v = min(hi, client_hi)
        assert v >= max(lo, client_lo), (
            f"no common version for api {api_key}: broker {lo}..{hi}, test client {client_lo}..{client_hi}"
        )
        return v

    # --- typed helpers, each returning a list of (topic, partition, error_code, extra...) ---

    def produce(self, topic: str, partition: int, records: bytes, acks: int = -1):
        v = self.pick_version(API_PRODUCE, 3, 8)
        req = ProduceRequest[v](None, acks, 10_000, [(topic, [(partition, records)])])
        resp = ProduceResponse[v].decode(io.BytesIO(self.roundtrip(API_PRODUCE, v, req.encode())))
        return [(t, p[0], p[1], p[2]) for t, parts in resp.topics for p in parts]

    def fetch(self, topic: str, partition: int, offset: int, max_bytes: int = 1 << 20):
        v = self.pick_version(API_FETCH, 4, 11)
        if v == 4:
            parts = [(partition, offset, max_bytes)]
            req = FetchRequest[v](-1, 100, 0, 50 << 20, 0, [(topic, parts)])
        elif v <= 6:
            parts = [(partition, offset, -1, max_bytes)]
            req = FetchRequest[v](-1, 100, 0, 50 << 20, 0, [(topic, parts)])
        elif v <= 8:
            parts = [(partition, offset, -1, max_bytes)]
            req = FetchRequest[v](-1, 100, 0, 50 << 20, 0, 0, -1, [(topic, parts)], [])
        else:
            parts = [(partition, -1, offset, -1, max_bytes)]
            args = [-1, 100, 0, 50 << 20, 0, 0, -1, [(topic, parts)], []]
            if v == 11:
                args.append("")
            req = FetchRequest[v](*args)
        resp = FetchResponse[v].decode(io.BytesIO(self.roundtrip(API_FETCH, v, req.encode())))
        # partition tuples start with (partition, error_code, highwater, ...) and end with records
        return [(t[0], p[0], p[1], p[2], p[-1]) for t in resp.topics for p in t[1]]

    def list_offsets(self, topic: str, partition: int, timestamp: int):
        v = self.pick_version(API_LIST_OFFSETS, 1, 5)
        if v == 1:
            req = ListOffsetsRequest[v](-1, [(topic, [(partition, timestamp)])])
        elif v <= 3:
            req = ListOffsetsRequest[v](-1, 0, [(topic, [(partition, timestamp)])])
        else:
            req = ListOffsetsRequest[v](-1, 0, [(topic, [(partition, -1, timestamp)])])
        resp = ListOffsetsResponse[v].decode(io.BytesIO(self.roundtrip(API_LIST_OFFSETS, v, req.encode())))
        out = []
        for t, parts in resp.topics:
            for p in parts:
                # v1: (partition, error, timestamp, offset); v4+: (..., leader_epoch)
                out.append((t, p[0], p[1], p[2], p[3]))
        return out


def record_batch(values: list[bytes], key: bytes | None = None, timestamp: int | None = None) -> bytes:
    """A magic-v2, uncompressed record batch holding ``values``."""
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=16 << 20)
    ts = timestamp if timestamp is not None else now_ms()
    for v in values:
        b.append(timestamp=ts, key=key, value=v, headers=[])
    b.close()
    return b.buffer()
