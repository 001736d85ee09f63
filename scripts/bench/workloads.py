"""The workloads. Each runs every selected mode on a fresh broker and returns its figures;
latencies are milliseconds, rates messages (or MiB) per second.

probe  max-rate produce per mode: W1's rate is half the slowest mode's, W2 starts from it
W1     fixed rate, 1 KiB values: end-to-end latency, in rounds that go through the modes in turn
W2     W1 stepped up (x1.25) until end-to-end p99 passes 50 ms or the rate is not kept, twice;
       then bisected between the last rate kept and that one; each step in a fresh topic
W3     W1 plus a consumer draining a backlog from offset 0, after the page cache was dropped; the
       two alternate in rounds
W5     16, 256, 1024 partitions at W1's rate, then at max rate; memory per partition
W7     100-byte values at W1's message rate: CPU per message
disk   the disk's O_DIRECT sequential read rate (1 MiB reads, one in flight: the catch-up
       reader's pattern), with dd and, when installed, fio
"""

import json
import subprocess
import time

from broker import drop_page_cache
from suite import Session, cost_figures, log, merged_phase_figures, phase_figures, produced_bytes, produced_messages


def load(s, topic: str, partitions: int | None = None, size: int | None = None, warmup: float | None = None) -> list[str]:
    return ["-t", topic, "-p", str(partitions or s.partitions), "-s", str(size or s.message_size), "--acks", "all",
            "--warmup", f"{s.warmup_s if warmup is None else warmup}s", "--client", s.client]


def e2e(rate: float, seconds: float) -> list[str]:
    return ["e2e", "--rate", f"{rate:.0f}", "--duration", f"{seconds:g}s"]


def single(session: Session, broker, name: str, args: list[str]) -> dict:
    """One `strand bench` run: its first phase's figures and the broker's cost."""
    doc = session.bench(broker, name, args)
    figures = phase_figures(doc["phases"][-1])
    figures.update(cost_figures(doc["broker_cpu_seconds"], produced_messages(doc), produced_bytes(doc), broker.peak_rss_kib()))
    figures["command"] = doc["command"]
    return figures


def probe(session: Session) -> dict:
    s = session.settings
    rates = {}
    for mode in s.modes:
        with session.broker("probe", mode) as broker:
            args = ["produce", *load(s, "probe"), "--duration", f"{s.probe_s}s"]
            f = single(session, broker, f"probe/{mode}/produce", args)
        rates[mode] = f["messages_per_second"]
        log(f"probe {mode}: max rate {rates[mode]:.0f} msg/s ({f['mb_per_second']:.1f} MiB/s), produce p99 {f['produce_ms']['p99']:.1f} ms")
    return rates


def w1(session: Session, rate: float) -> dict:
    """Each mode measures measure_s at `rate` in all, in w1_rounds rounds; a round runs every
    mode once on a fresh broker, in an order rotated each round, so a slow minute of the disk
    (this VM's disk stalls for 50-100 ms now and then) falls on every mode alike instead of on
    whichever ran then. A mode's figures merge its rounds' histograms; each round's are kept."""
    s = session.settings
    rounds = max(1, s.w1_rounds)
    round_s = s.measure_s / rounds
    docs: dict[str, list[dict]] = {mode: [] for mode in s.modes}
    peak_rss: dict[str, int] = {mode: 0 for mode in s.modes}
    for r in range(rounds):
        order = s.modes[r % len(s.modes):] + s.modes[:r % len(s.modes)]
        for mode in order:
            log(f"W1 {mode}: round {r + 1}/{rounds}, e2e at {rate:.0f} msg/s for {round_s:g} s")
            with session.broker("W1", mode) as broker:
                doc = session.bench(broker, f"W1/{mode}/e2e-{r + 1}", [*e2e(rate, round_s), *load(s, "w1")])
                peak_rss[mode] = max(peak_rss[mode], broker.peak_rss_kib())
            docs[mode].append(doc)
            e2e_ms = phase_figures(doc["phases"][-1])["e2e_ms"]
            log(f"W1 {mode}: round {r + 1} e2e p99 {e2e_ms['p99']:.2f} ms, p99.9 {e2e_ms['p99_9']:.2f} ms")
    modes = {}
    for mode in s.modes:
        figures = merged_phase_figures([doc["phases"][-1] for doc in docs[mode]])
        cpu = sum(doc["broker_cpu_seconds"] for doc in docs[mode])
        messages, bytes_ = sum(produced_messages(d) for d in docs[mode]), sum(produced_bytes(d) for d in docs[mode])
        figures.update(cost_figures(cpu, messages, bytes_, peak_rss[mode]))
        figures["commands"] = [doc["command"] for doc in docs[mode]]
        modes[mode] = figures
        log(f"W1 {mode}: {rounds} rounds merged, e2e p99 {figures['e2e_ms']['p99']:.2f} ms, "
            f"p99.9 {figures['e2e_ms']['p99_9']:.2f} ms")
    return {"rate": rate, "rounds": rounds, "round_seconds": round_s, "modes": modes}


