from __future__ import annotations

import asyncio
from collections.abc import Callable

from checks_kit import Harness

from waypost.checks.alias import alias_result
from waypost.checks.definition import parse_check_definition
from waypost.state.model import HealthCheck


class MemoryCatalog:
    """An in-memory AliasSource: what the agent provides over its real catalog."""

    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], HealthCheck] = {}
        self.services: set[tuple[str, str]] = set()
        self.index = 1
        self._changed = asyncio.Event()

    def put(self, node: str, check_id: str, status: str, output: str = "", service_id: str = "") -> None:
        if service_id:
            self.services.add((node, service_id))
        self.checks[node, check_id] = HealthCheck(
            Node=node,
            CheckID=check_id,
            Name=f"{check_id} check",
            Status=status,
            Output=output,
            ServiceID=service_id,
        )
        self.index += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def node_checks(self, node: str) -> list[HealthCheck]:
        return [c for (n, _), c in self.checks.items() if n == (node or "local")]

    def service_exists(self, node: str, service_id: str) -> bool:
        return (node or "local", service_id) in self.services

    async def wait_change(self, node: str, last_index: int) -> int:
        while self.index <= last_index:
            await self._changed.wait()
        return self.index


async def test_service_alias_follows_the_worst_check(make_harness: Callable[..., Harness]) -> None:
    catalog = MemoryCatalog()
    catalog.put("local", "web-http", "passing", "200 OK", service_id="web")
    catalog.put("local", "other", "critical", "ignored", service_id="db")
    harness = make_harness(alias_source=catalog)
    await harness.scheduler.start()
    check = harness.add({"AliasService": "web", "ServiceID": "web-sidecar"})
    assert await harness.recorder.wait_for(check, "passing") == "All checks passing."

    catalog.put("local", "web-http", "warning", "slow", service_id="web")
    assert await harness.recorder.wait_for(check, "warning") == 'Aliased check "web-http check" failing: slow'

    catalog.put("local", "disk", "critical", "full")
    assert await harness.recorder.wait_for(check, "critical") == 'Aliased check "disk check" failing: full'

    catalog.put("local", "disk", "passing")
    catalog.put("local", "web-http", "passing", service_id="web")
    await harness.recorder.wait_for(check, "passing")


async def test_remote_node_alias(make_harness: Callable[..., Harness]) -> None:
    catalog = MemoryCatalog()
    catalog.put("n2", "serfHealth", "passing")
    catalog.put("n2", "web", "critical", service_id="web")
    harness = make_harness(alias_source=catalog)
    await harness.scheduler.start()
    check = harness.add({"AliasNode": "n2"})
    assert await harness.recorder.wait_for(check, "passing") == "All checks passing."
    catalog.put("n2", "serfHealth", "critical", "Agent not live or unreachable")
    output = await harness.recorder.wait_for(check, "critical")
    assert output == 'Aliased check "serfHealth check" failing: Agent not live or unreachable'


class BrokenCatalog(MemoryCatalog):
    def node_checks(self, node: str) -> list[HealthCheck]:
        raise ConnectionError("catalog unavailable")


async def test_unreadable_catalog_is_critical(make_harness: Callable[..., Harness]) -> None:
    harness = make_harness(alias_source=BrokenCatalog())
    await harness.scheduler.start()
    check = harness.add({"AliasNode": "n2"})
    output = await harness.recorder.wait_for(check, "critical")
    assert output == "Failure checking aliased node or service: catalog unavailable"


def test_missing_service_is_critical_but_a_checkless_one_passes() -> None:
    definition = parse_check_definition({"AliasService": "web"})
    missing = alias_result(definition, "me", [], lambda: False)
    assert (missing.status, missing.output) == ("critical", "Service web could not be found on node ")
    checkless = alias_result(definition, "me", [], lambda: True)
    assert (checkless.status, checkless.output) == ("passing", "No checks found.")


def test_own_check_is_not_aliased() -> None:
    definition = parse_check_definition({"AliasService": "web"})
    me = HealthCheck(Node="local", CheckID="me", Name="me", Status="critical")
    web = HealthCheck(Node="local", CheckID="w", Name="w", Status="passing", ServiceID="web")
    result = alias_result(definition, "me", [me, web], lambda: True)
    assert result.status == "passing"
