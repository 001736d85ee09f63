"""Admin APIs with real clients: CreatePartitions, DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs, DeleteRecords, DescribeCluster (confluent-kafka through Metadata),
DescribeLogDirs (kafka-python), and kafka-python's KafkaAdminClient for the config APIs."""

from __future__ import annotations

import io

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka import TopicPartition as KTopicPartition
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType as KConfigResourceType
from kafka.admin import NewPartitions as KNewPartitions
from kafka.errors import InvalidPartitionsError
from kafka.protocol.admin import DescribeConfigsRequest, DescribeConfigsResponse

from conftest import (
    ADMIN_TIMEOUT_S,
    ERR_MESSAGE_TOO_LARGE,
    ERR_NONE,
    RawKafka,
    admin_client,
    consume_partitions,
    consume_topic,
    create_topic,
    produce_and_wait,
    producer_conf,
    unique_topic,
    wait_for_topic,
)

API_DESCRIBE_CONFIGS = 32
ERR_OFFSET_OUT_OF_RANGE = 1
ERR_INVALID_REQUEST = 42


@pytest.fixture
def admin(broker):
    return admin_client(broker.bootstrap)


@pytest.fixture
def kadmin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20_000,
                         client_id="strand-tests-admin")
    yield a
    a.close()


def _result(futures: dict, key):
    return futures[key].result(timeout=ADMIN_TIMEOUT_S + 5)


def _error(futures: dict, key) -> KafkaError:
    with pytest.raises(KafkaException) as ei:
        _result(futures, key)
    return ei.value.args[0]


def _topic_configs(admin, topic: str) -> dict:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return _result(admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S), resource)


def _incremental(admin, topic: str, *entries: ConfigEntry, validate_only=False):
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    futures = admin.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S, validate_only=validate_only)
    return futures, resource


def _produce_values(bootstrap, topic, values, partition=0, **conf):
    p = Producer(producer_conf(bootstrap, **conf))
    return produce_and_wait(p, [dict(topic=topic, partition=partition, value=v) for v in values])


# ---------------------------------------------------------------------------
# CreatePartitions
# ---------------------------------------------------------------------------


def test_create_partitions_then_produce_to_and_consume_from_every_partition(broker, admin):
    topic = unique_topic("grow")
    create_topic(broker.bootstrap, topic, 1)
    _result(admin.create_partitions([NewPartitions(topic, 3)], request_timeout=ADMIN_TIMEOUT_S), topic)
    wait_for_topic(broker.bootstrap, topic, 3)
    p = Producer(producer_conf(broker.bootstrap))
    reports = produce_and_wait(p, [dict(topic=topic, partition=i % 3, value=f"v{i}".encode()) for i in range(30)])
    assert all(r[0] is None for r in reports), [r[0] for r in reports if r[0]][:3]
    assert sorted({r[1] for r in reports}) == [0, 1, 2]
    records, errors, _ = consume_topic(broker.bootstrap, topic, 3, 30)
    assert not errors, errors[:3]
    assert sorted((r.partition, r.value) for r in records) == sorted(
        (i % 3, f"v{i}".encode()) for i in range(30))


def test_create_partitions_refuses_what_kafka_refuses(broker, admin):
    topic = unique_topic("nogrow")
    create_topic(broker.bootstrap, topic, 3)
    fewer = _error(admin.create_partitions([NewPartitions(topic, 2)], request_timeout=ADMIN_TIMEOUT_S), topic)
    assert fewer.code() == KafkaError.INVALID_PARTITIONS, fewer
    assert "would not be an increase" in fewer.str()
    same = _error(admin.create_partitions([NewPartitions(topic, 3)], request_timeout=ADMIN_TIMEOUT_S), topic)
    assert same.code() == KafkaError.INVALID_PARTITIONS, same
    missing = unique_topic("missing")
    unknown = _error(admin.create_partitions([NewPartitions(missing, 2)], request_timeout=ADMIN_TIMEOUT_S), missing)
    assert unknown.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, unknown
    offsets = _error(admin.create_partitions([NewPartitions("__consumer_offsets", 60)],
                                             request_timeout=ADMIN_TIMEOUT_S), "__consumer_offsets")
    assert offsets.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, offsets
    # validate_only answers as the real change would, and changes nothing
    _result(admin.create_partitions([NewPartitions(topic, 5)], validate_only=True,
                                    request_timeout=ADMIN_TIMEOUT_S), topic)
    assert len(admin.list_topics(timeout=10).topics[topic].partitions) == 3


