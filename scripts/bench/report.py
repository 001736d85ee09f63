"""The run's report: the machine, the targets (ratios within this one run) and Markdown
tables in the shape docs/benchmarks.md uses, plots copied to OUT/benchmarks/.
"""

import os
import platform
import re
import subprocess
from pathlib import Path

STRICT, NOFSYNC, FSYNC = "strict", "buffered-nofsync", "buffered-fsync"


def dig(results: dict, *keys):
    """results[k1][k2]... or None when any step is missing."""
    for key in keys:
        if not isinstance(results, dict) or results.get(key) is None:
            return None
        results = results[key]
    return results


def target(workload: str, text: str, value, threshold: float, at_least: bool) -> dict:
    met = None if value is None else (value >= threshold if at_least else value <= threshold)
    return {"workload": workload, "target": text, "value": value, "threshold": threshold, "met": met}


def quotient(a, b):
    return a / b if a is not None and b else None


def targets(w: dict) -> list[dict]:
    """The issue's targets, evaluated for strict mode; a value is None when its inputs are missing."""
    w2 = lambda m: dig(w, "W2", "modes", m, "max_sustainable", "messages_per_second")
    w1 = lambda m, p: dig(w, "W1", "modes", m, "e2e_ms", p)
    strict3 = dig(w, "W3", "modes", STRICT) or {}
    disk = dig(w, "disk", "mib_per_second")
    w5 = lambda n, k: dig(w, "W5", "modes", STRICT, n, k) or dig(w, "W5", "modes", STRICT, str(n), k)
    return [
        target("W2", "strict max sustainable rate >= 0.8x buffered-nofsync", quotient(w2(STRICT), w2(NOFSYNC)), 0.8, True),
        target("W2", "strict max sustainable rate >= 2x buffered-fsync", quotient(w2(STRICT), w2(FSYNC)), 2.0, True),
        target("W1", "strict e2e p99 <= 1.5x buffered-nofsync p99", quotient(w1(STRICT, "p99"), w1(NOFSYNC, "p99")), 1.5, False),
        target("W1", "strict e2e p99.9 <= buffered-fsync p99.9", quotient(w1(STRICT, "p99_9"), w1(FSYNC, "p99_9")), 1.0, False),
        target("W3", "strict tailing p99 rises <= 1.5x during catch-up", strict3.get("tailing_p99_rise"), 1.5, False),
        target("W3", "strict produce p99 rises <= 1.3x during catch-up", strict3.get("produce_p99_rise"), 1.3, False),
        target("W3", "strict catch-up drain >= 0.5x the disk's O_DIRECT read rate",
               quotient(strict3.get("drain_mib_per_second"), disk), 0.5, True),
        target("W5", "strict max rate, 1024 partitions >= 0.8x 16 partitions",
               quotient(w5(1024, "max_messages_per_second"), w5(16, "max_messages_per_second")), 0.8, True),
        target("W5", "strict memory per idle partition (1024 partitions) <= 200 KiB", w5(1024, "idle_kib_per_partition"), 200.0, False),
    ]


