"""The broker's log is never a reason to stop serving: a log line that cannot be written (a
closed pipe here; a full disk under a redirected log behaves the same) is dropped."""

from __future__ import annotations

import signal
import subprocess
import time

from confluent_kafka import Producer

from conftest import SERVING_LINE, consume_topic, create_topic, produce_and_wait, producer_conf, unique_topic


def test_a_broker_whose_log_pipe_is_closed_keeps_serving_and_stops_cleanly(strand_bin, tmp_path):
    proc = subprocess.Popen(
        [str(strand_bin), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--shards", "2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"RUST_LOG": "info"},
    )
    try:
        log, deadline = "", time.monotonic() + 30
        while not (serving := SERVING_LINE.search(log)) and time.monotonic() < deadline:
            line = proc.stderr.readline().decode()
            assert line, f"the broker exited during startup:\n{log}"
            log += line
        assert serving, log
        bootstrap = f"127.0.0.1:{serving.group(1)}"
        # Every log line from here on fails to write (EPIPE).
        proc.stderr.close()
        # Creating a topic, producing and consuming all log at info.
        topic = unique_topic("logpipe")
        create_topic(bootstrap, topic, partitions=2)
        messages = [{"topic": topic, "value": f"v{i}".encode(), "partition": i % 2} for i in range(200)]
        reports = produce_and_wait(Producer(producer_conf(bootstrap)), messages)
        assert all(error is None for error, *_ in reports), reports[:3]
        records, errors, _ = consume_topic(bootstrap, topic, 2, expected=200)
        assert sorted(r.value for r in records) == sorted(m["value"] for m in messages) and not errors, errors
        assert proc.poll() is None, f"the broker exited with {proc.returncode}"
        # A clean stop logs too, and still exits 0 (a panic would abort: -6).
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