def test_kafka_python_create_partitions(broker, kadmin):
    topic = unique_topic("kpgrow")
    create_topic(broker.bootstrap, topic, 1)
    kadmin.create_partitions({topic: KNewPartitions(total_count=2)})
    wait_for_topic(broker.bootstrap, topic, 2)
    with pytest.raises(InvalidPartitionsError):
        kadmin.create_partitions({topic: KNewPartitions(total_count=1)})


# ---------------------------------------------------------------------------
# DescribeConfigs
# ---------------------------------------------------------------------------


def test_describe_topic_configs_shows_defaults_and_overrides(broker, admin):
    topic = unique_topic("desc")
    new = NewTopic(topic, num_partitions=1, replication_factor=1, config={"retention.ms": "3600000"})
    _result(admin.create_topics([new], request_timeout=ADMIN_TIMEOUT_S), topic)
    configs = _topic_configs(admin, topic)
    assert set(configs) == {"cleanup.policy", "delete.retention.ms", "flush.messages", "flush.ms",
                            "index.interval.bytes", "max.message.bytes", "message.timestamp.after.max.ms",
                            "message.timestamp.before.max.ms", "message.timestamp.difference.max.ms",
                            "message.timestamp.type", "retention.bytes", "retention.ms", "segment.bytes", "segment.ms"}
    retention = configs["retention.ms"]
    assert retention.value == "3600000" and retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not retention.is_default and not retention.is_read_only
    assert "retention.ms" in retention.synonyms and "log.retention.ms" in retention.synonyms
    size = configs["max.message.bytes"]
    assert size.value == "1048588" and size.source == ConfigSource.DEFAULT_CONFIG.value and size.is_default
    assert configs["cleanup.policy"].value == "delete"
    missing = ConfigResource(ResourceType.TOPIC, unique_topic("nope"))
    err = _error(admin.describe_configs([missing], request_timeout=ADMIN_TIMEOUT_S), missing)
    assert err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def test_describe_broker_configs_shows_every_key_with_its_origin(broker, admin):
    resource = ConfigResource(ResourceType.BROKER, "0")
    configs = _result(admin.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S), resource)
    assert {"num.partitions", "message.max.bytes", "log.retention.ms", "listeners", "log.dirs"} <= set(configs)
    assert len(configs) >= 30
    assert all(c.is_read_only for c in configs.values()), "broker configs are static in strand"
    partitions = configs["num.partitions"]
    assert partitions.value == "1" and partitions.source == ConfigSource.DEFAULT_CONFIG.value
    # the harness starts the broker with --data-dir and --listen: the static broker config
    log_dirs = configs["log.dirs"]
    assert log_dirs.source == ConfigSource.STATIC_BROKER_CONFIG.value and log_dirs.value == str(broker.data_dir)
    # as given (Kafka describes a listener on port 0 as configured, not as bound)
    assert configs["listeners"].value == broker.given_listen


def test_describe_configs_of_another_broker_id_is_an_invalid_request(broker):
    request = DescribeConfigsRequest[1](resources=[(4, "7", None), (4, "zero", None)], include_synonyms=False)
    with RawKafka(broker.bootstrap) as raw:
        body = raw.roundtrip(API_DESCRIBE_CONFIGS, 1, request.encode())
    response = DescribeConfigsResponse[1].decode(io.BytesIO(body))
    errors = [(r[0], r[1]) for r in response.resources]
    assert [code for code, _ in errors] == [ERR_INVALID_REQUEST, ERR_INVALID_REQUEST], errors
    assert "expected 0" in errors[0][1] and "integer" in errors[1][1], errors


# ---------------------------------------------------------------------------
# AlterConfigs and IncrementalAlterConfigs
# ---------------------------------------------------------------------------


# confluent-kafka deprecates the legacy AlterConfigs; these tests use it on purpose.
legacy_alter_configs = pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")


@legacy_alter_configs
def test_alter_configs_replaces_every_override(broker, admin):
    topic = unique_topic("alter")
    new = NewTopic(topic, num_partitions=1, replication_factor=1,
                   config={"retention.ms": "3600000", "segment.bytes": "1048576"})
    _result(admin.create_topics([new], request_timeout=ADMIN_TIMEOUT_S), topic)
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"max.message.bytes": "2048"})
    _result(admin.alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S), resource)
    configs = _topic_configs(admin, topic)
    assert configs["max.message.bytes"].value == "2048"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].is_default and configs["retention.ms"].value == "604800000"
    assert configs["segment.bytes"].is_default


