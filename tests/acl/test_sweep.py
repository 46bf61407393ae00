"""The ACL sweep: every route has an explicit rule, and against a default-deny agent every
route but Consul's open ones refuses (403) or filters (/v1/txn its KV reads) without a token,
and works with a token whose policy grants exactly what the route needs."""

from __future__ import annotations

import pytest

from acl_kit import Caller
from acl_sweep import UNSWEPT, Case, check_case, seed, sweep_cases
from waypost.api.acl_rules import NEEDS, OPEN
from waypost.api.routes import ROUTES

NODE = "acl-node"


def _route_keys() -> set[tuple[str, str]]:
    return {("PUT" if m == "POST" else m, path) for methods, path, _ in ROUTES for m in methods}


def test_every_route_has_an_explicit_rule() -> None:
    routes = _route_keys()
    assert routes - set(NEEDS) == set(), "routes without an ACL rule"
    assert set(NEEDS) - routes == set(), "ACL rules for routes that do not exist"


def test_only_consuls_open_routes_are_open() -> None:
    opened = {key for key, need in NEEDS.items() if need is OPEN}
    assert opened == {
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/ui/:path"),
        ("GET", "/v1/status/leader"),
        ("GET", "/v1/agent/connect/ca/roots"),
        ("GET", "/v1/connect/ca/roots"),
        ("GET", "/v1/status/peers"),
        ("GET", "/v1/catalog/datacenters"),
        ("GET", "/v1/coordinate/datacenters"),
        ("PUT", "/v1/acl/bootstrap"),
        ("GET", "/v1/acl/replication"),
    }


CASES = sweep_cases(NODE)


@pytest.fixture(scope="module")
def seeded(call: Caller) -> dict[str, str]:
    return seed(call, NODE)


def test_the_sweep_covers_every_route() -> None:
    swept = {("PUT" if c.method == "POST" else c.method, c.path.split("?")[0]) for c in CASES}
    concrete = {key for key in NEEDS if NEEDS[key] is not OPEN} - set(UNSWEPT)

    def matches(route: tuple[str, str], case: tuple[str, str]) -> bool:
        method, path = route
        if method != case[0]:
            return False
        if "/:" not in path:
            return path == case[1]
        prefix = path[: path.index("/:") + 1]
        if not case[1].startswith(prefix):
            return False
        return not any(
            other[0] == method and "/:" in other[1] and len(other[1]) > len(path)
            and case[1].startswith(other[1][: other[1].index("/:") + 1])
            for other in NEEDS
        )  # fmt: skip

    missing = {route for route in concrete if not any(matches(route, case) for case in swept)}
    assert missing == set()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_route_refuses_or_filters_without_a_token_and_works_with_exactly_its_grant(
    call: Caller, seeded: dict[str, str], case: Case
) -> None:
    check_case(call, case, seeded)
