"""Alias checks: mirror the worst health of another service instance or node.

Event-driven rather than polled: the check sleeps in :meth:`AliasSource.wait_change`
and re-reads when the catalog moves, plus once a minute in case an edge was missed,
as Consul does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence

from waypost.checks.base import AliasSource, CheckResult, Clock
from waypost.checks.definition import CheckDefinition
from waypost.state.model import CheckStatus, HealthCheck

__all__ = ["REFRESH_EVERY", "alias_result", "follow_alias"]

REFRESH_EVERY = 60.0
"""Consul's ``maxDurationBetweenUpdates``: the longest an alias trusts it missed nothing."""


def alias_result(
    definition: CheckDefinition,
    own_check_id: str,
    checks: Sequence[HealthCheck],
    service_exists: Callable[[], bool],
) -> CheckResult:
    """Consul's ``processChecks``: critical beats warning beats passing.

    Node-level checks count for a service alias too, since a sick node makes its
    services sick. ``service_exists`` is asked only when no check matched, since for a
    remote node it costs a catalog read.
    """
    node, service_id = definition.alias_node, definition.alias_service
    status, output = CheckStatus.PASSING, "No checks found."
    found = False
    for check in checks:
        if check.CheckID == own_check_id and not node:
            continue
        if node and check.Node.lower() != node.lower():
            continue
        if check.ServiceID and check.ServiceID != service_id:
            continue
        found = found or check.ServiceID == service_id
        if check.Status in (CheckStatus.CRITICAL, CheckStatus.WARNING):
            status = CheckStatus(check.Status)
            output = f"Aliased check {json.dumps(check.Name)} failing: {check.Output}"
            if status is CheckStatus.CRITICAL:
                break
        elif status is CheckStatus.PASSING:
            output = "All checks passing."
    if not found and not service_exists():
        return CheckResult(CheckStatus.CRITICAL, f"Service {service_id} could not be found on node {node}")
    return CheckResult(status, output)


async def follow_alias(
    check_id: str,
    definition: CheckDefinition,
    source: AliasSource,
    clock: Clock,
    report: Callable[[CheckResult], None],
) -> None:
    """Report the alias's result after every catalog change until cancelled."""
    node, service_id = definition.alias_node, definition.alias_service
    index = 0
    while True:
        try:
            async with clock.timeout(REFRESH_EVERY):
                try:
                    index = await source.wait_change(node, index)
                except Exception as exc:
                    report(_failure(exc))
                    # Hold until the refresh deadline instead of retrying in a hot loop.
                    await asyncio.get_running_loop().create_future()
        except TimeoutError:
            pass
        try:
            checks = source.node_checks(node)
            result = alias_result(
                definition, check_id, checks, lambda: source.service_exists(node, service_id)
            )
        except Exception as exc:
            result = _failure(exc)
        report(result)


def _failure(exc: Exception) -> CheckResult:
    return CheckResult(CheckStatus.CRITICAL, f"Failure checking aliased node or service: {exc}")
