"""Consul's agent caching: the cache's rules on real requests and answers (with a clock the
test moves), then ``?cached`` over HTTP on a real agent."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from waypost.api.caching import BACKGROUND, CACHED_ROUTES, SIMPLE, TTL, AgentCache, Caching, Ticket
from waypost.api.common import HTTPError, parse_cache_control
from waypost.api.http import Request, Response
from waypost.api.routes import ROUTES
from waypost.testing import AgentProcess, ManualClock, wait_for

BG = Caching(BACKGROUND)
EXECUTE = Caching(SIMPLE, suffix="/execute")


def _req(path: str, query: str = "cached", headers: dict[str, str] | None = None) -> Request:
    return Request("GET", path, query, headers or {}, b"")


def _headers(resp: Response) -> dict[str, str]:
    return dict(resp.headers)


def _ticket(opened: Ticket | Response | None) -> Ticket:
    assert isinstance(opened, Ticket)
    return opened


def _closed(answer: object) -> Response:
    assert isinstance(answer, Response)
    return answer


def test_every_declared_route_exists() -> None:
    paths = {path for _, path, _ in ROUTES}
    assert set(CACHED_ROUTES) <= paths


def test_background_first_request_misses_then_hits_with_the_replica_age() -> None:
    contact = [0.0]
    cache = AgentCache(lambda: contact[0], clock=ManualClock())
    body = Response(b"[]", headers=[("X-Consul-Index", "7")])
    first = _closed(_ticket(cache.open(BG, _req("/v1/health/service/web"))).close(body))
    assert _headers(first) == {"X-Consul-Index": "7", "X-Cache": "MISS"}
    assert body.headers == [("X-Consul-Index", "7")]  # the shared answer is not changed
    again = _closed(_ticket(cache.open(BG, _req("/v1/health/service/web"))).close(body))
    assert _headers(again)["X-Cache"] == "HIT"
    assert _headers(again)["Age"] == "0"
    contact[0] = 41.6  # cut off from the store: the age grows, rounded as Go's %.0f
    cut_off = _closed(_ticket(cache.open(BG, _req("/v1/health/service/web"))).close(body))
    assert _headers(cut_off)["Age"] == "42"


def test_background_key_ignores_blocking_parameters_but_not_filters_or_tokens() -> None:
    cache = AgentCache(lambda: 0.0, clock=ManualClock())
    ok = Response(b"[]")
    _ticket(cache.open(BG, _req("/v1/catalog/services", "cached&stale"))).close(ok)
    same = _closed(_ticket(cache.open(BG, _req("/v1/catalog/services", "stale&cached&wait=1s"))).close(ok))
    assert _headers(same)["X-Cache"] == "HIT"
    other = _closed(_ticket(cache.open(BG, _req("/v1/catalog/services", "cached&filter=x"))).close(ok))
    assert _headers(other)["X-Cache"] == "MISS"
    token = _req("/v1/catalog/services", headers={"x-consul-token": "secret"})
    assert _headers(_closed(_ticket(cache.open(BG, token)).close(ok)))["X-Cache"] == "MISS"


def test_a_relayed_answers_cache_headers_give_way_to_this_agents() -> None:
    cache = AgentCache(lambda: 0.0)
    relayed = Response(b'["dc1"]', headers=[("X-Cache", "HIT"), ("Age", "9"), ("X-Consul-Index", "1")])
    answer = _closed(_ticket(cache.open(Caching(SIMPLE), _req("/v1/catalog/datacenters"))).close(relayed))
    assert answer.headers == [("X-Consul-Index", "1"), ("X-Cache", "MISS")]


def test_without_cached_or_on_other_methods_the_cache_is_not_used() -> None:
    cache = AgentCache(lambda: 0.0)
    assert cache.open(BG, _req("/v1/health/service/web", "")) is None
    assert cache.open(BG, Request("PUT", "/v1/health/service/web", "cached", {}, b"")) is None
    assert cache.open(EXECUTE, _req("/v1/query/q1")) is None  # reading the query, not executing it
    always = Caching(BACKGROUND, always=True)
    assert isinstance(cache.open(always, _req("/v1/agent/connect/ca/roots", "")), Ticket)


def test_errors_carry_no_cache_headers_and_are_not_remembered() -> None:
    cache = AgentCache(lambda: 0.0)
    failed = Response.text("No path to datacenter", 500)
    assert _closed(_ticket(cache.open(BG, _req("/v1/catalog/services"))).close(failed)).headers == []
    ok = _closed(_ticket(cache.open(BG, _req("/v1/catalog/services"))).close(Response(b"{}")))
    assert _headers(ok)["X-Cache"] == "MISS"


async def test_a_blocking_query_that_waited_is_a_miss() -> None:
    cache = AgentCache(lambda: 0.0)
    _ticket(cache.open(BG, _req("/v1/health/service/web"))).close(Response(b"[]"))
    parked: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    answer = _ticket(cache.open(BG, _req("/v1/health/service/web", "cached&index=5"))).close(parked)
    parked.set_result(Response(b"[1]"))
    assert not isinstance(answer, Response)
    assert _headers(await answer)["X-Cache"] == "MISS"
    # asked with an index already passed, answered at once: a hit
    passed = _ticket(cache.open(BG, _req("/v1/health/service/web", "cached&index=1"))).close(Response(b"[1]"))
    assert _headers(_closed(passed))["X-Cache"] == "HIT"


def test_a_non_ascii_digit_index_is_left_to_the_handler_to_refuse() -> None:
    """ "\u00b2" is a digit to Python's isdigit() but not to int(): no crash before the handler."""
    ticket = _ticket(AgentCache(lambda: 0.0).open(BG, _req("/v1/health/service/web", "cached&index=%C2%B2")))
    assert ticket.blocking


