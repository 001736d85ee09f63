"""The broker under test: the three modes' configs, one pinned `strand serve` per measurement
with a fresh data directory, its CPU time and memory read from /proc, and (for W3) a memory
cgroup so that buffered mode's page cache cannot hold the whole backlog.

Only the broker joins the cgroup; the load generator runs outside it.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# log.flush.interval.messages for "never fsync": the largest value the config accepts. With
# log.flush.interval.ms at its default (i64::MAX too) no fdatasync is ever issued.
NO_FSYNC = 9223372036854775807


@dataclass(frozen=True)
class Mode:
    name: str
    io_mode: str
    flush_interval_messages: int
    summary: str

    def config(self) -> str:
        return (
            f"# strand bench suite, mode {self.name}: {self.summary}\n"
            f'log.io.mode = "{self.io_mode}"\n'
            f"log.flush.interval.messages = {self.flush_interval_messages}\n"
        )


MODES = {
    m.name: m
    for m in (
        Mode("strict", "direct", 1, "O_DIRECT writes, fdatasync per batch (strand's default)"),
        Mode("buffered-nofsync", "buffered", NO_FSYNC, "page-cache writes, never fsynced (Kafka's default)"),
        Mode("buffered-fsync", "buffered", 1, "page-cache writes, fdatasync per batch"),
    )
}

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # Fields after the command start at field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    """A kB figure from /proc/PID/status: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


class MemoryCgroup:
    """A child memory cgroup of the one this script runs in, with a hard limit (cgroup v2's
    memory.max, or v1's memory.limit_in_bytes). Page cache the broker fills is charged to it,
    so the limit bounds what buffered mode can keep cached."""

    def __init__(self, path: Path, limit_file: str):
        self.path = path
        self.limit_file = limit_file

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> "MemoryCgroup":
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            own[controllers] = path.lstrip("/")
        if v2.exists() and "memory" in v2.read_text().split():
            parent, limit_file = Path("/sys/fs/cgroup") / own.get("", ""), "memory.max"
        else:
            v1_key = next((k for k in own if "memory" in k.split(",")), None)
            if v1_key is None or not Path("/sys/fs/cgroup/memory").is_dir():
                raise OSError("no memory cgroup controller (neither v2 nor v1) is mounted")
            parent, limit_file = Path("/sys/fs/cgroup/memory") / own[v1_key], "memory.limit_in_bytes"
        path = parent / name
        path.mkdir(exist_ok=True)
        group = cls(path, limit_file)
        try:
            (path / limit_file).write_text(str(limit_bytes))
        except OSError:
            group.remove()
            raise
        return group

    def peak_bytes(self) -> int | None:
        """Most memory (RSS and page cache) the group was charged at once."""
        name = "memory.peak" if self.limit_file == "memory.max" else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def join_self(self) -> None:
        """Moves the calling process in; run in the broker's child before exec."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass


def drop_page_cache() -> None:
    """sync, then drop the clean page cache machine-wide (needs root)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


class Broker:
    """One `strand serve` pinned to the broker cores, with a fresh data directory."""

    def __init__(self, strand: Path, mode: Mode, run_dir: Path, data_dir: Path, listen: str, cores: str, shards: int,
                 cgroup: MemoryCgroup | None = None, extra_config: str = ""):
        self.strand, self.mode, self.listen, self.cores, self.shards = strand, mode, listen, cores, shards
        self.data_dir, self.cgroup = data_dir, cgroup
        run_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = run_dir / "broker.toml"
        self.config_path.write_text(mode.config() + extra_config)
        self.log_path = run_dir / "broker.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        command = ["taskset", "-c", self.cores, str(self.strand), "serve", "--config", str(self.config_path),
                   "--data-dir", str(self.data_dir.resolve()), "--listen", self.listen, "--shards", str(self.shards)]
        log = self.log_path.open("ab")
        join = self.cgroup.join_self if self.cgroup else None
        self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=join)
        log.close()
        host, port = self.listen.rsplit(":", 1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection((host, int(port)), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"broker did not listen on {self.listen} within {timeout_s:.0f} s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.process is not None, "broker not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return status_kib(self.pid, "VmHWM")

    def stop(self, keep_data: bool = False) -> int | None:
        """SIGTERM (a clean stop flushes and seals), SIGKILL after 60 s; then the data goes."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            code = self.process.returncode
            self.process = None
        if not keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return code