def test_incremental_alter_configs_set_append_subtract_delete_survive_a_restart(broker, admin):
    topic = unique_topic("incr")
    create_topic(broker.bootstrap, topic, 2)
    futures, resource = _incremental(
        admin, topic,
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.ms", "600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND))
    _result(futures, resource)
    configs = _topic_configs(admin, topic)
    assert configs["cleanup.policy"].value == "delete,compact"
    assert configs["retention.ms"].value == "7200000"

    futures, resource = _incremental(
        admin, topic,
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
        ConfigEntry("segment.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    _result(futures, resource)
    broker.restart()
    configs = _topic_configs(admin_client(broker.bootstrap), topic)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["retention.ms"].value == "7200000"
    assert configs["segment.ms"].is_default


@legacy_alter_configs
def test_bad_config_changes_are_invalid_config_and_change_nothing(broker, admin):
    topic = unique_topic("badcfg")
    create_topic(broker.bootstrap, topic, 1)
    for entry in (ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET),
                  ConfigEntry("retention.msx", "1", incremental_operation=AlterConfigOpType.SET),
                  ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND),
                  ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)):
        futures, resource = _incremental(admin, topic, entry)
        err = _error(futures, resource)
        assert err.code() == KafkaError.INVALID_CONFIG, (entry.name, err)
    legacy = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.bytes": "-5"})
    err = _error(admin.alter_configs([legacy], request_timeout=ADMIN_TIMEOUT_S), legacy)
    assert err.code() == KafkaError.INVALID_CONFIG and "segment.bytes" in err.str(), err
    # validate_only checks without changing
    futures, resource = _incremental(
        admin, topic, ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        validate_only=True)
    _result(futures, resource)
    assert all(c.is_default for c in _topic_configs(admin, topic).values())
    missing = unique_topic("nope")
    futures, resource = _incremental(
        admin, missing, ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET))
    assert _error(futures, resource).code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_broker_configs_cannot_be_altered_at_runtime(broker, admin):
    resource = ConfigResource(ResourceType.BROKER, "0", incremental_configs=[
        ConfigEntry("log.retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    err = _error(admin.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S), resource)
    assert err.code() == KafkaError.INVALID_REQUEST and "static" in err.str(), err


def test_lower_max_message_bytes_applies_at_once(broker, admin):
    topic = unique_topic("maxmsg")
    create_topic(broker.bootstrap, topic, 1)
    conf = {"linger.ms": 0}
    assert _produce_values(broker.bootstrap, topic, [b"x" * 5000], **conf)[0][0] is None
    futures, resource = _incremental(
        admin, topic, ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET))
    _result(futures, resource)
    big = _produce_values(broker.bootstrap, topic, [b"x" * 5000], **conf)[0][0]
    assert big is not None and big.code() == KafkaError.MSG_SIZE_TOO_LARGE == ERR_MESSAGE_TOO_LARGE, big
    assert _produce_values(broker.bootstrap, topic, [b"small"], **conf)[0][0] is None
    futures, resource = _incremental(
        admin, topic, ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE))
    _result(futures, resource)
    assert _produce_values(broker.bootstrap, topic, [b"x" * 5000], **conf)[0][0] is None


def test_kafka_python_describe_and_alter_configs(broker, kadmin):
    topic = unique_topic("kpcfg")
    create_topic(broker.bootstrap, topic, 1)
    kadmin.alter_configs([KConfigResource(KConfigResourceType.TOPIC, topic, configs={"retention.ms": "1234"})])
    responses = kadmin.describe_configs([KConfigResource(KConfigResourceType.TOPIC, topic)], include_synonyms=True)
    resources = [r for resp in responses for r in resp.resources]
    assert resources and resources[0][0] == ERR_NONE, resources
    entries = {e[0]: e for e in resources[0][4]}
    assert entries["retention.ms"][1] == "1234" and entries["retention.ms"][3] == 1  # DYNAMIC_TOPIC_CONFIG
    assert entries["segment.bytes"][3] == 5  # DEFAULT_CONFIG
    responses = kadmin.describe_configs([KConfigResource(KConfigResourceType.BROKER, "0")])
    broker_entries = {e[0]: e for resp in responses for r in resp.resources for e in r[4]}
    assert broker_entries["message.max.bytes"][1] == "1048588"


# ---------------------------------------------------------------------------
# DeleteRecords
# ---------------------------------------------------------------------------


def test_delete_records_moves_the_low_watermark_for_consumers_and_list_offsets(broker, admin):
    topic = unique_topic("delrec")
    create_topic(broker.bootstrap, topic, 1)
    _produce_values(broker.bootstrap, topic, [f"v{i}".encode() for i in range(10)], **{"linger.ms": 0})
    deleted = _result(admin.delete_records([TopicPartition(topic, 0, 4)], request_timeout=ADMIN_TIMEOUT_S),
                      TopicPartition(topic, 0, 4))
    assert deleted.low_watermark == 4
    records, errors, _ = consume_topic(broker.bootstrap, topic, 1, 6)
    assert not errors, errors[:3]
    assert [r.offset for r in records] == list(range(4, 10))
    tp = TopicPartition(topic, 0)
    earliest = _result(admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=ADMIN_TIMEOUT_S), tp)
    assert earliest.offset == 4
    with RawKafka(broker.bootstrap) as raw:
        (_, _, err, _, _), = raw.fetch(topic, 0, 2)
        assert err == ERR_OFFSET_OUT_OF_RANGE
        (_, _, err, _, _), = raw.fetch(topic, 0, 4)
        assert err == ERR_NONE
    # -1 means the high watermark; the new start survives a restart
    everything = TopicPartition(topic, 0, -1)
    assert _result(admin.delete_records([everything], request_timeout=ADMIN_TIMEOUT_S), everything).low_watermark == 10
    broker.restart()
    admin = admin_client(broker.bootstrap)
    assert _result(admin.list_offsets({tp: OffsetSpec.earliest()}, request_timeout=ADMIN_TIMEOUT_S), tp).offset == 10