def step_passes(s, rate: float, f: dict) -> bool:
    return (f["e2e_ms"]["p99"] <= s.w2_p99_ms_max and f["messages_per_second"] >= 0.95 * rate
            and f["failed"] == 0 and f["not_received"] == 0)


class Ladder:
    """W2's search for a mode's maximum sustainable rate, as the rates to run and what each
    showed. It climbs from `start` by `factor` after each sustained step. A step that is not
    sustained is run once more (one stall on a busy machine should not end the search); a
    second failure ends the climb, or, while no step has been sustained, halves the rate (at
    most three times). It then bisects between the highest sustained rate and the lowest that
    failed twice, `refine` times or until the two are within 3%, so the result is not a whole
    climbing step (25%) below the mode's maximum. `max_steps` bounds the runs, retries
    included."""

    CLOSE_ENOUGH = 1.03
    HALVINGS_MAX = 3

    def __init__(self, start: float, factor: float, refine: int, max_steps: int):
        self.factor, self.refine_left, self.steps_left = factor, refine, max_steps
        self.rate: float | None = start
        self.sustained: float | None = None  # the highest rate sustained
        self.failed: float | None = None  # the lowest rate failed twice
        self.retried = False
        self.halvings = 0

    def record(self, sustained: bool) -> None:
        """What the step at `self.rate` showed; sets the next rate, or None when done."""
        rate = self.rate
        assert rate is not None, "the ladder has ended"
        self.steps_left -= 1
        bisecting = self.failed is not None
        if sustained:
            self.sustained, self.retried = max(rate, self.sustained or 0.0), False
        elif not self.retried:
            self.retried = True
        elif self.sustained is None and self.halvings < self.HALVINGS_MAX:
            self.rate, self.halvings, self.retried = rate / 2, self.halvings + 1, False
            return self._bounded()
        else:
            self.failed, self.retried = min(rate, self.failed or rate), False
        if self.retried:
            return self._bounded()  # the same rate once more
        if self.failed is None:
            self.rate = rate * self.factor
        else:
            if bisecting:
                self.refine_left -= 1
            low = self.sustained
            if low is None or self.refine_left <= 0 or self.failed / low <= self.CLOSE_ENOUGH:
                self.rate = None
            else:
                self.rate = (low + self.failed) / 2
        self._bounded()

    def _bounded(self) -> None:
        if self.steps_left <= 0:
            self.rate = None


def w2(session: Session, start_rates: dict) -> dict:
    s = session.settings
    modes = {}
    for mode in s.modes:
        ladder, best, steps = Ladder(start_rates[mode], s.w2_step_factor, s.w2_refine_steps, s.w2_steps_max), None, []
        with session.broker("W2", mode) as broker:
            cpu_before = broker.cpu_seconds()
            messages = bytes_ = 0
            while ladder.rate is not None:
                rate, step = ladder.rate, len(steps) + 1
                # Each step in a topic of its own, deleted after it: a fresh log every step, and
                # a long ladder at several hundred MB/s does not fill the disk.
                topic = f"w2-{step:02d}"
                doc = session.bench(broker, f"W2/{mode}/step-{step:02d}", [*e2e(rate, s.step_s), *load(s, topic)])
                messages, bytes_ = messages + produced_messages(doc), bytes_ + produced_bytes(doc)
                f = phase_figures(doc["phases"][-1])
                ok = step_passes(s, rate, f)
                steps.append({"rate": rate, "passed": ok, **f})
                log(f"W2 {mode}: {rate:.0f} msg/s -> {f['messages_per_second']:.0f} msg/s, e2e p99 {f['e2e_ms']['p99']:.2f} ms, "
                    f"cores busy: client {f['client_busy_cores'] or 0:.2f}, broker {f['broker_busy_cores'] or 0:.2f}: "
                    + ("sustained" if ok else "not sustained"))
                if ok and (best is None or f["messages_per_second"] > best["messages_per_second"]):
                    best = steps[-1]
                ladder.record(ok)
                if not s.keep_data:
                    session.delete_topic(broker, topic)
            cost = cost_figures(broker.cpu_seconds() - cpu_before, messages, bytes_, broker.peak_rss_kib())
        modes[mode] = {"max_sustainable": best, "steps": steps, **cost}
        if best:
            log(f"W2 {mode}: max sustainable {best['messages_per_second']:.0f} msg/s ({best['mb_per_second']:.1f} MiB/s)")
    return {"p99_ms_max": s.w2_p99_ms_max, "modes": modes}


