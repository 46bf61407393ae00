"""The static backend maps catalog records onto the DNS protocol."""

from __future__ import annotations

from waypost.dns.static import StaticBackend


def test_status_is_the_worst_of_node_and_service_checks(backend: StaticBackend) -> None:
    status = {i.node.name: i.status for i in backend.service_instances("web", None)}
    assert status == {"foo": "passing", "bar": "warning", "baz": "critical"}


def test_lookups_ignore_case(backend: StaticBackend) -> None:
    assert [i.node.name for i in backend.service_instances("WEB", "Primary")] == ["foo"]
    node = backend.node("FOO")
    assert node is not None
    assert node.meta["rack"] == "a"
    assert backend.prepared_query("PQ") is not None


def test_reverse_indexes(backend: StaticBackend) -> None:
    assert [n.name for n in backend.nodes_by_address("10.0.0.2")] == ["bar"]
    assert [i.service for i in backend.services_by_address("10.1.0.1")] == ["db"]
    assert backend.services_by_address("10.0.0.2") == []