def test_entries_unused_for_three_days_expire() -> None:
    clock = ManualClock()
    cache = AgentCache(lambda: 0.0, clock=clock)
    _ticket(cache.open(BG, _req("/v1/catalog/services"))).close(Response(b"{}"))
    clock.now += TTL - 1
    hit = _ticket(cache.open(BG, _req("/v1/catalog/services"))).close(Response(b"{}"))
    assert _headers(_closed(hit))["X-Cache"] == "HIT"  # and the use restarts the TTL
    clock.now += TTL + 1
    expired = _ticket(cache.open(BG, _req("/v1/catalog/services"))).close(Response(b"{}"))
    assert _headers(_closed(expired))["X-Cache"] == "MISS"


def test_the_cache_is_bounded() -> None:
    cache = AgentCache(lambda: 0.0, max_keys=3, max_answers=2, max_answer_bytes=10)
    for i in range(10):
        _ticket(cache.open(BG, _req(f"/v1/health/service/s{i}"))).close(Response(b"[]"))
        _ticket(cache.open(EXECUTE, _req(f"/v1/query/q{i}/execute"))).close(Response(b"{}"))
    assert len(cache) == 3 + 2
    _ticket(cache.open(EXECUTE, _req("/v1/query/big/execute"))).close(Response(b"x" * 11))
    assert isinstance(cache.open(EXECUTE, _req("/v1/query/big/execute")), Ticket)  # too big to keep
    newest = _ticket(cache.open(BG, _req("/v1/health/service/s9"))).close(Response(b"[]"))
    assert _headers(_closed(newest))["X-Cache"] == "HIT"
    oldest = _ticket(cache.open(BG, _req("/v1/health/service/s0"))).close(Response(b"[]"))
    assert _headers(_closed(oldest))["X-Cache"] == "MISS"


def test_simple_answers_are_kept_until_max_age() -> None:
    clock = ManualClock()
    cache = AgentCache(lambda: 0.0, clock=clock)
    path = "/v1/query/q/execute"
    first = _closed(_ticket(cache.open(EXECUTE, _req(path))).close(Response(b"one")))
    assert _headers(first) == {"X-Cache": "MISS"}
    clock.now += 65
    kept = cache.open(EXECUTE, _req(path))  # no Cache-Control: days old is fine
    assert isinstance(kept, Response)
    assert kept.body == b"one"
    assert _headers(kept) == {"X-Cache": "HIT", "Age": "65"}
    fresh_enough = cache.open(EXECUTE, _req(path, headers={"cache-control": "max-age=65"}))
    assert isinstance(fresh_enough, Response)
    too_old = _ticket(cache.open(EXECUTE, _req(path, headers={"cache-control": "max-age=30"})))
    refetched = _closed(too_old.close(Response(b"two")))
    assert refetched.body == b"two"
    assert _headers(refetched)["X-Cache"] == "MISS"
    assert _closed(cache.open(EXECUTE, _req(path))).body == b"two"


