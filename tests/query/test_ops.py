"""Stored queries: Consul's integrity rules, name resolution, and dying with their session."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from etcd_cluster import EtcdCluster
from waypost.query.definition import QueryError, decode_definition
from waypost.query.ops import QueryNotFoundError, Resolver, create_query, delete_query, update_query
from waypost.state import catalog_ops, session_ops
from waypost.state.model import Node, PreparedQuery, Session
from waypost.state.state import State
from waypost.store.etcd import EtcdStore


def _def(**fields: object) -> PreparedQuery:
    return decode_definition({"Service": {"Service": "web"}, **fields})


async def test_names_are_unique_case_blind_and_cannot_alias_an_id(state: State) -> None:
    qid = await create_query(state, _def(Name="Web"))
    with pytest.raises(QueryError, match="name 'web' aliases an existing query name"):
        await create_query(state, _def(Name="web"))
    with pytest.raises(QueryError, match="aliases an existing query ID"):
        await create_query(state, _def(Name=qid))
    await create_query(state, _def(Template={"Type": "name_prefix_match"}))
    with pytest.raises(QueryError, match="a query template with an empty name already exists"):
        await create_query(state, _def(Template={"Type": "name_prefix_match"}))


async def test_update_and_delete_need_an_existing_query(state: State) -> None:
    missing = "5a0ab7c9-0000-4000-8000-000000000000"
    with pytest.raises(QueryError, match=f"Cannot modify non-existent prepared query: '{missing}'"):
        await update_query(state, msgspec.structs.replace(_def(Name="x"), ID=missing))
    with pytest.raises(QueryError, match="non-existent"):
        await delete_query(state, missing)


async def test_resolution_by_id_name_then_longest_template_prefix(state: State) -> None:
    resolver = Resolver()
    static = await create_query(state, _def(Name="geo-db-static"))
    await create_query(
        state, _def(Name="", Template={"Type": "name_prefix_match"}, Service={"Service": "${name.full}"})
    )
    geo = await create_query(
        state,
        _def(Name="geo", Template={"Type": "name_prefix_match"}, Service={"Service": "g${name.suffix}"}),
    )
    idx = state.indexes
    assert resolver.resolve(idx, static).Name == "geo-db-static"
    assert static == resolver.resolve(idx, "GEO-DB-STATIC").ID
    assert resolver.resolve(idx, "geo-x").Service.Service == "g-x"
    assert resolver.resolve(idx, "other").Service.Service == "other"
    with pytest.raises(QueryError, match="templates can only be resolved up by name"):
        resolver.resolve(idx, geo)


async def test_a_query_dies_with_its_session_destroyed_or_expired(state: State) -> None:
    await catalog_ops.register(state, Node(Node="n1", Address="127.0.0.1"))
    with pytest.raises(QueryError, match='invalid session "nope"'):
        await create_query(state, _def(Session="nope"))
    plain = await session_ops.create_session(state, Session(ID="", Node="n1"))
    ttl = await session_ops.create_session(state, Session(ID="", Node="n1", TTL="10s"), ttl=0.2)
    bound = await create_query(state, _def(Session=plain))
    leased = await create_query(state, _def(Session=ttl))
    kept = await create_query(state, _def(Name="kept"))
    await session_ops.destroy_session(state, plain)
    assert bound not in state.indexes.prepared_queries
    for _ in range(100):
        if leased not in state.indexes.prepared_queries:
            break
        await asyncio.sleep(0.1)
    assert leased not in state.indexes.prepared_queries
    assert kept in state.indexes.prepared_queries
    with pytest.raises(QueryNotFoundError):
        Resolver().resolve(state.indexes, leased)


@pytest.mark.etcd
async def test_servers_sharing_etcd_agree_on_names_even_racing_and_a_leased_query_expires(
    etcd: EtcdCluster,
) -> None:
    stores = [EtcdStore(etcd.endpoints) for _ in range(2)]
    states = [State(s) for s in stores]
    try:
        for st in states:
            await asyncio.wait_for(st.start(), 10)
        one, two = states
        await catalog_ops.register(one, Node(Node="n1", Address="127.0.0.1"))
        qid = await create_query(one, _def(Name="shared"))
        await asyncio.wait_for(two.catch_up(), 10)
        assert qid == Resolver().resolve(two.indexes, "SHARED").ID
        with pytest.raises(QueryError, match="aliases an existing query name"):
            await create_query(two, _def(Name="shared"))
        for round_ in range(5):
            raced = await asyncio.gather(
                *(create_query(st, _def(Name=f"raced-{round_}")) for st in (one, two, one, two)),
                return_exceptions=True,
            )
            assert sum(isinstance(r, str) for r in raced) == 1, raced
            assert all(isinstance(r, str | QueryError) for r in raced), raced
            await asyncio.wait_for(two.catch_up(), 10)
            names = [q.Name for q in two.indexes.prepared_queries.values()]
            assert names.count(f"raced-{round_}") == 1
        sid = await session_ops.create_session(two, Session(ID="", Node="n1", TTL="10s"), ttl=0.5)
        leased = await create_query(two, _def(Session=sid))
        for _ in range(100):
            await asyncio.wait_for(one.catch_up(), 10)
            if leased not in one.indexes.prepared_queries:
                break
            await asyncio.sleep(0.1)
        assert leased not in one.indexes.prepared_queries
        assert qid in one.indexes.prepared_queries
    finally:
        for st in states:
            await st.close()
        for s in stores:
            await s.close()