def test_delete_records_refusals(broker, admin):
    topic = unique_topic("delbad")
    create_topic(broker.bootstrap, topic, 1)
    _produce_values(broker.bootstrap, topic, [b"a", b"b"])
    past = TopicPartition(topic, 0, 5)
    err = _error(admin.delete_records([past], request_timeout=ADMIN_TIMEOUT_S), past)
    assert err.code() == KafkaError.OFFSET_OUT_OF_RANGE, err
    futures, resource = _incremental(
        admin, topic, ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET))
    _result(futures, resource)
    compacted = TopicPartition(topic, 0, 1)
    err = _error(admin.delete_records([compacted], request_timeout=ADMIN_TIMEOUT_S), compacted)
    assert err.code() == KafkaError.POLICY_VIOLATION, err


def test_kafka_python_delete_records(broker, kadmin):
    topic = unique_topic("kpdel")
    create_topic(broker.bootstrap, topic, 1)
    _produce_values(broker.bootstrap, topic, [b"a", b"b", b"c"])
    result = kadmin.delete_records({KTopicPartition(topic, 0): 2})
    assert result[KTopicPartition(topic, 0)]["low_watermark"] == 2
    records, errors, _ = consume_partitions(broker.bootstrap, [TopicPartition(topic, 0, 0)], 1,
                                            conf_overrides={"auto.offset.reset": "earliest"})
    assert [r.offset for r in records] == [2], (records, errors)


# ---------------------------------------------------------------------------
# DescribeCluster and DescribeLogDirs
# ---------------------------------------------------------------------------


def test_describe_cluster_names_this_broker_as_controller(broker, admin):
    described = admin.describe_cluster(include_authorized_operations=True, request_timeout=ADMIN_TIMEOUT_S)
    cluster = described.result(timeout=ADMIN_TIMEOUT_S + 5)
    assert cluster.cluster_id == "strand-single-node"
    assert [(n.host, n.port) for n in cluster.nodes] == [(broker.host, broker.port)]
    assert cluster.controller.id == cluster.nodes[0].id
    assert cluster.authorized_operations, "no authorizer: every cluster operation is allowed"


def test_kafka_python_describe_log_dirs_shows_partition_sizes(broker, kadmin):
    topic = unique_topic("logdirs")
    create_topic(broker.bootstrap, topic, 2)
    _produce_values(broker.bootstrap, topic, [b"x" * 1000 for _ in range(5)], partition=1)
    response = kadmin.describe_log_dirs()
    assert len(response.log_dirs) == 1
    error, log_dir, topics = response.log_dirs[0]
    assert error == ERR_NONE and log_dir == str(broker.data_dir)
    sizes = {p[0]: p for name, partitions in topics if name == topic for p in partitions}
    assert set(sizes) == {0, 1}
    assert sizes[0][1] == 0 and sizes[1][1] >= 5000, sizes
    assert all(p[2] == 0 and p[3] is False for p in sizes.values()), sizes