@pytest.mark.parametrize("control", ["max-age=0", "must-revalidate", "Must-Revalidate, foo=bar"])
def test_revalidation_always_refetches(control: str) -> None:
    cache = AgentCache(lambda: 0.0)
    path = "/v1/query/q/execute"
    _ticket(cache.open(EXECUTE, _req(path))).close(Response(b"one"))
    assert isinstance(cache.open(EXECUTE, _req(path, headers={"cache-control": control})), Ticket)


def test_stale_if_error_answers_the_old_answer_when_refetching_fails() -> None:
    clock = ManualClock()
    cache = AgentCache(lambda: 0.0, clock=clock)
    path = "/v1/query/q/execute"
    _ticket(cache.open(EXECUTE, _req(path))).close(Response(b"one"))
    clock.now += 65
    failed = Response.text("No path to datacenter", 500)
    strict = _ticket(cache.open(EXECUTE, _req(path, headers={"cache-control": "max-age=30"})))
    assert _closed(strict.close(failed)) is failed
    lenient = {"cache-control": "max-age=30, stale-if-error=259200"}
    stale = _closed(_ticket(cache.open(EXECUTE, _req(path, headers=lenient))).close(failed))
    assert stale.body == b"one"
    assert _headers(stale) == {"X-Cache": "HIT", "Age": "65"}
    too_stale = {"cache-control": "must-revalidate, stale-if-error=60"}
    assert _closed(_ticket(cache.open(EXECUTE, _req(path, headers=too_stale))).close(failed)) is failed
    not_found = Response.text("Query not found", 404)
    assert _closed(_ticket(cache.open(EXECUTE, _req(path, headers=lenient))).close(not_found)) is not_found


async def test_stale_if_error_covers_a_fetch_that_raises() -> None:
    cache = AgentCache(lambda: 0.0)
    path = "/v1/query/q/execute"
    _ticket(cache.open(EXECUTE, _req(path))).close(Response(b"one"))

    async def unreachable() -> Response:
        raise HTTPError(500, "No known Consul servers")

    lenient = {"cache-control": "max-age=0, stale-if-error=60"}
    answer = _ticket(cache.open(EXECUTE, _req(path, headers=lenient))).close(unreachable())
    assert not isinstance(answer, Response)
    stale = await answer
    assert (stale.body, _headers(stale)["X-Cache"]) == (b"one", "HIT")
    strict = _ticket(cache.open(EXECUTE, _req(path, headers={"cache-control": "max-age=0"})))
    pending = strict.close(unreachable())
    assert not isinstance(pending, Response)
    failed = await pending
    assert (failed.status, failed.body) == (500, b"No known Consul servers")


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("", (0, 0, False)),
        ("no-cache", (0, 0, False)),
        ("MAX-AGE=30 , stale-if-error=+60", (30, 60, False)),
        ("max-age=0", (0, 0, True)),
        ("max-age=-5", (-5, 0, False)),
        ("max-age = 5", (0, 0, False)),  # not the directive's token form: ignored as Consul does
    ],
)
def test_cache_control_parses_as_consul(header: str, parsed: tuple[int, int, bool]) -> None:
    assert tuple(parse_cache_control(_req("/", headers={"cache-control": header}))) == parsed


@pytest.mark.parametrize(
    "header", ["max-age=abc", "max-age=", "stale-if-error=1.5", "max-age=99999999999999999999"]
)
def test_malformed_cache_control_is_consuls_400(header: str) -> None:
    with pytest.raises(HTTPError) as err:
        parse_cache_control(_req("/", headers={"cache-control": header}))
    assert (err.value.status, err.value.message) == (400, "Invalid Cache-Control header.")


