"""Wire-level checks that every client library silently relies on."""

from __future__ import annotations

import io
import struct

from kafka.protocol.api_versions import ApiVersionsResponse_v0
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.protocol.produce import ProduceRequest

from conftest import (
    API_CREATE_TOPICS,
    API_DELETE_TOPICS,
    API_FETCH,
    API_LIST_OFFSETS,
    API_METADATA,
    API_PRODUCE,
    API_VERSIONS,
    ERR_UNSUPPORTED_VERSION,
    RawKafka,
    create_topic,
    record_batch,
    unique_topic,
    wait_until,
)

REQUIRED_APIS = {API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA, API_VERSIONS,
                 API_CREATE_TOPICS, API_DELETE_TOPICS}


def test_api_versions_lists_supported_apis(broker):
    with RawKafka(broker.bootstrap) as raw:
        versions = raw.api_versions
    missing = REQUIRED_APIS - set(versions)
    assert not missing, f"ApiVersions does not advertise api keys {sorted(missing)}: {versions}"
    for key, (lo, hi) in versions.items():
        assert 0 <= lo <= hi, f"api {key}: bad range {lo}..{hi}"
    # versions the clients in this suite need
    assert versions[API_VERSIONS][0] == 0, "ApiVersions v0 must stay supported (KIP-511 fallback)"
    assert versions[API_PRODUCE][1] >= 3, "Produce v3+ (record batch v2) required"
    assert versions[API_FETCH][1] >= 4, "Fetch v4+ (record batch v2) required"
    assert versions[API_LIST_OFFSETS][1] >= 1, "ListOffsets v1+ (timestamp lookup) required"


def test_api_versions_unsupported_version_falls_back_to_v0(broker):
    """KIP-511: an ApiVersions request with a version the broker does not know
    is answered with a v0 body carrying UNSUPPORTED_VERSION and the real ranges."""
    with RawKafka(broker.bootstrap) as raw:
        # ApiVersions v3+ use the flexible request header (v2); a v3-style
        # body: compact client_software_name/version + empty tagged fields
        body = raw.roundtrip(API_VERSIONS, 127, b"\x05test\x041.0\x00", flexible_header=True)
        resp = ApiVersionsResponse_v0.decode(io.BytesIO(body))
        assert resp.error_code == ERR_UNSUPPORTED_VERSION, resp
        assert {k for k, _lo, _hi in resp.api_versions} >= REQUIRED_APIS, resp
        # the connection stays usable
        assert raw.fetch_api_versions() == raw.api_versions


def test_metadata_controller_is_this_broker(broker):
    """librdkafka's AdminClient waits for Metadata.controller_id to name a
    known broker before it sends CreateTopics/DeleteTopics."""
    with RawKafka(broker.bootstrap) as raw:
        v = raw.pick_version(API_METADATA, 1, 4)
        req = MetadataRequest[v](None) if v < 4 else MetadataRequest[v](None, False)
        resp = MetadataResponse[v].decode(io.BytesIO(raw.roundtrip(API_METADATA, v, req.encode()))).to_object()
    brokers = resp["brokers"]
    assert len(brokers) == 1, brokers
    node = brokers[0]["node_id"]
    assert (brokers[0]["host"], brokers[0]["port"]) == ("127.0.0.1", broker.port)
    assert resp["controller_id"] == node, resp


def test_pipelined_requests_answered_in_order(broker):
    """Clients keep many requests in flight on one connection; responses must
    come back in request order with matching correlation ids."""
    n = 200
    with RawKafka(broker.bootstrap) as raw:
        client_id = b"pipeline"
        frames = []
        for i in range(n):
            corr = 10_000 + i
            if i % 2:
                header = struct.pack(">hhih", API_VERSIONS, 0, corr, len(client_id)) + client_id
                body = b""
            else:
                v = raw.pick_version(API_METADATA, 1, 4)
                header = struct.pack(">hhih", API_METADATA, v, corr, len(client_id)) + client_id
                # (keep the Struct referenced: kafka-python's encode() is a weak method)
                req = MetadataRequest[v]([]) if v < 4 else MetadataRequest[v]([], False)
                body = req.encode()
            frames.append(struct.pack(">i", len(header) + len(body)) + header + body)
        raw.sock.sendall(b"".join(frames))
        got = []
        for _ in range(n):
            (size,) = struct.unpack(">i", raw._recv_exact(4))
            data = raw._recv_exact(size)
            got.append(struct.unpack(">i", data[:4])[0])
    assert got == [10_000 + i for i in range(n)]


def test_acks0_produce_gets_no_response(broker):
    """With acks=0 the broker must not answer at all: a stray response would be
    matched against the client's next request."""
    topic = unique_topic("acks0raw")
    create_topic(broker.bootstrap, topic, 1)
    with RawKafka(broker.bootstrap) as raw:
        v = raw.pick_version(API_PRODUCE, 3, 8)
        client_id = b"acks0"
        req = ProduceRequest[v](None, 0, 10_000, [(topic, [(0, record_batch([b"fire", b"forget"]))])])
        body = req.encode()
        header = struct.pack(">hhih", API_PRODUCE, v, 777, len(client_id)) + client_id
        raw.sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        # the next response on this connection must belong to the next request
        raw.corr = 777
        resp = ApiVersionsResponse_v0.decode(io.BytesIO(raw.roundtrip(API_VERSIONS, 0, b"")))
        assert resp.error_code == 0
        # and the fire-and-forget records were appended
        wait_until(lambda: raw.list_offsets(topic, 0, -1)[0][2:5:2] == (0, 2), timeout=5,
                   what="acks=0 records to become visible")
