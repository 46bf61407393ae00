"""The agent-to-server store API: the event ring client agents' watches read, and what
the handlers accept (typed requests, only waypost's own key layout)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waypost.api.internal import EventRing
from waypost.http_client import HttpClient
from waypost.state import schema
from waypost.state.model import KVEntry
from waypost.state.state import State
from waypost.store import wire
from waypost.store.base import Compare, Delete, Op, Put
from waypost.store.memory import MemoryStore
from waypost.testing import AgentProcess, wait_for


async def test_ring_serves_batches_from_a_revision_and_reports_what_it_dropped() -> None:
    state = State(MemoryStore())
    await state.start()
    try:
        ring = EventRing(state, size=3)
        start = ring.first_available
        revisions = []
        for i in range(5):
            revisions.append(await state.store.put(f"k{i}", b"v"))
            await state.wait_applied(revisions[-1])
        assert ring.since(start) is None
        tail = ring.since(revisions[-2])
        assert tail is not None
        assert [batch[0].kv.key for batch in tail] == ["k3", "k4"]
        assert ring.since(revisions[-1] + 1) == []
        assert ring.first_available == revisions[2]
    finally:
        await state.close()


async def test_a_full_ring_leaves_nothing_for_the_collector_to_walk() -> None:
    """Every full collection walks every tracked object, pausing every request on the server."""
    state = State(MemoryStore())
    await state.start()
    try:
        ring = EventRing(state, size=3_000)
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(3_000):
            revision = await state.store.put("k", b"v")
        await state.wait_applied(revision)
        kept = ring.since(revision - 2_000)
        assert kept is not None
        assert sum(len(batch) for batch in kept) >= 2_001
        gc.collect()
        assert len(gc.get_objects()) - before < 1_000
    finally:
        await state.close()


async def test_ring_starts_afresh_after_the_state_re_reads_the_store() -> None:
    state = State(MemoryStore())
    await state.start()
    try:
        ring = EventRing(state)
        before = await state.store.put("kv/a", schema.encode(KVEntry(Key="a")))
        await state.wait_applied(before)
        await state.store.delete("kv/a")
        # What the feed does after the store compacted past it: a full read, which cannot show the delete.
        after = await state._relist() - 1
        assert ring.since(before) is None
        assert ring.first_available == after + 1
        assert ring.since(after + 1) == []
    finally:
        await state.close()


# -- what the handlers accept, against a real dev agent's agent-to-server listener ------

_GUARD = {"key": "kv/never-written", "target": "version", "op": ">", "value": 0}
"""A compare that is always false, so fuzzed transactions validate fully but never write."""

_PREFIXES = [t.prefix for t in schema.TABLES]


def _store_call(agent: AgentProcess, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    url = f"http://{agent.server_address}/v1/internal/store/{path}"
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _txn(agent: AgentProcess, success: list[Op], compares: list[Compare] | None = None) -> tuple[int, bytes]:
    return _store_call(agent, "PUT", "txn", wire.encode_txn_request(compares or [], success, []))


def _catalog(agent: AgentProcess) -> list[Any]:
    return [
        agent.get("/v1/catalog/nodes"),
        agent.get("/v1/catalog/services"),
        agent.get("/v1/health/state/any"),
    ]


def _kv(key: str) -> bytes:
    return schema.encode(KVEntry(Key=key, Value=b"v"))


@pytest.mark.parametrize(
    ("request_body", "named"),
    [
        ({"compares": [{"key": "k", "target": "mod", "op": "=", "value": b"x"}]}, "$.compares[0]"),
        ({"compares": [{"key": "k", "target": "value", "op": "=", "value": 1}]}, "$.compares[0]"),
        ({"compares": [{"key": "", "target": "mod", "op": "=", "value": 1}]}, "$.compares[0].key"),
        ({"compares": [{"key": "k", "target": "mod", "op": "~", "value": 1}]}, "$.compares[0].op"),
        ({"compares": [{"key": "k", "target": "mod", "op": "=", "value": -1}]}, "$.compares[0].value"),
        ({"compares": [{"key": "k", "target": "mod", "op": "=", "value": 2**63}]}, "$.compares[0].value"),
        ({"success": [{"kind": "nuke", "key": "kv/a"}]}, "$.success[0].kind"),
        ({"success": [{"kind": "put", "key": "kv/a", "value": "text"}]}, "$.success[0].value"),
        ({"success": [{"kind": "put", "key": "kv/a", "value": b"", "lease": -5}]}, "$.success[0].lease"),
        ({"success": [{"kind": "put", "key": "kv/a", "value": b"", "extra": 1}]}, "extra"),
        ({"failure": [{"kind": "delete", "key": ""}]}, "$.failure[0]"),
        ({"success": [{"kind": "range", "key": "kv/a"}] * (wire.MAX_TXN_OPS + 1)}, "$.success"),
        ({"compares": "all"}, "$.compares"),
        ([1, 2, 3], "object"),
    ],
)
def test_a_malformed_transaction_is_400_naming_the_field(
    dev_agent: AgentProcess, request_body: Any, named: str
) -> None:
    status, body = _store_call(dev_agent, "PUT", "txn", msgspec.msgpack.encode(request_body))
    assert status == 400
    assert body.startswith(b"bad store transaction: ")
    assert named.encode() in body


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x81\xa7success\x91\x82\xa4kind\xa3put\xa3key\xa2\xff\xfe"])
def test_undecodable_bytes_and_non_utf8_keys_are_400(dev_agent: AgentProcess, raw: bytes) -> None:
    status, body = _store_call(dev_agent, "PUT", "txn", raw)
    assert status == 400
    assert body.startswith(b"bad store transaction: ")


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (Put("elsewhere/x", b"v"), "Invalid key 'elsewhere/x': not under any table prefix"),
        (Put("kv/bad", b"\xc1"), "Invalid value for key 'kv/bad': not a KVEntry record"),
        (Put("catalog/nodes/n", _kv("n")), "Invalid value for key 'catalog/nodes/n': not a Node record"),
        (Put("catalog/services/only-a-node", b"\x80"), "Invalid key 'catalog/services/only-a-node'"),
        (Put("kv/", _kv("")), "Invalid key 'kv/'"),
        (Delete("catalog/", prefix=True), "Invalid key 'catalog/': not under any table prefix"),
        (Delete("", prefix=True), "Invalid key '': not under any table prefix"),
        (Put("kv/huge", _kv("huge") + b"x" * (600 * 1024)), "Value for key 'kv/huge' too large"),
    ],
)
def test_writes_outside_the_key_layout_are_400_naming_the_key(
    dev_agent: AgentProcess, op: Op, message: str
) -> None:
    before = _catalog(dev_agent)
    status, body = _txn(dev_agent, [op])
    assert (status, body.decode()[: len(message)]) == (400, message)
    assert _catalog(dev_agent) == before


def test_a_branch_writing_one_key_twice_is_400_even_when_it_would_not_run(dev_agent: AgentProcess) -> None:
    compares = [Compare("kv/never-written", "version", ">", 0)]
    status, body = _txn(dev_agent, [Put("kv/twice", _kv("twice")), Delete("kv/", prefix=True)], compares)
    assert (status, body) == (400, b"bad store transaction: duplicate key given in txn request")


def test_well_formed_writes_and_deletes_of_any_table_key_apply(dev_agent: AgentProcess) -> None:
    status, body = _txn(dev_agent, [Put("kv/layout/ok", _kv("layout/ok"))])
    assert status == 200
    assert wire.decode_txn_result(body).succeeded
    assert dev_agent.request("GET", "/v1/kv/layout/ok?raw")[2] == b"v"
    # A malformed key may be deleted: that is how a record the readers set aside is removed.
    status, body = _txn(dev_agent, [Delete("kv/layout/ok"), Delete("catalog/services/no-id")])
    assert status == 200
    assert wire.decode_txn_result(body).responses == [1, 0]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "get", 400, b"Missing key"),
        ("GET", "get?key=", 400, b"Missing key"),
        ("GET", "watch?from=-1", 400, b"Invalid from"),
        ("GET", "watch?wait=forever", 400, b"Invalid wait time"),
        ("PUT", "lease/grant", 400, b"Invalid ttl"),
        ("PUT", "lease/grant?ttl=0s", 400, b"Invalid ttl"),
        ("PUT", "lease/grant?ttl=-10s", 400, b"Invalid ttl"),
        ("PUT", "lease/grant?ttl=2562047h", 400, b"Invalid ttl"),
        ("PUT", "lease/keepalive", 400, b"Missing lease id"),
        ("PUT", "lease/revoke/", 400, b"Missing lease id"),
        ("PUT", "lease/keepalive/-1", 400, b"Invalid lease id '-1'"),
        ("PUT", f"lease/keepalive/{2**64}", 400, b"Invalid lease id"),
        ("PUT", "lease/revoke/%C3%A9", 400, b"Invalid lease id"),
        ("PUT", f"lease/keepalive/{2**62}", 404, b""),
        ("PUT", "lease/explode/1", 404, b"unknown lease action 'explode'"),
        ("GET", "range?scope=", 400, b"Invalid scope: an empty entry"),
        ("GET", "watch?from=1&scope=acl/&scope=", 400, b"Invalid scope: an empty entry"),
        ("GET", "range?" + "&".join(["scope=kv/"] * 129), 400, b"Invalid scope: at most 128 entries"),
    ],
)
def test_bad_parameters_are_4xx_naming_them(
    dev_agent: AgentProcess, method: str, path: str, status: int, message: bytes
) -> None:
    got, body = _store_call(dev_agent, method, path)
    assert got == status
    assert message in body


_keys = st.one_of(
    st.sampled_from(_PREFIXES).flatmap(lambda p: st.text(max_size=12).map(lambda rest: p + rest)),
    st.text(max_size=16),
)
_ints = st.one_of(st.integers(-(2**63), 2**64 - 1), st.sampled_from([0, 1, 2**63 - 1, 2**63]))
_values = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"\x80", b"\x81\xa4Node\xa1x", _kv("fuzz")]),
    st.builds(
        msgspec.msgpack.encode,
        st.dictionaries(
            st.sampled_from(["Key", "Node", "ID", "Service", "Value", "Flags", "x"]), _ints | st.text()
        ),
    ),
)
_wire_ops = st.fixed_dictionaries(
    {"kind": st.sampled_from(["put", "delete", "range", "bogus"]), "key": _keys | _ints},
    optional={"value": _values | st.text(max_size=4), "lease": _ints, "prefix": st.booleans() | _ints},
)
_compares = st.fixed_dictionaries(
    {
        "key": _keys,
        "target": st.sampled_from(["value", "version", "create", "mod", "lease", "nope"]),
        "op": st.sampled_from(["=", "!=", "<", ">", "=="]),
        "value": _ints | st.binary(max_size=8),
    }
)
_structured = st.builds(
    lambda compares, success: msgspec.msgpack.encode({"compares": [_GUARD, *compares], "success": success}),
    st.lists(_compares, max_size=3),
    st.lists(_wire_ops, max_size=4),
)
_junk = st.recursive(
    st.none() | st.booleans() | _ints | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
).map(msgspec.msgpack.encode)
_params = st.one_of(st.text(max_size=12), _ints.map(str), st.sampled_from(["", "0", "1ms", "-5s", "1x"]))
_reads = st.one_of(
    st.tuples(st.just("range"), st.fixed_dictionaries({}, optional={"prefix": _params})),
    st.tuples(st.just("get"), st.fixed_dictionaries({}, optional={"key": _params})),
    st.tuples(st.just("revision"), st.fixed_dictionaries({}, optional={"x": _params})),
    st.tuples(
        st.just("watch"),
        st.fixed_dictionaries(
            {"wait": st.sampled_from(["1ms", "10ms", "-5s", "abc", "99999999999h"])},
            optional={"from": _params},
        ),
    ),
)
_leases = st.tuples(
    st.sampled_from(["grant", "keepalive", "revoke", "renew", ""]),
    st.one_of(st.integers(10**9, 2**64).map(str), st.text(max_size=6), st.just("")),
    st.fixed_dictionaries({}, optional={"ttl": _params}),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(txn_body=st.one_of(_structured, _junk, st.binary(max_size=64)), read=_reads, lease_call=_leases)
def test_any_input_to_any_store_route_is_answered_without_an_internal_error(
    dev_agent: AgentProcess,
    txn_body: bytes,
    read: tuple[str, dict[str, str]],
    lease_call: tuple[str, str, dict[str, str]],
) -> None:
    before = _catalog(dev_agent)
    status, _ = _store_call(dev_agent, "PUT", "txn", txn_body)
    assert 200 <= status < 500
    route, params = read
    status, _ = _store_call(dev_agent, "GET", f"{route}?{urlencode(params)}")
    assert 200 <= status < 500
    action, ident, params = lease_call
    status, _ = _store_call(dev_agent, "PUT", f"lease/{action}/{quote(ident)}?{urlencode(params)}")
    assert 200 <= status < 500
    assert _catalog(dev_agent) == before


def test_a_scoped_read_holds_only_its_scope(dev_agent: AgentProcess) -> None:
    """A lean client's replica: a scope's prefixes (ending in ``/``) and exact keys, read at
    one revision."""
    dev_agent.put("/v1/kv/scoped/a", b"1")
    dev_agent.put("/v1/kv/scoped-not/b", b"2")
    dev_agent.put("/v1/kv/scoped", b"3")
    status, body = _store_call(dev_agent, "GET", "range?scope=kv/scoped/&scope=kv/scoped")
    assert status == 200
    result = wire.decode_range(body)
    assert [kv.key for kv in result.kvs] == ["kv/scoped/a", "kv/scoped"]


async def test_a_replica_stream_sends_its_scope_from_a_revision_and_then_each_change(
    dev_agent: AgentProcess,
) -> None:
    """Its first frame holds what changed in scope since ``from`` and the revision it read
    up to; then a frame per revision touching the scope, none for the rest."""
    dev_agent.put("/v1/kv/streamed-not/a", b"0")
    start = _revision(dev_agent) + 1
    dev_agent.put("/v1/kv/streamed/a", b"1")
    dev_agent.put("/v1/kv/streamed-not/b", b"2")
    http = HttpClient()
    url = f"http://{dev_agent.server_address}/v1/internal/store/stream?from={start}&scope=kv/streamed/"
    resp = await http.request("GET", url, read_timeout=30)
    try:
        assert resp.status == 200
        frames = wire.FrameReader()
        chunks = resp.chunks()
        got = frames.feed(await anext(chunks))
        reached, batches = got[0]
        assert [[ev.kv.key for ev in batch] for batch in batches] == [["kv/streamed/a"]]
        assert reached == _revision(dev_agent)
        await asyncio.to_thread(dev_agent.put, "/v1/kv/streamed-not/c", b"3")
        await asyncio.to_thread(dev_agent.put, "/v1/kv/streamed/d", b"4")
        got = []
        while not got:
            got = frames.feed(await anext(chunks))
        assert [(r, [[ev.kv.key for ev in b] for b in bs]) for r, bs in got] == [
            (reached + 2, [["kv/streamed/d"]])
        ]
    finally:
        resp.close()
        await http.close()


def test_a_replica_stream_needs_a_scope_and_history_the_server_still_keeps(dev_agent: AgentProcess) -> None:
    status, body = _store_call(dev_agent, "GET", "stream?from=1")
    assert (status, body) == (400, b"Missing scope")
    status, body = _store_call(dev_agent, "GET", "stream?from=soon&scope=kv/")
    assert status == 400
    assert b"from" in body
    status, body = _store_call(dev_agent, "GET", "stream?from=1&scope=")
    assert (status, body) == (400, b"Invalid scope: an empty entry")
    status, body = _store_call(dev_agent, "GET", "watch?from=1&scope=kv/")
    assert status == 400
    assert b"/v1/internal/store/stream" in body
    status, body = _store_call(dev_agent, "GET", "stream?from=0&scope=kv/")
    assert status == 410
    assert wire.decode_number(body) > 1


def test_a_replica_stream_that_stops_reading_is_cut_off_and_counted(dev_agent: AgentProcess) -> None:
    """What a server holds for a client that stopped reading is bounded (``replica_feed.LIMIT``)."""
    start = _revision(dev_agent) + 1
    host, port = dev_agent.server_address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect((host, int(port)))
        sock.sendall(
            f"GET /v1/internal/store/stream?from={start}&scope=kv/flood/ HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: _gauge(dev_agent, "waypost.server.replica_streams") == 1, 10)
        value = b"x" * 60_000
        for i in range(200):
            dev_agent.put(f"/v1/kv/flood/{i}", value)
            if _counter(dev_agent, "waypost.server.replica_cut_off"):
                break
        assert wait_for(lambda: _counter(dev_agent, "waypost.server.replica_cut_off") == 1, 10)
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(1 << 20):
                pass
    assert wait_for(lambda: _gauge(dev_agent, "waypost.server.replica_streams") == 0, 10)


def _counter(agent: AgentProcess, name: str) -> int:
    return int(next(c["Count"] for c in agent.get("/v1/agent/metrics")["Counters"] if c["Name"] == name))


def _gauge(agent: AgentProcess, name: str) -> float:
    return float(next(g["Value"] for g in agent.get("/v1/agent/metrics")["Gauges"] if g["Name"] == name))


def _revision(agent: AgentProcess) -> int:
    return wire.decode_number(_store_call(agent, "GET", "revision")[1])


def test_in_scope_tells_prefixes_from_exact_keys() -> None:
    scope = ["catalog/services/edge/", "catalog/nodes/edge"]
    assert wire.in_scope("catalog/services/edge/web", scope)
    assert wire.in_scope("catalog/nodes/edge", scope)
    assert not wire.in_scope("catalog/nodes/edge-2", scope)
    assert not wire.in_scope("catalog/services/edge-2/web", scope)
