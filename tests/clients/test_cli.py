"""The strand command line against the real broker: topics, produce/consume, groups, cluster
info, offline segment dumps, config print/check, the bench, and errors in Kafka's words."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Broker, RawKafka, create_topic, free_port, unique_topic, wait_for_topic

TIMEOUT = 120

# Kafka API keys the group commands need.
GROUP_APIS = {8: "OffsetCommit", 9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
              13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups", 42: "DeleteGroups"}


def cli(strand_bin, broker, *args, input_text=None, check=True, timeout=TIMEOUT):
    env = dict(os.environ, STRAND_BROKERS=broker.bootstrap if broker else "127.0.0.1:1")
    proc = subprocess.run([str(strand_bin), *args], input=input_text, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, (
            f"strand {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def missing_apis(broker, wanted: dict) -> list:
    with RawKafka(broker.bootstrap) as raw:
        return [name for key, name in wanted.items() if key not in raw.api_versions]


def test_topic_create_list_describe_delete(strand_bin, broker):
    topic = unique_topic("cli")
    out = cli(strand_bin, broker, "topic", "create", topic, "-p", "3", "-c", "retention.ms=3600000").stdout
    assert f"created topic {topic}" in out
    wait_for_topic(broker.bootstrap, topic, 3)
    listing = cli(strand_bin, broker, "topic", "list").stdout
    assert any(line.split() == [topic, "3"] for line in listing.splitlines()), listing
    described = cli(strand_bin, broker, "topic", "describe", topic).stdout
    assert "LOG_START_OFFSET" in described and "HIGH_WATERMARK" in described, described
    rows = [line.split() for line in described.splitlines() if line.split()[:1] in (["0"], ["1"], ["2"])]
    assert [r[0] for r in rows] == ["0", "1", "2"], described
    assert all(r[4] == "0" and r[5] == "0" for r in rows), described
    assert "configs:" in described, described
    again = cli(strand_bin, broker, "topic", "create", topic, "-p", "3", check=False)
    assert again.returncode == 1
    assert "TOPIC_ALREADY_EXISTS" in again.stderr and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert f"deleted topic {topic}" in cli(strand_bin, broker, "topic", "delete", topic).stdout
    gone = cli(strand_bin, broker, "topic", "describe", topic, check=False)
    assert gone.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in gone.stderr, gone.stderr


def test_admin_apis_the_broker_lacks_are_named_errors_not_crashes(strand_bin, broker):
    topic = unique_topic("cliadm")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "1")
    with RawKafka(broker.bootstrap) as raw:
        apis = raw.api_versions
    for key, args in [(37, ["topic", "add-partitions", topic, "-n", "4"]),
                      (33, ["topic", "alter-config", topic, "-c", "retention.ms=1000"])]:
        proc = cli(strand_bin, broker, *args, check=(key in apis))
        if key not in apis:
            assert proc.returncode == 1, proc
            line = proc.stderr.strip()
            assert "UNSUPPORTED_VERSION" in line and "hint:" in line and "\n" not in line, line
            assert "Traceback" not in line and "panicked" not in line
    described = cli(strand_bin, broker, "topic", "describe", topic).stdout
    if 32 not in apis:  # DescribeConfigs
        assert "configs: not available" in described and "UNSUPPORTED_VERSION" in described, described


def test_produce_keys_and_headers_then_consume_with_format_and_json(strand_bin, broker):
    topic = unique_topic("clip")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "1")
    lines = "".join(f"k{i}:value {i}\n" for i in range(20))
    out = cli(strand_bin, broker, "produce", topic, "--key-separator", ":", "-H", "origin=cli", "-H", "n=1",
              input_text=lines)
    assert "produced 20 records" in out.stderr, out.stderr
    formatted = cli(strand_bin, broker, "consume", topic, "--from", "beginning", "-e",
                    "--format", "%p|%o|%k|%v|%h\\n").stdout.splitlines()
    assert formatted == [f"0|{i}|k{i}|value {i}|origin=cli,n=1" for i in range(20)], formatted
    records = [json.loads(line) for line in
               cli(strand_bin, broker, "consume", topic, "--from", "5", "-e", "--json").stdout.splitlines()]
    assert [r["offset"] for r in records] == list(range(5, 20))
    first = records[0]
    assert first["topic"] == topic and first["partition"] == 0 and first["key"] == "k5"
    assert first["value"] == "value 5" and first["headers"] == [["origin", "cli"], ["n", "1"]]
    assert abs(first["timestamp"] - time.time() * 1000) < 600_000
    tail = cli(strand_bin, broker, "consume", topic, "--from", "-3", "-e").stdout.splitlines()
    assert tail == ["value 17", "value 18", "value 19"]


def test_consume_n_stops_after_count_across_partitions(strand_bin, broker):
    topic = unique_topic("clin")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "3")
    wait_for_topic(broker.bootstrap, topic, 3)
    cli(strand_bin, broker, "produce", topic, input_text="".join(f"m{i}\n" for i in range(30)))
    start = time.monotonic()
    out = cli(strand_bin, broker, "consume", topic, "-n", "7").stdout.splitlines()
    assert len(out) == 7 and all(v.startswith("m") for v in out), out
    assert time.monotonic() - start < 30
    everything = cli(strand_bin, broker, "consume", topic, "-e").stdout.splitlines()
    assert sorted(everything) == sorted(f"m{i}" for i in range(30))


def test_consume_from_a_timestamp(strand_bin, broker):
    topic = unique_topic("clits")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "1")
    cli(strand_bin, broker, "produce", topic, input_text="old\n")
    time.sleep(0.05)
    cut = int(time.time() * 1000)
    time.sleep(0.05)
    cli(strand_bin, broker, "produce", topic, input_text="new\n")
    out = cli(strand_bin, broker, "consume", topic, "--from", f"@{cut}", "-e").stdout.splitlines()
    assert out == ["new"], out


def test_cluster_info_names_the_broker_and_its_apis(strand_bin, broker):
    out = cli(strand_bin, broker, "cluster", "info").stdout
    assert "cluster id" in out and "controller" in out, out
    assert str(broker.port) in out, out
    for api in ("Produce", "Fetch", "Metadata", "ApiVersions"):
        assert api in out, out


def test_dump_segment_reads_the_brokers_files(strand_bin, broker):
    topic = unique_topic("clidump")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "1")
    for chunk in range(5):
        cli(strand_bin, broker, "produce", topic, input_text="".join(f"{chunk}-{i}-" + "x" * 200 + "\n" for i in range(40)))
    part = broker.data_dir / f"{topic}-0"
    logs = sorted(part.glob("*.log"))
    assert logs, list(part.iterdir())
    out = cli(strand_bin, None, "dump", "segment", str(logs[0])).stdout
    assert "200 records" in out, out
    assert " BAD " not in out, out
    assert "BASE_OFFSET" in out and "none" in out, out
    for index in sorted(part.glob("*.index")) + sorted(part.glob("*.timeindex")):
        dumped = cli(strand_bin, None, "dump", "segment", str(index)).stdout
        assert "entries" in dumped, dumped


def test_config_print_round_trips_and_check_reports_one_line(strand_bin, tmp_path):
    printed = cli(strand_bin, None, "config", "print", "--shards", "3", "--listen", "127.0.0.1:19092").stdout
    assert "shards = 3" in printed and 'listeners = "127.0.0.1:19092"' in printed, printed
    assert "log.segment.bytes = " in printed and "num.partitions = 1" in printed, printed
    good = tmp_path / "good.toml"
    good.write_text(printed)
    assert cli(strand_bin, None, "config", "check", str(good)).stdout.strip() == "ok"
    again = cli(strand_bin, None, "config", "print", "--config", str(good)).stdout
    assert again == printed
    bad = tmp_path / "bad.toml"
    bad.write_text("num.partitons = 3\n")
    proc = cli(strand_bin, None, "config", "check", str(bad), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "strand: unknown config key 'num.partitons'", proc.stderr


class RelativeDirBroker(Broker):
    """A broker given its data directory relative to its working directory, as in the README's
    `strand serve` (default ./strand-data)."""

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("--data-dir") + 1] = self.data_dir.name
        return cmd


def test_serve_with_a_relative_data_dir(strand_bin, tmp_path):
    b = RelativeDirBroker(strand_bin, tmp_path / "rel" / "data", tmp_path / "broker.log", shards=1)
    b.start()
    try:
        topic = unique_topic("rel")
        create_topic(b.bootstrap, topic, 1)
        assert (tmp_path / "rel" / "data" / f"{topic}-0").is_dir(), "partition directory under the cwd"
    finally:
        b.stop(check=True)


def test_a_missing_broker_is_one_line_and_quick(strand_bin):
    port = free_port()
    for args in (["topic", "list"], ["cluster", "info"], ["consume", "x", "-e"], ["bench", "produce", "--duration", "1s"]):
        start = time.monotonic()
        proc = subprocess.run([str(strand_bin), *args, "--brokers", f"127.0.0.1:{port}"], capture_output=True,
                              text=True, timeout=30, input="")
        assert time.monotonic() - start < 10, args
        assert proc.returncode == 1, proc
        assert proc.stderr == f"strand: no broker at 127.0.0.1:{port}: connection refused\n", proc.stderr


def test_help_has_examples_for_every_command(strand_bin):
    for args in (["topic", "create"], ["produce"], ["consume"], ["group", "reset-offsets"], ["bench", "e2e"],
                 ["bench", "scenario", "catch-up"], ["dump", "segment"], ["config", "print"], ["cluster", "info"]):
        out = cli(strand_bin, None, *args, "--help").stdout
        assert "Example" in out, (args, out)


def check_latency(doc_latency):
    p = doc_latency["percentiles"]
    assert p["count"] > 0
    assert 0 < p["p50"] <= p["p90"] <= p["p99"] <= p["p99_9"] <= p["p99_99"] <= p["max"] < 60_000_000, p
    assert doc_latency["histogram"]["hdr_v2_deflate_base64"]
    assert sum(c for _, c in doc_latency["histogram"]["values"]) == p["count"]


@pytest.mark.parametrize("client", ["librdkafka", "protocol"])
def test_bench_produce_and_e2e_write_sane_json_and_a_png(strand_bin, broker, tmp_path, client):
    topic = unique_topic("clibench")
    produce_json, e2e_json, png = tmp_path / "produce.json", tmp_path / "e2e.json", tmp_path / "e2e.png"
    out = cli(strand_bin, broker, "bench", "produce", "--client", client, "--topic", topic, "-p", "2", "--duration", "3s",
              "--warmup", "1s", "--message-size", "200", "--json", str(produce_json)).stdout
    assert "produce ack" in out and "P99.99" in out, out
    doc = json.loads(produce_json.read_text())
    produced = doc["phases"][0]["produce"]
    assert produced["measured_messages"] > 100 and produced["failed"] == 0, produced
    assert produced["messages_per_second"] > 30, produced
    check_latency(produced["latency"])

    out = cli(strand_bin, broker, "bench", "e2e", "--client", client, "--topic", topic, "--rate", "500", "--duration", "3s",
              "--warmup", "1s", "--json", str(e2e_json), "--plot", str(png)).stdout
    assert "end-to-end" in out, out
    doc = json.loads(e2e_json.read_text())
    phase = doc["phases"][0]
    e2e = phase["end_to_end"]
    assert phase["produce"]["measured_messages"] > 1000, phase["produce"]
    assert e2e["measured_messages"] == phase["produce"]["measured_messages"], phase
    assert 300 < e2e["messages_per_second"] < 700, e2e
    check_latency(e2e["latency"])
    assert len(e2e["latency"]["windows"]) >= 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


@pytest.mark.parametrize("acks", ["1", "0"])
def test_the_protocol_producer_writes_records_any_client_reads_back(strand_bin, broker, tmp_path, acks):
    """The bench's own producer builds the batches itself, so another client checks them: every
    record it counted as sent is in the log once, with its value whole, keys spread by hash."""
    from kafka import KafkaConsumer, TopicPartition
    topic = unique_topic("clibp")
    doc_path = tmp_path / "produce.json"
    cli(strand_bin, broker, "bench", "produce", "--client", "protocol", "--topic", topic, "-p", "3", "--keys",
        "--acks", acks, "--rate", "3000", "--duration", "2s", "--warmup", "1s", "--message-size", "300",
        "--json", str(doc_path))
    produced = json.loads(doc_path.read_text())["phases"][0]["produce"]
    assert produced["failed"] == 0 and produced["first_error"] is None, produced
    assert produced["acked"] == produced["sent"] and 8000 <= produced["sent"] <= 9100, produced
    assert produced["measured_messages"] >= 5900, produced
    # fetch_max_bytes under kafka-python's own 1 MB frame limit (receive_message_max_bytes).
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=20_000, fetch_max_wait_ms=100, fetch_max_bytes=900_000)
    tps = [TopicPartition(topic, p) for p in range(3)]
    try:
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records, deadline = [], time.monotonic() + 30
        while len(records) < produced["sent"] and time.monotonic() < deadline:
            for _tp, batch in consumer.poll(timeout_ms=300, max_records=2000).items():
                records.extend(batch)
        records.extend(r for batch in consumer.poll(timeout_ms=500).values() for r in batch)
    finally:
        consumer.close()
    assert len(records) == produced["sent"], (len(records), produced)
    assert all(len(r.value) == 300 for r in records)
    # Bytes 8..16 of every value are the run's id: one run wrote them all.
    assert len({r.value[8:16] for r in records}) == 1
    # Keys are the sequence number mod 1024, each always on one partition, and all partitions used.
    partitions_of_key = {}
    for r in records:
        partitions_of_key.setdefault(r.key, set()).add(r.partition)
    assert len(partitions_of_key) == 1024 and all(len(ps) == 1 for ps in partitions_of_key.values())
    assert {r.partition for r in records} == {0, 1, 2}
    # Each partition's offsets are dense from 0: nothing lost or doubled.
    for p in range(3):
        offsets = sorted(r.offset for r in records if r.partition == p)
        assert offsets == list(range(len(offsets))), p


@pytest.mark.parametrize("client", ["librdkafka", "protocol"])
def test_bench_consume_drains_a_preloaded_topic(strand_bin, broker, tmp_path, client):
    topic = unique_topic("clibc")
    doc_path = tmp_path / "consume.json"
    cli(strand_bin, broker, "bench", "consume", "--topic", topic, "-p", "2", "--messages", "5000",
        "--message-size", "100", "--client", client, "--json", str(doc_path))
    doc = json.loads(doc_path.read_text())
    drain = doc["phases"][-1]["drain"]
    # Every record once: the protocol drainer counts records from batch headers, which must
    # come to what librdkafka hands out one by one.
    assert drain["measured_messages"] == 5000 and drain["complete"], drain
    assert drain["measured_bytes"] == 5000 * 100, drain


def test_bench_catch_up_rounds_alternate_and_merge(strand_bin, broker, tmp_path):
    topic = unique_topic("clibcu")
    doc_path = tmp_path / "catch-up.json"
    out = cli(strand_bin, broker, "bench", "scenario", "catch-up", "--topic", topic, "-p", "2", "--rate", "400",
              "--backlog-mb", "4", "--rounds", "2", "--duration", "2s", "--warmup", "1s", "--json", str(doc_path)).stdout
    assert "== rounds" in out and "2 rounds merged" in out, out
    doc = json.loads(doc_path.read_text())
    assert [p["name"] for p in doc["phases"]] == ["fill", "baseline 1", "catch-up 1", "baseline 2", "catch-up 2"]
    rounds = {kind: [p for p in doc["phases"] if p["name"].startswith(kind + " ")] for kind in ("baseline", "catch-up")}
    summary = doc["summary"]
    for kind, key in (("baseline", "baseline"), ("catch-up", "during_catch_up")):
        measured = [p["produce"]["measured_messages"] for p in rounds[kind]]
        assert all(m > 300 for m in measured), measured
        assert summary["produce_us"][key]["count"] == sum(measured), (summary, measured)
        tailed = sum(p["end_to_end"]["measured_messages"] for p in rounds[kind])
        assert summary["tailing_e2e_us"][key]["count"] == tailed, summary
    for i, figures in enumerate(doc["rounds_p99"]):
        for side, phase in (("baseline", rounds["baseline"][i]), ("during_catch_up", rounds["catch-up"][i])):
            assert figures["produce_p99_us"][side] == phase["produce"]["latency"]["percentiles"]["p99"], figures
            assert figures["tailing_e2e_p99_us"][side] == phase["end_to_end"]["latency"]["percentiles"]["p99"], figures
    assert len(doc["rounds_p99"]) == 2
    drained = [p["drain"]["measured_messages"] for p in rounds["catch-up"]]
    assert all(d > 0 for d in drained) and summary["drain"]["messages"] == sum(drained), (summary, drained)


def test_group_commands(strand_bin, broker):
    missing = missing_apis(broker, GROUP_APIS)
    if missing:
        pytest.skip(f"broker does not implement {', '.join(missing)} yet")
    topic, group = unique_topic("clig"), unique_topic("grp")
    cli(strand_bin, broker, "topic", "create", topic, "-p", "2")
    wait_for_topic(broker.bootstrap, topic, 2)
    # Five records in each partition: only partitions with records get committed offsets, and
    # the client's partitioner may put ten keyless records all in one partition.
    for partition in (0, 1):
        values = "".join(f"v{i}\n" for i in range(partition * 5, partition * 5 + 5))
        cli(strand_bin, broker, "produce", topic, "-p", str(partition), input_text=values)
    got = cli(strand_bin, broker, "consume", topic, "--group", group, "-e").stdout.splitlines()
    assert sorted(got) == sorted(f"v{i}" for i in range(10))
    assert group in cli(strand_bin, broker, "group", "list").stdout
    described = cli(strand_bin, broker, "group", "describe", group).stdout
    rows = [line.split() for line in described.splitlines() if line.startswith(topic)]
    assert len(rows) == 2 and all(r[4] == "0" for r in rows), described  # lag 0
    dry = cli(strand_bin, broker, "group", "reset-offsets", group, "--topic", topic, "--to-earliest").stdout
    assert "dry run" in dry
    cli(strand_bin, broker, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    described = cli(strand_bin, broker, "group", "describe", group).stdout
    rows = [line.split() for line in described.splitlines() if line.startswith(topic)]
    assert sum(int(r[4]) for r in rows) == 10, described
    assert f"deleted group {group}" in cli(strand_bin, broker, "group", "delete", group).stdout
