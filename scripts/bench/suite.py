"""What every workload shares: the run's settings, progress lines on stderr, a broker per
(workload, mode) that is always stopped, and `strand bench` runs on the load-generator cores
with the broker's CPU time sampled around them.
"""

import contextlib
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from broker import MODES, Broker, MemoryCgroup

GB = 1e9


@dataclass
class Settings:
    strand: Path
    out: Path
    data_root: Path
    listen: str
    broker_cores: str
    client_cores: str
    shards: int
    modes: list[str]
    quick: bool
    workloads: list[str] = field(default_factory=list)
    keep_data: bool = False
    # Seconds of each measurement and its warmup; set from --quick unless given.
    probe_s: float = 20
    measure_s: float = 60
    step_s: float = 30
    warmup_s: float = 5
    partitions: int = 16
    message_size: int = 1024
    small_message_size: int = 100
    w1_rate: float | None = None
    # W1 runs measure_s per mode in this many rounds, each going through every mode in turn.
    w1_rounds: int = 3
    w7_rate: float | None = None
    w2_p99_ms_max: float = 50.0
    w2_step_factor: float = 1.25
    # Bisection steps after the climb (see workloads.Ladder).
    w2_refine_steps: int = 2
    w2_steps_max: int = 14
    w3_backlog_mb: int = 4096
    w3_memory_limit_mb: int = 1024
    # Baseline and catch-up alternate this many times, each measure_s / w3_rounds long.
    w3_rounds: int = 4
    # The load generator's clients: "librdkafka" or "protocol" (strand bench --client).
    client: str = "librdkafka"
    # What drains the backlog: "librdkafka" or "protocol" (strand bench --catch-up-client).
    w3_catch_up_client: str = "librdkafka"
    w5_partitions: list[int] = field(default_factory=lambda: [16, 256, 1024])
    disk_test_mb: int = 2048


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Session:
    """One suite run: its settings, result directory and the figures collected so far."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.results: dict = {"settings": {}, "workloads": {}}
        self.plots: list[tuple[str, Path]] = []
        self.results["commands"] = []

    def dir(self, *parts: str) -> Path:
        path = self.settings.out.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def broker(self, workload: str, mode: str, memory_limit_mb: int = 0, label: str | None = None):
        """A fresh broker in `mode` for one measurement, stopped (and its data removed) after;
        its config and log go to OUT/WORKLOAD/LABEL (LABEL defaults to the mode)."""
        s = self.settings
        label = label or mode
        cgroup = None
        if memory_limit_mb > 0:
            try:
                cgroup = MemoryCgroup.create(f"strand-bench-{workload.lower()}-{label}", memory_limit_mb << 20)
            except OSError as e:
                log(f"{workload} {label}: no memory cgroup ({e}); running without a memory limit")
        broker = Broker(s.strand, MODES[mode], self.dir(workload, label), s.data_root / f"{workload}-{label}",
                        s.listen, s.broker_cores, s.shards, cgroup)
        try:
            broker.start()
            log(f"{workload} {label}: broker pid {broker.pid} on cores {s.broker_cores}"
                + (f", memory cgroup {cgroup.path} limit {memory_limit_mb} MiB" if cgroup else ""))
            yield broker
        finally:
            code = broker.stop(keep_data=s.keep_data)
            if code not in (0, None):
                log(f"{workload} {label}: broker exited with {code}; see {broker.log_path}")
            if cgroup:
                cgroup.remove()

    def bench(self, broker: Broker, name: str, args: list[str], plot: bool = True) -> dict:
        """Runs `strand bench ARGS` on the client cores with --json (and --plot), the table kept
        in NAME.txt; returns the JSON plus the broker's CPU seconds spent meanwhile."""
        s = self.settings
        run_dir = self.dir(*name.split("/")[:-1])
        stem = run_dir / name.split("/")[-1]
        command = ["taskset", "-c", s.client_cores, str(s.strand), "bench", *args,
                   "--brokers", s.listen, "--broker-pid", str(broker.pid), "--json", f"{stem}.json"]
        if plot:
            command += ["--plot", f"{stem}.png"]
        cpu_before = broker.cpu_seconds()
        started = time.monotonic()
        with open(f"{stem}.txt", "w") as table:
            table.write("$ " + " ".join(command) + "\n\n")
            table.flush()
            done = subprocess.run(command, stdout=table, stderr=subprocess.PIPE, text=True)
        if not broker.alive():
            raise RuntimeError(f"the broker died during {name}; see {broker.log_path}")
        cpu = broker.cpu_seconds() - cpu_before
        if done.returncode != 0:
            raise RuntimeError(f"strand bench failed ({name}): {done.stderr.strip()[-500:]}")
        doc = json.loads(Path(f"{stem}.json").read_text())
        doc["broker_cpu_seconds"] = cpu
        doc["wall_seconds"] = time.monotonic() - started
        doc["command"] = " ".join(command)
        self.results["commands"].append([name, doc["command"]])
        if plot:
            self.plots.append((name, Path(f"{stem}.png")))
        return doc

    def delete_topic(self, broker: Broker, topic: str, timeout_s: float = 60.0) -> None:
        """Deletes `topic` and waits until its partition directories are gone, so a ladder's
        steps do not fill the disk (W2 at 400,000 msg/s writes 14 GB a step)."""
        s = self.settings
        try:
            done = subprocess.run([str(s.strand), "topic", "delete", topic, "--brokers", s.listen],
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log(f"deleting topic {topic} took over {timeout_s:.0f} s; going on")
            return
        if done.returncode != 0:
            log(f"deleting topic {topic} failed, going on: {done.stderr.strip()[-300:]}")
            return
        deadline = time.monotonic() + timeout_s
        while any(broker.data_dir.glob(f"{topic}-*")):
            if time.monotonic() > deadline:
                log(f"topic {topic}'s files were still in {broker.data_dir} {timeout_s:.0f} s after deleting it; going on")
                return
            time.sleep(0.2)

    def copy_plot(self, source_name: str, target: str) -> str | None:
        """Copies a plot to OUT/benchmarks/TARGET.png (the layout docs/ uses); its doc link."""
        for name, path in self.plots:
            if name == source_name and path.exists():
                shutil.copy(path, self.dir("benchmarks") / f"{target}.png")
                return f"benchmarks/{target}.png"
        return None


def percentiles_ms(latency: dict | None) -> dict:
    p = (latency or {}).get("percentiles") or {}
    return {k: p.get(k, 0) / 1000.0 for k in ("p50", "p99", "p99_9", "max")}


QUANTILES = {"p50": 0.5, "p99": 0.99, "p99_9": 0.999}


def merged_latency(latencies: list[dict | None]) -> dict:
    """Several runs' latency as one (`strand bench --json` latency objects): their histograms'
    recorded values summed, and the percentiles of that, as `strand bench` takes them
    (HdrHistogram's value at quantile: the first value whose cumulative count reaches
    ceil(q * count))."""
    counts: dict[int, int] = {}
    for latency in latencies:
        for value, count in ((latency or {}).get("histogram") or {}).get("values") or []:
            counts[value] = counts.get(value, 0) + count
    total = sum(counts.values())
    percentiles = {"count": total}
    if total:
        values = sorted(counts.items())
        for name, q in QUANTILES.items():
            need, seen = max(1, math.ceil(q * total)), 0
            for value, count in values:
                seen += count
                if seen >= need:
                    percentiles[name] = value
                    break
        percentiles["max"] = values[-1][0]
    return {"percentiles": percentiles}


def merged_phase_figures(phases: list[dict]) -> dict:
    """`phase_figures` of several runs of one phase taken as one: latencies from the merged
    histograms, rates and busy cores weighted by each run's seconds, failures summed."""
    figures = [phase_figures(ph) for ph in phases]
    seconds = [(ph.get("produce") or {}).get("seconds", 0.0) for ph in phases]

    def weighted(key: str) -> float | None:
        known = [(f[key], t) for f, t in zip(figures, seconds) if f[key] is not None]
        return sum(v * t for v, t in known) / (sum(t for _, t in known) or 1.0) if known else None

    merged = {
        "messages_per_second": weighted("messages_per_second"),
        "mb_per_second": weighted("mb_per_second"),
        "failed": sum(f["failed"] for f in figures),
        "not_received": sum(f["not_received"] for f in figures),
        "produce_ms": percentiles_ms(merged_latency([(ph.get("produce") or {}).get("latency") for ph in phases])),
        "e2e_ms": percentiles_ms(merged_latency([(ph.get("end_to_end") or {}).get("latency") for ph in phases])),
        "client_busy_cores": weighted("client_busy_cores"),
        "broker_busy_cores": weighted("broker_busy_cores"),
    }
    merged["rounds"] = [{"e2e_ms": f["e2e_ms"], "produce_ms": f["produce_ms"]} for f in figures]
    return merged


def produced_bytes(doc: dict) -> int:
    """Every acknowledged record of the run (warmup included: the broker's CPU covers it)."""
    size = doc["settings"]["message_size"]
    return sum((ph.get("produce") or {}).get("acked", 0) for ph in doc["phases"]) * size


def produced_messages(doc: dict) -> int:
    return sum((ph.get("produce") or {}).get("acked", 0) for ph in doc["phases"])


def phase_figures(phase: dict) -> dict:
    """Throughput and latency of one phase: produce ack and end-to-end percentiles in ms."""
    produce = phase.get("produce") or {}
    e2e = phase.get("end_to_end") or {}
    lost = produce.get("measured_messages", 0) - e2e.get("measured_messages", 0) if e2e else 0
    return {
        "messages_per_second": produce.get("messages_per_second", 0.0),
        "mb_per_second": produce.get("mb_per_second", 0.0),
        "failed": produce.get("failed", 0),
        "not_received": max(lost, 0),
        "produce_ms": percentiles_ms(produce.get("latency")),
        "e2e_ms": percentiles_ms(e2e.get("latency")),
        # Each side's CPU over the measured window (`--broker-pid`), in cores' worth.
        "client_busy_cores": (phase.get("client_cpu") or {}).get("busy_cores"),
        "broker_busy_cores": (phase.get("broker_cpu") or {}).get("busy_cores"),
    }


def cost_figures(cpu_seconds: float, messages: int, bytes_: int, peak_rss_kib: int) -> dict:
    return {
        "broker_cpu_seconds": cpu_seconds,
        "cpu_seconds_per_gb": cpu_seconds / (bytes_ / GB) if bytes_ else None,
        "cpu_us_per_message": cpu_seconds * 1e6 / messages if messages else None,
        "peak_rss_mib": peak_rss_kib / 1024.0,
    }
