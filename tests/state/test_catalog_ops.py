from __future__ import annotations

import pytest

from waypost.state import catalog_ops, queries
from waypost.state.catalog_ops import CatalogError
from waypost.state.model import HealthCheck, Node, NodeService
from waypost.state.state import State

NODE = Node(Node="n1", Address="10.0.0.1")
WEB = NodeService(ID="web-1", Service="web", Port=80, Tags=["v1"])


async def test_register_assigns_indexes_and_skips_identical_writes(state: State) -> None:
    first = await catalog_ops.register(state, NODE, [WEB])
    again = await catalog_ops.register(state, NODE, [WEB])
    assert again == first
    svc = state.indexes.services["n1"]["web-1"]
    assert svc.CreateIndex == svc.ModifyIndex == first


async def test_check_takes_service_name_and_tags(state: State) -> None:
    await catalog_ops.register(
        state,
        NODE,
        [WEB],
        [HealthCheck(Node="n1", CheckID="c", Name="c", ServiceID="web-1", Status="passing")],
    )
    check = state.indexes.checks["n1"]["c"]
    assert (check.ServiceName, check.ServiceTags) == ("web", ["v1"])


async def test_check_for_unknown_service_is_refused(state: State) -> None:
    with pytest.raises(CatalogError, match="Unknown service ID 'nope'"):
        await catalog_ops.register(
            state, NODE, [], [HealthCheck(Node="n1", CheckID="c", Name="c", ServiceID="nope")]
        )


async def test_deregister_node_removes_everything_and_bumps_service_index(state: State) -> None:
    await catalog_ops.register(state, NODE, [WEB], [HealthCheck(Node="n1", CheckID="n", Name="n")])
    before = state.indexes.service_index("web")
    await catalog_ops.deregister(state, "n1")
    idx = state.indexes
    assert "n1" not in idx.nodes
    assert "n1" not in idx.checks
    assert "web" not in idx.instances
    assert idx.service_index("web") > before


async def test_deregister_service_takes_its_checks(state: State) -> None:
    await catalog_ops.register(
        state,
        NODE,
        [WEB],
        [
            HealthCheck(Node="n1", CheckID="svc", Name="svc", ServiceID="web-1"),
            HealthCheck(Node="n1", CheckID="node", Name="node"),
        ],
    )
    await catalog_ops.deregister(state, "n1", service_id="web-1")
    assert set(state.indexes.checks["n1"]) == {"node"}


async def test_passing_filter_and_per_service_index(state: State) -> None:
    await catalog_ops.register(
        state,
        NODE,
        [WEB, NodeService(ID="db-1", Service="db")],
        [HealthCheck(Node="n1", CheckID="c", Name="c", ServiceID="web-1", Status="warning")],
    )
    db_index = state.indexes.service_index("db")
    _, _, all_web = queries.service_instances(state.indexes, "web")
    _, _, passing = queries.service_instances(state.indexes, "web", passing_only=True)
    assert (len(all_web), len(passing)) == (1, 0)
    await catalog_ops.register(
        state, NODE, [], [HealthCheck(Node="n1", CheckID="c", Name="c", ServiceID="web-1", Status="passing")]
    )
    assert state.indexes.service_index("db") == db_index
    assert len(queries.service_instances(state.indexes, "web", passing_only=True)[2]) == 1