def test_cached_reads_on_a_real_agent(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "cachedweb", "Port": 80})
    status, headers, body = dev_agent.request("GET", "/v1/health/service/cachedweb?cached")
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert "Age" not in headers
    status, headers, again = dev_agent.request("GET", "/v1/health/service/cachedweb?cached")
    assert (status, headers["X-Cache"], headers["Age"]) == (200, "HIT", "0")
    assert again == body
    _, plain, _ = dev_agent.request("GET", "/v1/health/service/cachedweb")
    assert "X-Cache" not in plain
    assert "Age" not in plain
    _, other, _ = dev_agent.request("GET", "/v1/health/checks/cachedweb?cached")  # no agent caching there
    assert "X-Cache" not in other
    status, _, text = dev_agent.request("GET", "/v1/kv/x?cached", headers={"Cache-Control": "max-age=soon"})
    assert (status, text) == (400, b"Invalid Cache-Control header.")
    status, _, text = dev_agent.request("GET", "/v1/catalog/services?cached&consistent")
    assert (status, text) == (400, b"Cannot specify ?cached with ?consistent, conflicting semantics.")


def test_a_cached_blocking_query_blocks_and_its_answer_after_waiting_is_a_miss(
    dev_agent: AgentProcess,
) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "cachedblock", "Port": 82})
    path = "/v1/health/service/cachedblock?cached"
    _, seen, _ = dev_agent.request("GET", path)
    index = int(seen["X-Consul-Index"])
    out: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def block() -> None:
        out["answer"] = dev_agent.request("GET", f"{path}&index={index}&wait=20s")

    def parked() -> float:
        gauges = dev_agent.get("/v1/agent/metrics")["Gauges"]
        return float(next(g["Value"] for g in gauges if g["Name"] == "consul.blocking_queries.waiting"))

    before = parked()
    waiter = threading.Thread(target=block)
    waiter.start()
    wait_for(lambda: parked() > before, limit=10, step=0.05)
    dev_agent.put("/v1/agent/service/register", {"Name": "cachedblock", "ID": "second", "Port": 83})
    waiter.join(25)
    status, headers, body = out["answer"]
    assert (status, headers["X-Cache"]) == (200, "MISS")
    assert int(headers["X-Consul-Index"]) > index
    assert len(json.loads(body)) == 2
    _, passed, _ = dev_agent.request("GET", f"{path}&index={index}")  # already passed: at once
    assert passed["X-Cache"] == "HIT"


def test_prepared_query_execution_is_simply_cached(dev_agent: AgentProcess) -> None:
    dev_agent.put("/v1/agent/service/register", {"Name": "cachedq", "Port": 81})
    status, _, created = dev_agent.request(
        "POST", "/v1/query", json.dumps({"Name": "cachedq", "Service": {"Service": "cachedq"}}).encode()
    )
    assert status == 200, created
    path = "/v1/query/cachedq/execute?cached"
    _, first, body = dev_agent.request("GET", path)
    assert first["X-Cache"] == "MISS"
    # Consul's query meta, without which the Go API reads no X-Cache at all
    assert (first["X-Consul-Knownleader"], first["X-Consul-Lastcontact"]) == ("true", "0")
    _, hit, again = dev_agent.request("GET", path, headers={"Cache-Control": "max-age=3600"})
    assert (hit["X-Cache"], again) == ("HIT", body)
    assert int(hit["Age"]) >= 0
    _, revalidated, _ = dev_agent.request("GET", path, headers={"Cache-Control": "must-revalidate"})
    assert revalidated["X-Cache"] == "MISS"
    _, explained, _ = dev_agent.request("GET", "/v1/query/cachedq/explain?cached")
    assert "X-Cache" not in explained


def test_use_cache_off_ignores_cached(tmp_path: Path) -> None:
    """``http_config.use_cache = false``: Consul reads no ``?cached`` at all."""
    config = tmp_path / "no-cache.hcl"
    config.write_text("http_config {\n  use_cache = false\n}\n")
    args = ["-dev", "-node", "no-cache", "-config-file", str(config)]
    with AgentProcess(args, log_path=tmp_path / "agent.log") as agent:
        for _ in range(2):
            status, headers, _ = agent.request("GET", "/v1/catalog/services?cached")
            assert status == 200
            assert "X-Cache" not in headers
        assert agent.request("GET", "/v1/catalog/services?cached&consistent")[0] == 200
