"""kcat (Debian 12 links librdkafka 2.0.x: an older client still in wide use)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from conftest import create_topic, metadata_node_id, unique_topic, wait_for_topic

KCAT = shutil.which("kcat") or shutil.which("kafkacat")

pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat not on PATH (scripts/test.sh installs it via apt)")

TIMEOUT = 60


def kcat(*args, input_text=None):
    proc = subprocess.run([KCAT, *args], input=input_text, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}\nstderr:\n{proc.stderr}"
    return proc


def test_kcat_produce_consume_lines(broker):
    topic = unique_topic("kcat")
    create_topic(broker.bootstrap, topic, 1)
    lines = [f"line {i:03d} " + "abc" * (i % 9) for i in range(100)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-X", "broker.address.family=v4",
         input_text="\n".join(lines) + "\n")
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-X", "broker.address.family=v4")
    assert out.stdout.splitlines() == lines


def test_kcat_keys_headers_and_auto_create(broker):
    topic = unique_topic("kcatk")  # not created up front: kcat's produce auto-creates it
    pairs = [(f"k{i}", f"v{i}") for i in range(50)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K", ":", "-H", "origin=kcat", "-p", "0",
         "-X", "broker.address.family=v4", input_text="".join(f"{k}:{v}\n" for k, v in pairs))
    wait_for_topic(broker.bootstrap, topic, 1)
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p|%o|%k|%s|%h\n", "-X", "broker.address.family=v4")
    got = out.stdout.splitlines()
    assert got == [f"0|{i}|{k}|{v}|origin=kcat" for i, (k, v) in enumerate(pairs)]


def test_kcat_metadata_listing(broker):
    topic = unique_topic("kcatmd")
    create_topic(broker.bootstrap, topic, 3)
    md = wait_for_topic(broker.bootstrap, topic, 3)
    node = metadata_node_id(md)
    out = kcat("-L", "-b", broker.bootstrap, "-X", "broker.address.family=v4")
    assert f'topic "{topic}" with 3 partitions' in out.stdout, out.stdout
    out = kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic, "-X", "broker.address.family=v4")
    doc = json.loads(out.stdout)
    assert [b["id"] for b in doc["brokers"]] == [node]
    assert doc["brokers"][0]["name"] == broker.bootstrap
    [t] = [t for t in doc["topics"] if t["topic"] == topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == node for p in t["partitions"]), t["partitions"]