def w3(session: Session, rate: float) -> dict:
    s = session.settings
    backlog_messages = (s.w3_backlog_mb << 20) // s.message_size
    modes = {}
    for mode in s.modes:
        with session.broker("W3", mode, memory_limit_mb=s.w3_memory_limit_mb) as broker:
            log(f"W3 {mode}: filling a {s.w3_backlog_mb} MiB backlog")
            fill = session.bench(broker, f"W3/{mode}/fill",
                                 ["produce", *load(s, "w3", warmup=0), "--messages", str(backlog_messages)], plot=False)
            dropped = try_drop_page_cache(f"W3 {mode}")
            # The drop also evicted the broker's and the client's code; let it fault back in.
            time.sleep(2)
            round_s = s.measure_s / s.w3_rounds
            log(f"W3 {mode}: {s.w3_rounds} rounds of tailing at {rate:.0f} msg/s for {round_s:g} s, then again while a "
                "consumer drains the backlog")
            doc = session.bench(broker, f"W3/{mode}/catch-up",
                                ["scenario", "catch-up", *load(s, "w3"), "--rate", f"{rate:.0f}", "--duration", f"{round_s:g}s",
                                 "--backlog-mb", str(s.w3_backlog_mb), "--rounds", str(s.w3_rounds),
                                 "--catch-up-client", s.w3_catch_up_client])
            cost = cost_figures(doc["broker_cpu_seconds"], produced_messages(doc), produced_bytes(doc), broker.peak_rss_kib())
            limited = broker.cgroup is not None
            cgroup_peak = broker.cgroup.peak_bytes() if limited else None
        summary = doc["summary"]
        tail, produce, drain = summary["tailing_e2e_us"], summary["produce_us"], summary.get("drain") or {}
        figures = {
            "fill_mb_per_second": fill["phases"][-1]["produce"]["mb_per_second"],
            "page_cache_dropped": dropped,
            "memory_limit_mib": s.w3_memory_limit_mb if limited else None,
            "cgroup_peak_mib": cgroup_peak / (1 << 20) if cgroup_peak else None,
            "tailing_p99_ms": {k: tail[k]["p99"] / 1000 for k in ("baseline", "during_catch_up")},
            "produce_p99_ms": {k: produce[k]["p99"] / 1000 for k in ("baseline", "during_catch_up")},
            "drain_mib_per_second": drain.get("mb_per_second", 0.0),
            "catch_up_client": s.w3_catch_up_client,
            "drain_passes": drain.get("passes", 0),
            "command": doc["command"],
            **cost,
        }
        figures["tailing_p99_rise"] = ratio(figures["tailing_p99_ms"]["during_catch_up"], figures["tailing_p99_ms"]["baseline"])
        figures["produce_p99_rise"] = ratio(figures["produce_p99_ms"]["during_catch_up"], figures["produce_p99_ms"]["baseline"])
        modes[mode] = figures
        log(f"W3 {mode}: tailing p99 {figures['tailing_p99_ms']['baseline']:.2f} -> {figures['tailing_p99_ms']['during_catch_up']:.2f} ms, "
            f"produce p99 {figures['produce_p99_ms']['baseline']:.2f} -> {figures['produce_p99_ms']['during_catch_up']:.2f} ms, "
            f"drain {figures['drain_mib_per_second']:.1f} MiB/s")
    return {"rate": rate, "backlog_mib": s.w3_backlog_mb, "modes": modes}


