"""Unit tests of the suite's arithmetic and report, without a broker:
python3 -m unittest discover -s scripts/bench
"""

import os
import unittest

import report
from broker import MODES, cpu_seconds, status_kib
from suite import cost_figures, merged_phase_figures, phase_figures


def e2e_mode(p99: float, p99_9: float) -> dict:
    return {"messages_per_second": 1000.0, "produce_ms": {"p99": 1.0}, "cpu_seconds_per_gb": 2.0, "peak_rss_mib": 50.0,
            "e2e_ms": {"p50": 0.5, "p99": p99, "p99_9": p99_9, "max": p99_9 * 2}}


class MachineTests(unittest.TestCase):
    def test_online_discard_is_the_option_itself_not_nodiscard(self):
        self.assertTrue(report.online_discard("rw,relatime,discard,errors=remount-ro"))
        self.assertTrue(report.online_discard("rw,ssd,discard=async,space_cache=v2"))
        self.assertFalse(report.online_discard("rw,relatime,nodiscard"))
        self.assertFalse(report.online_discard("?"))


class TargetTests(unittest.TestCase):
    def test_ratios_are_judged_against_their_thresholds_in_the_right_direction(self):
        w = {"W1": {"rate": 1000, "modes": {"strict": e2e_mode(3.0, 4.0), "buffered-nofsync": e2e_mode(1.0, 2.0),
                                            "buffered-fsync": e2e_mode(5.0, 8.0)}},
             "W2": {"modes": {m: {"max_sustainable": {"messages_per_second": r}} for m, r in
                              [("strict", 90.0), ("buffered-nofsync", 100.0), ("buffered-fsync", 50.0)]}}}
        by_name = {t["target"]: t for t in report.targets(w)}
        self.assertIs(by_name["strict max sustainable rate >= 0.8x buffered-nofsync"]["met"], True)
        self.assertIs(by_name["strict max sustainable rate >= 2x buffered-fsync"]["met"], False)
        self.assertIs(by_name["strict e2e p99 <= 1.5x buffered-nofsync p99"]["met"], False)
        self.assertAlmostEqual(by_name["strict e2e p99.9 <= buffered-fsync p99.9"]["value"], 0.5)
        self.assertIs(by_name["strict e2e p99.9 <= buffered-fsync p99.9"]["met"], True)

    def test_targets_without_their_workload_are_not_measured(self):
        self.assertTrue(all(t["met"] is None and t["value"] is None for t in report.targets({})))

    def test_w5_targets_read_partition_counts_from_memory_or_from_json(self):
        runs = {16: {"max_messages_per_second": 100.0}, 1024: {"max_messages_per_second": 70.0, "idle_kib_per_partition": 20.0}}
        for keyed in (runs, {str(k): v for k, v in runs.items()}):
            by_workload = [t for t in report.targets({"W5": {"modes": {"strict": keyed}}}) if t["workload"] == "W5"]
            self.assertEqual([t["met"] for t in by_workload], [False, True])


class FigureTests(unittest.TestCase):
    def test_cpu_per_gb_and_per_message_divide_by_what_was_produced(self):
        f = cost_figures(cpu_seconds=3.0, messages=1_000_000, bytes_=2_000_000_000, peak_rss_kib=2048)
        self.assertAlmostEqual(f["cpu_seconds_per_gb"], 1.5)
        self.assertAlmostEqual(f["cpu_us_per_message"], 3.0)
        self.assertAlmostEqual(f["peak_rss_mib"], 2.0)
        self.assertIsNone(cost_figures(1.0, 0, 0, 0)["cpu_seconds_per_gb"])

    def test_records_acknowledged_but_not_received_are_counted(self):
        phase = {"produce": {"messages_per_second": 10.0, "measured_messages": 100, "latency": {"percentiles": {"p99": 2500}}},
                 "end_to_end": {"measured_messages": 97, "latency": {"percentiles": {"p99": 3000}}}}
        f = phase_figures(phase)
        self.assertEqual(f["not_received"], 3)
        self.assertAlmostEqual(f["produce_ms"]["p99"], 2.5)
        self.assertAlmostEqual(f["e2e_ms"]["p99"], 3.0)

    def test_each_sides_busy_cores_are_read_from_the_bench_and_the_broker(self):
        f = phase_figures({"produce": {}, "client_cpu": {"busy_cores": 0.97}, "broker_cpu": {"busy_cores": 0.75}})
        self.assertAlmostEqual(f["client_busy_cores"], 0.97)
        self.assertAlmostEqual(f["broker_busy_cores"], 0.75)
        self.assertIsNone(phase_figures({"produce": {}})["client_busy_cores"])

    def test_rounds_merge_their_histograms_and_weigh_rates_by_their_seconds(self):
        def phase(seconds, rate, values):
            latency = {"histogram": {"values": values}, "percentiles": {}}
            return {"produce": {"seconds": seconds, "messages_per_second": rate, "mb_per_second": rate / 1000,
                                "measured_messages": sum(c for _, c in values), "latency": latency},
                    "end_to_end": {"measured_messages": sum(c for _, c in values), "latency": latency}}
        # 1,000 samples: 990 at 1 ms, 9 at 5 ms and one at 90 ms, split unevenly over two rounds.
        quiet = phase(10.0, 100.0, [[1000, 600], [5000, 4]])
        stalled = phase(30.0, 200.0, [[1000, 390], [5000, 5], [90000, 1]])
        f = merged_phase_figures([quiet, stalled])
        self.assertEqual(f["e2e_ms"], {"p50": 1.0, "p99": 1.0, "p99_9": 5.0, "max": 90.0})
        self.assertAlmostEqual(f["messages_per_second"], 175.0)
        self.assertEqual([r["e2e_ms"]["max"] for r in f["rounds"]], [0.0, 0.0])  # the rounds' own percentiles, as given
        one = merged_phase_figures([stalled])
        self.assertEqual((one["e2e_ms"]["p99"], one["e2e_ms"]["p99_9"]), (5.0, 90.0))

    def test_this_process_has_cpu_time_and_a_peak_rss(self):
        self.assertGreaterEqual(cpu_seconds(os.getpid()), 0.0)
        self.assertGreater(status_kib(os.getpid(), "VmHWM"), 0)

    def test_modes_differ_only_in_io_mode_and_flush_interval(self):
        self.assertIn('log.io.mode = "direct"', MODES["strict"].config())
        self.assertIn("log.flush.interval.messages = 1\n", MODES["buffered-fsync"].config())
        self.assertIn("log.flush.interval.messages = 9223372036854775807", MODES["buffered-nofsync"].config())