def machine(strand: Path, data_root: Path) -> dict:
    def run(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "?"

    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem = next((l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")), "0")
    os_name = next((l.split("=", 1)[1].strip('"') for l in Path("/etc/os-release").read_text().splitlines()
                    if l.startswith("PRETTY_NAME=")), "?") if Path("/etc/os-release").exists() else "?"
    device = run("df", "--output=source,fstype", str(data_root)).splitlines()[-1:]
    repo = Path(__file__).resolve().parents[2]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / (1 << 20), 1),
        "os": f"{os_name}, kernel {platform.release()}",
        "data_disk": f"{' '.join(device[0].split()) if device else '?'} at {data_root}",
        "data_disk_mount": run("findmnt", "-no", "OPTIONS", "--target", str(data_root)),
        "strand": run(str(strand), "--version"),
        "commit": run("git", "-C", str(repo), "describe", "--always", "--dirty"),
    }


def online_discard(mount_options: str) -> bool:
    """Whether a filesystem's mount options (findmnt's OPTIONS) include online discard: ext4's and
    xfs's `discard`, btrfs's `discard=async` or `discard=sync`."""
    return any(o == "discard" or o.startswith("discard=") for o in mount_options.split(","))


def ms(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def num(x, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def latency_cells(f: dict) -> list[str]:
    e = f["e2e_ms"]
    return [ms(e["p50"]), ms(e["p99"]), ms(e["p99_9"]), ms(e["max"])]


def cost_cells(f: dict) -> list[str]:
    return [num(f.get("cpu_seconds_per_gb"), 1), num(f.get("peak_rss_mib"), 0)]


LATENCY = ["e2e p50 ms", "p99 ms", "p99.9 ms", "max ms"]


def first_failure_above(steps: list[dict], rate: float | None) -> dict:
    """The last run of the lowest W2 rate above `rate` that was not sustained ({} if none)."""
    failed = [st for st in steps if not st["passed"] and (rate is None or st["rate"] > rate)]
    lowest = min((st["rate"] for st in failed), default=None)
    return next((st for st in reversed(failed) if st["rate"] == lowest), {})


def busy_cells(step: dict) -> str:
    client, broker = step.get("client_busy_cores"), step.get("broker_busy_cores")
    if client is None and broker is None:
        return "-"
    return f"{num(client, 2)} / {num(broker, 2)}"


def commands(results: dict) -> str:
    """The strict mode's commands (the other modes differ in broker.toml only), OUT for the
    result directory; of W2's ladder only the first step, of W1's rounds only the first."""
    s = results["settings"]
    lines = [f"taskset -c {s['broker_cores']} strand serve --config OUT/<workload>/<mode>/broker.toml "
             f"--data-dir {s['data_root']}/<workload>-<mode> --listen {s['listen']} --shards {s['shards']}"]
    for name, command in results.get("commands", []):
        later_round = name.startswith("W1/") and not name.endswith("e2e-1")
        if "/strict" in name and not later_round and not (name.startswith("W2/") and not name.endswith("step-01")):
            lines.append(re.sub(r"--broker-pid \d+", "--broker-pid PID", command.replace(s["out"], "OUT").replace(s["strand"], "strand")))
    return "\nCommands (strict mode; W3 also drops the page cache between fill and scenario):\n\n```sh\n" + "\n".join(lines) + "\n```\n"


def markdown(results: dict, plots: dict) -> str:
    s, w = results["settings"], results["workloads"]
    out = ["### Machine\n\n", table(["machine", ""], [[k, str(v)] for k, v in results["machine"].items()])]
    out.append(f"\nDriver: `{results['command']}` ({results['started']}, {results['wall_seconds'] / 60:.1f} min). "
               f"Broker on cores {s['broker_cores']} (--shards {s['shards']}), load generator on cores {s['client_cores']} "
               f"with {s.get('client', 'librdkafka')} clients; "
               f"{s['partitions']} partitions, {s['message_size']} B values, acks=all unless stated. "
               "Every `strand bench` command is in `summary.json` and next to its output.\n")
    out.append(commands(results))
    if "W1" in w:
        w1 = w["W1"]
        rows = [[m, num(f["messages_per_second"]), *latency_cells(f), ms(f["produce_ms"]["p99"]), *cost_cells(f),
                 ", ".join(f"{ms(r['e2e_ms']['p99'])} / {ms(r['e2e_ms']['p99_9'])}" for r in f.get("rounds", []))]
                for m, f in w1["modes"].items()]
        rounds = w1.get("rounds", 1)
        out += [f"\n### W1 fixed rate: {w1['rate']:,.0f} msg/s\n\n",
                table(["mode", "msg/s", *LATENCY, "produce p99 ms", "CPU s/GB", "peak RSS MiB", "e2e p99 / p99.9 ms by round"], rows),
                f"\nEach mode ran {rounds} round(s) of {w1.get('round_seconds', 0):g} s, every round going through the "
                "modes in turn (order rotated each round) on a fresh broker; the latencies are the rounds' histograms "
                "merged.\n"]
    if "W2" in w:
        rows = []
        for m, f in w["W2"]["modes"].items():
            b = f["max_sustainable"] or {}
            rows.append([m, num(b.get("messages_per_second")), num(b.get("mb_per_second"), 1),
                         ms(dig(b, "e2e_ms", "p99")), str(len(f["steps"])), busy_cells(b),
                         busy_cells(first_failure_above(f["steps"], b.get("rate"))), *cost_cells(f)])
        out += [f"\n### W2 maximum sustainable rate (e2e p99 <= {w['W2']['p99_ms_max']:.0f} ms)\n\n",
                table(["mode", "msg/s", "MiB/s", "e2e p99 ms", "steps", "cores busy at it (client / broker)",
                       "at the lowest rate not sustained", "CPU s/GB", "peak RSS MiB"], rows),
                "\nCores busy: each side's CPU while the step measured, in cores' worth of its one core. Several "
                "threads share each core, so latency climbs before a side reaches 1.00; the busier side at the "
                "failed step is the likelier limit.\n"]
    if "W3" in w:
        disk = dig(w, "disk", "mib_per_second")
        rows = [[m, f"{num(f['memory_limit_mib'])} (peak {num(f.get('cgroup_peak_mib'))})" if f["memory_limit_mib"] else "none",
                 ms(f["tailing_p99_ms"]["baseline"]), ms(f["tailing_p99_ms"]["during_catch_up"]), num(f["tailing_p99_rise"], 2),
                 ms(f["produce_p99_ms"]["baseline"]), ms(f["produce_p99_ms"]["during_catch_up"]), num(f["produce_p99_rise"], 2),
                 num(f["drain_mib_per_second"], 1), num(quotient(f["drain_mib_per_second"], disk), 2)]
                for m, f in w["W3"]["modes"].items()]
        client = next(iter(w["W3"]["modes"].values()), {}).get("catch_up_client", "librdkafka")
        out += [f"\n### W3 tailing vs catch-up: {w['W3']['rate']:,.0f} msg/s, {w['W3']['backlog_mib']:,} MiB backlog, "
                f"catch-up client {client}\n\n",
                table(["mode", "memory limit MiB", "tailing p99 ms", "during catch-up", "rise", "produce p99 ms",
                       "during catch-up", "rise", "drain MiB/s", "drain / disk"], rows),
                f"\nDisk O_DIRECT sequential read (1 MiB reads, one in flight): {num(disk)} MiB/s"
                + (f" (dd {num(dig(w, 'disk', 'dd_mib_per_second'))}, fio {num(dig(w, 'disk', 'fio_mib_per_second'))})" if disk else "") + ".\n"]
    if "W5" in w:
        rows = [[m, str(n), num(r.get("created_kib_per_partition"), 1), num(r["idle_kib_per_partition"], 1),
                 num(r["loaded_kib_per_partition"], 1),
                 ms(r["fixed_rate"]["e2e_ms"]["p99"]), ms(r["fixed_rate"]["e2e_ms"]["p99_9"]), num(r["max_messages_per_second"]),
                 num(r["peak_rss_mib"])]
                for m, runs in w["W5"]["modes"].items() for n, r in runs.items()]
        out += [f"\n### W5 many partitions: {w['W5']['rate']:,.0f} msg/s in total, then max rate\n\n",
                table(["mode", "partitions", "KiB per partition created", "KiB per idle partition", "KiB per partition loaded", "e2e p99 ms",
                       "e2e p99.9 ms", "max msg/s", "peak RSS MiB"], rows)]
    if "W7" in w:
        rows = [[m, num(f["messages_per_second"]), *latency_cells(f), num(f["cpu_us_per_message"], 1), *cost_cells(f)]
                for m, f in w["W7"]["modes"].items()]
        out += [f"\n### W7 small messages: {w['W7']['message_size']} B values at {w['W7']['rate']:,.0f} msg/s\n\n",
                table(["mode", "msg/s", *LATENCY, "CPU us/msg", "CPU s/GB", "peak RSS MiB"], rows)]
    rows = [[t["workload"], t["target"], num(t["value"], 2),
             {True: "met", False: "**not met**", None: "not measured"}[t["met"]]] for t in results["targets"]]
    out += ["\n### Targets (ratios within this run)\n\n", table(["workload", "target", "value", "result"], rows)]
    if plots:
        out.append("\n### Plots\n\n" + "".join(f"- {title}: ![{title}]({link})\n" for title, link in plots.items()))
    return "".join(out)