def try_drop_page_cache(what: str) -> bool:
    try:
        drop_page_cache()
        return True
    except OSError as e:
        log(f"{what}: could not drop the page cache ({e}); the backlog may be partly cached")
        return False


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def w5(session: Session, rate: float) -> dict:
    s = session.settings
    modes = {}
    for mode in s.modes:
        runs = {}
        for partitions in s.w5_partitions:
            with session.broker("W5", mode, label=f"{mode}-{partitions}") as broker:
                time.sleep(2)
                baseline = broker.rss_kib()
                create = ["taskset", "-c", s.client_cores, str(s.strand), "topic", "create", "w5", "-p", str(partitions),
                          "--brokers", s.listen]
                subprocess.run(create, check=True, stdout=subprocess.DEVNULL)
                time.sleep(3)
                created = broker.rss_kib()
                touch_every_partition(s, partitions)
                time.sleep(3)
                idle = broker.rss_kib()
                name = f"W5/{mode}-{partitions}"
                fixed = single(session, broker, f"{name}/e2e", [*e2e(rate, s.measure_s), *load(s, "w5", partitions)])
                loaded = broker.rss_kib()
                top = single(session, broker, f"{name}/max-rate", ["produce", *load(s, "w5", partitions), "--duration", f"{s.probe_s}s"])
            runs[partitions] = {
                "baseline_rss_kib": baseline,
                "created_kib_per_partition": (created - baseline) / partitions,
                "idle_kib_per_partition": (idle - baseline) / partitions,
                "loaded_kib_per_partition": (loaded - baseline) / partitions,
                "fixed_rate": fixed,
                "max_messages_per_second": top["messages_per_second"],
                "max_mb_per_second": top["mb_per_second"],
                "peak_rss_mib": top["peak_rss_mib"],
            }
            log(f"W5 {mode} {partitions} partitions: {runs[partitions]['idle_kib_per_partition']:.1f} KiB per idle partition, "
                f"e2e p99 {fixed['e2e_ms']['p99']:.2f} ms at {rate:.0f} msg/s, max {top['messages_per_second']:.0f} msg/s")
        modes[mode] = runs
    return {"rate": rate, "modes": modes}


def touch_every_partition(s, partitions: int) -> None:
    """Writes a few one-byte records to every partition of w5, so that each has opened its
    segment and writer (an idle partition, not a never-used one). Keyless records with sticky
    partitioning off land on a random partition each: 16 per partition on average leave a
    partition out with probability e^-16."""
    produce = ["taskset", "-c", s.client_cores, str(s.strand), "produce", "w5", "--brokers", s.listen, "--acks", "all",
               "-X", "sticky.partitioning.linger.ms=0"]
    subprocess.run(produce, input="x\n" * (16 * partitions), text=True, check=True, capture_output=True)


def w7(session: Session, rate: float) -> dict:
    s = session.settings
    modes = {}
    for mode in s.modes:
        with session.broker("W7", mode) as broker:
            modes[mode] = single(session, broker, f"W7/{mode}/e2e", [*e2e(rate, s.measure_s), *load(s, "w7", size=s.small_message_size)])
        log(f"W7 {mode}: {modes[mode]['cpu_us_per_message']:.1f} broker CPU us per message, e2e p99 {modes[mode]['e2e_ms']['p99']:.2f} ms")
    return {"rate": rate, "message_size": s.small_message_size, "modes": modes}


def disk_read_rate(session: Session) -> dict:
    """Writes a test file next to the data directories, then reads it back with O_DIRECT."""
    s = session.settings
    s.data_root.mkdir(parents=True, exist_ok=True)
    path = s.data_root / "direct-read-test"
    log(f"disk: writing {s.disk_test_mb} MiB to {path}, then reading it with O_DIRECT")
    subprocess.run(["dd", "if=/dev/urandom", f"of={path}", "bs=1M", f"count={s.disk_test_mb}", "oflag=direct",
                    "conv=fsync", "status=none"], check=True)
    result = {"file": str(path), "mib": s.disk_test_mb}
    try:
        started = time.monotonic()
        subprocess.run(["taskset", "-c", s.broker_cores, "dd", f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct",
                        "status=none"], check=True)
        result["dd_mib_per_second"] = s.disk_test_mb / (time.monotonic() - started)
        result["dd_command"] = f"dd if={path} of=/dev/null bs=1M iflag=direct"
        fio = ["fio", "--name=direct-read", f"--filename={path}", "--rw=read", "--bs=1M", "--direct=1",
               "--ioengine=psync", "--iodepth=1", f"--size={s.disk_test_mb}M", "--output-format=json"]
        try:
            done = subprocess.run(["taskset", "-c", s.broker_cores, *fio], check=True, capture_output=True, text=True)
            result["fio_mib_per_second"] = json.loads(done.stdout)["jobs"][0]["read"]["bw"] / 1024.0
            result["fio_command"] = " ".join(fio)
        except (OSError, subprocess.CalledProcessError, ValueError, KeyError) as e:
            log(f"disk: no fio figure ({e})")
    finally:
        path.unlink(missing_ok=True)
    result["mib_per_second"] = result.get("fio_mib_per_second", result["dd_mib_per_second"])
    log(f"disk: O_DIRECT sequential read {result['mib_per_second']:.0f} MiB/s")
    return result