class MarkdownTests(unittest.TestCase):
    def test_tables_and_target_results_are_rendered(self):
        results = {"settings": {"broker_cores": "0", "client_cores": "1", "shards": 1, "partitions": 16, "message_size": 1024,
                                "data_root": "/d", "listen": "h:1", "out": "/r/x", "strand": "/t/strand"},
                   "commands": [["W1/strict/e2e-1", "taskset -c 1 /t/strand bench e2e --broker-pid 42 --json /r/x/W1/strict/e2e-1.json"],
                                ["W1/strict/e2e-2", "later round not shown"], ["W1/buffered-fsync/e2e-1", "not shown"]],
                   "machine": {"cpu": "test"}, "command": "run.py --quick", "started": "now", "wall_seconds": 60.0,
                   "workloads": {"W1": {"rate": 1000, "rounds": 2, "round_seconds": 30.0, "modes": {"strict": e2e_mode(3.0, 4.0)}}}}
        results["workloads"]["W1"]["modes"]["strict"]["rounds"] = [{"e2e_ms": {"p99": 2.0, "p99_9": 3.0}},
                                                                   {"e2e_ms": {"p99": 4.0, "p99_9": 5.0}}]
        results["targets"] = report.targets(results["workloads"])
        text = report.markdown(results, {"W1 strict": "benchmarks/w1-strict-e2e.png"})
        self.assertIn("| strict | 1,000 | 0.50 | 3.00 | 4.00 | 8.00 | 1.00 | 2.0 | 50 | 2.00 / 3.00, 4.00 / 5.00 |", text)
        self.assertIn("Each mode ran 2 round(s) of 30 s", text)
        self.assertIn("not measured", text)
        self.assertIn("taskset -c 1 strand bench e2e --broker-pid PID --json OUT/W1/strict/e2e-1.json", text)
        self.assertNotIn("not shown", text)
        self.assertIn("![W1 strict](benchmarks/w1-strict-e2e.png)", text)

    def test_w2_shows_how_busy_each_side_was_at_the_top_and_where_it_failed(self):
        def step(rate, passed, client, broker):
            return {"rate": rate, "passed": passed, "messages_per_second": rate, "mb_per_second": 1.0,
                    "e2e_ms": {"p99": 9.0}, "client_busy_cores": client, "broker_busy_cores": broker}
        steps = [step(100, True, 0.5, 0.4), step(125, True, 0.6, 0.5), step(156, False, 0.99, 0.7),
                 step(156, False, 0.98, 0.6), step(140, False, 0.9, 0.55), step(132, False, 0.8, 0.52)]
        self.assertEqual(report.first_failure_above(steps, 125)["client_busy_cores"], 0.8)
        self.assertEqual(report.first_failure_above(steps[:4], 125)["client_busy_cores"], 0.98)
        self.assertEqual(report.first_failure_above(steps[:2], 125), {})
        results = {"settings": {"broker_cores": "0", "client_cores": "1", "shards": 1, "partitions": 16, "message_size": 1024,
                                "data_root": "/d", "listen": "h:1", "out": "/r/x", "strand": "/t/strand"},
                   "machine": {}, "command": "run.py", "started": "now", "wall_seconds": 60.0,
                   "workloads": {"W2": {"p99_ms_max": 50, "modes": {"strict": {"max_sustainable": steps[1], "steps": steps,
                                                                                "cpu_seconds_per_gb": 2.0, "peak_rss_mib": 50.0}}}}}
        results["targets"] = report.targets(results["workloads"])
        text = report.markdown(results, {})
        self.assertIn("| strict | 125 | 1.0 | 9.00 | 6 | 0.60 / 0.50 | 0.80 / 0.52 | 2.0 | 50 |", text)


if __name__ == "__main__":
    unittest.main()
