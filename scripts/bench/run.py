#!/usr/bin/env python3
"""strand's performance suite: W1 (fixed rate), W2 (maximum sustainable rate), W3 (tailing vs
catch-up), W5 (many partitions) and W7 (small messages), each in three broker modes (strict,
buffered without fsync, buffered with fsync per batch), the broker and the load generator
pinned to different cores. See docs/benchmarks.md.

    scripts/bench/run.py                      # everything, full length (about an hour)
    scripts/bench/run.py --quick              # a smoke run of about 10 minutes
    scripts/bench/run.py --workloads W1,W3 --modes strict,buffered-nofsync
    scripts/bench/run.py --workloads W1,W2 --client protocol   # the broker, not the client, as the limit

Writes OUT/summary.json, OUT/tables.md (paste into docs/benchmarks.md), OUT/benchmarks/*.png
(the plots the tables link) and every broker's config and log and every bench's output under
OUT/<workload>/<mode>/. Progress goes to stderr. Python 3.10+, standard library only; run as
root for W3 (page cache drop, memory cgroup).
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import report
import workloads
from broker import MODES
from suite import Session, Settings, log

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = ["W1", "W2", "W3", "W5", "W7"]


def parse_args(argv: list[str]) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short durations and a small backlog: proves the suite works, measures little")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma separated, of %(default)s")
    p.add_argument("--modes", default=",".join(MODES), help="comma separated, of %(default)s")
    p.add_argument("--out", type=Path, help="result directory (default results/<timestamp>)")
    p.add_argument("--strand", type=Path, default=REPO / "target/release/strand", help="the strand binary (default %(default)s)")
    p.add_argument("--data-root", type=Path, default=Path("/var/tmp/strand-bench"), help="where brokers keep data; on the disk under test")
    p.add_argument("--listen", default="127.0.0.1:19092", help="broker address (default %(default)s)")
    p.add_argument("--broker-cores", default="0", help="taskset list for the broker (default %(default)s)")
    p.add_argument("--client-cores", default="1", help="taskset list for strand bench (default %(default)s)")
    p.add_argument("--shards", type=int, default=1, help="broker shards; match --broker-cores (default %(default)s)")
    p.add_argument("--rate", type=float, help="W1/W3/W5 rate in msg/s (default: half the slowest mode's probed max)")
    p.add_argument("--small-rate", type=float, help="W7 rate in msg/s (default: the W1 rate)")
    p.add_argument("--duration", type=float, help="seconds of each W1/W3/W5/W7 measurement (default 60, quick 5)")
    p.add_argument("--backlog-mb", type=int, help="W3 backlog in MiB (default 4096, quick 512)")
    p.add_argument("--memory-limit-mb", type=int, help="W3 broker memory cgroup limit in MiB, 0 = none (default 1024, quick 256)")
    p.add_argument("--w1-rounds", type=int, help="W1 rounds sharing --duration per mode, each going through every mode "
                   "in turn, so a slow minute of the disk falls on every mode alike (default 3, quick 1)")
    p.add_argument("--w3-rounds", type=int, help="W3 baseline/catch-up alternations sharing --duration per side (default 4, quick 1)")
    p.add_argument("--client", choices=["librdkafka", "protocol"], default="librdkafka",
                   help="the load generator's producers and consumers: librdkafka, or the Kafka protocol spoken by "
                        "strand bench itself with librdkafka's batching, which leaves the broker and not the client "
                        "core as the limit (default %(default)s)")
    p.add_argument("--w3-catch-up-client", choices=["librdkafka", "protocol"], default="librdkafka",
                   help="what drains W3's backlog: a librdkafka consumer, or Fetch requests whose records are only "
                        "counted, which leaves the load generator's core to the tailing clients (default %(default)s)")
    p.add_argument("--keep-data", action="store_true", help="keep the brokers' data directories (W1: its last round's)")
    a = p.parse_args(argv)
    workloads_, modes = a.workloads.upper().split(","), a.modes.split(",")
    unknown = [x for x in workloads_ if x not in WORKLOADS] + [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"unknown workloads or modes: {', '.join(unknown)}")
    out = a.out or REPO / "results" / time.strftime("%Y%m%d-%H%M%S")
    s = Settings(strand=a.strand, out=out, data_root=a.data_root, listen=a.listen, broker_cores=a.broker_cores,
                 client_cores=a.client_cores, shards=a.shards, modes=modes, quick=a.quick, keep_data=a.keep_data,
                 w1_rate=a.rate, w7_rate=a.small_rate)
    if a.quick:
        s.probe_s, s.measure_s, s.step_s, s.warmup_s = 4, 5, 4, 1
        s.w3_backlog_mb, s.w3_memory_limit_mb, s.disk_test_mb, s.w2_steps_max, s.w3_rounds = 512, 256, 256, 6, 1
        s.w1_rounds = 1
    s.measure_s = a.duration or s.measure_s
    s.w3_backlog_mb = a.backlog_mb or s.w3_backlog_mb
    s.w3_memory_limit_mb = s.w3_memory_limit_mb if a.memory_limit_mb is None else a.memory_limit_mb
    s.w1_rounds = a.w1_rounds or s.w1_rounds
    s.w3_rounds = a.w3_rounds or s.w3_rounds
    s.w3_catch_up_client = a.w3_catch_up_client
    s.client = a.client
    s.workloads = workloads_
    return s


def run(session: Session) -> None:
    s, w = session.settings, session.results["workloads"]
    selected = s.workloads
    probed = {}
    if "W2" in selected or s.w1_rate is None:
        probed = workloads.probe(session)
        w["probe"] = {"max_messages_per_second": probed}
    rate = s.w1_rate or 0.5 * min(probed.values())
    log(f"fixed rate for W1/W3/W5: {rate:.0f} msg/s")
    if "W3" in selected:
        w["disk"] = workloads.disk_read_rate(session)
    if "W1" in selected:
        w["W1"] = workloads.w1(session, rate)
    if "W2" in selected:
        w["W2"] = workloads.w2(session, {m: 0.5 * probed[m] for m in s.modes})
    if "W3" in selected:
        w["W3"] = workloads.w3(session, rate)
    if "W5" in selected:
        w["W5"] = workloads.w5(session, rate)
    if "W7" in selected:
        w["W7"] = workloads.w7(session, s.w7_rate or rate)


def plots(session: Session) -> dict:
    """One plot per workload and mode, copied to OUT/benchmarks/; title -> link."""
    w, links = session.results["workloads"], {}
    for mode in session.settings.modes:
        steps = [i for i, st in enumerate(w.get("W2", {}).get("modes", {}).get(mode, {}).get("steps", []), 1) if st["passed"]]
        wanted = [("W1", f"W1/{mode}/e2e-1"), ("W3", f"W3/{mode}/catch-up"), ("W5", f"W5/{mode}-1024/e2e"), ("W7", f"W7/{mode}/e2e")]
        if steps:
            wanted.append(("W2", f"W2/{mode}/step-{steps[-1]:02d}"))
        for workload, name in wanted:
            link = session.copy_plot(name, name.replace("/", "-").lower())
            if link:
                # W1's plot is its first round's run.
                first_round = " (round 1)" if workload == "W1" and session.settings.w1_rounds > 1 else ""
                links[f"{workload} {mode}{first_round}"] = link
    return dict(sorted(links.items()))


def main(argv: list[str]) -> int:
    s = parse_args(argv)
    if not s.strand.exists():
        print(f"run.py: no strand binary at {s.strand}; build it with cargo build --release", file=sys.stderr)
        return 1
    session = Session(s)
    s.out.mkdir(parents=True, exist_ok=True)
    s.data_root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    session.results.update({
        "command": shlex.join(["scripts/bench/run.py", *argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": report.machine(s.strand, s.data_root),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(s).items()},
    })
    log(f"results in {s.out}; workloads {','.join(s.workloads)}; modes {','.join(s.modes)}")
    if report.online_discard(session.results["machine"]["data_disk_mount"]):
        log(f"warning: {s.data_root} is on a filesystem mounted with online discard; deleting a broker's data "
            "makes the device discard its blocks; on the bench VM, second-long stalls of the next run came only with "
            "discard (docs/benchmarks.md, Caveats)")
    failed = None
    try:
        run(session)
    except (RuntimeError, OSError) as e:
        failed = str(e)
        log(f"stopped: {e}")
    except KeyboardInterrupt:
        failed = "interrupted"
        log("interrupted; writing what was measured")
    session.results["wall_seconds"] = time.monotonic() - started
    session.results["error"] = failed
    session.results["targets"] = report.targets(session.results["workloads"])
    (s.out / "summary.json").write_text(json.dumps(session.results, indent=2, default=str))
    (s.out / "tables.md").write_text(report.markdown(session.results, plots(session)))
    log(f"wrote {s.out / 'summary.json'} and {s.out / 'tables.md'} ({session.results['wall_seconds'] / 60:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
