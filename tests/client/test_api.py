"""The shared client against a real agent: requests, Consul's errors, and watches."""

from __future__ import annotations

import asyncio
import logging

import pytest

from waypost.client import AgentAddress, ApiClient, ApiError, Backoff
from waypost.testing import AgentProcess, free_port


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("127.0.0.1:8500", "http://127.0.0.1:8500"),
        ("localhost", "http://localhost:8500"),
        ("https://agent:8501", "https://agent:8501"),
        ("consul://10.0.0.1:8500", "http://10.0.0.1:8500"),
        ("consul-tls://agent", "https://agent:443"),
        ("[::1]:8500", "http://[::1]:8500"),
    ],
)
def test_addresses_as_the_consul_cli_and_registrator_spell_them(text: str, url: str) -> None:
    assert AgentAddress.parse(text).url == url


@pytest.mark.parametrize("text", ["ftp://x", "http://", "host:port", ""])
def test_bad_addresses_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid agent address"):
        AgentAddress.parse(text)


def test_address_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:9")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "secret")
    monkeypatch.setenv("CONSUL_HTTP_SSL", "true")
    api = ApiClient()
    assert (api.address.url, api.token) == ("https://127.0.0.1:9", "secret")


def test_backoff_grows_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=1, maximum=8)
    delays = [backoff.next() for _ in range(2000)]
    assert 0.5 <= delays[0] <= 1
    assert max(delays) <= 8
    backoff.reset()
    assert backoff.next() <= 1


async def test_requests_and_errors(dev_agent: AgentProcess) -> None:
    async with ApiClient(dev_agent.address) as api:
        assert (await api.put("/v1/kv/client/a", b"one")).json() is True
        resp = await api.get("/v1/kv/client/a", {"raw": True})
        assert (resp.body, resp.index > 0) == (b"one", True)
        with pytest.raises(ApiError, match=r"Unexpected response code: 404") as err:
            await api.get("/v1/agent/service/nope")
        assert err.value.status == 404
        assert (await api.request("GET", "/v1/kv/client/missing")).status == 404


async def test_an_unreachable_agent_is_status_0() -> None:
    async with ApiClient(f"127.0.0.1:{free_port()}", timeout=2) as api:
        with pytest.raises(ApiError, match="unreachable") as err:
            await api.get("/v1/status/leader")
        assert err.value.status == 0


async def test_watch_yields_each_change_once(dev_agent: AgentProcess) -> None:
    async with ApiClient(dev_agent.address) as api:
        await api.put("/v1/kv/watched", b"0")
        seen: list[bytes] = []
        async for resp in api.watch("/v1/kv/watched", {"raw": True}, wait="2s"):
            seen.append(resp.body)
            if len(seen) == 3:
                break
            await api.put("/v1/kv/other", b"x")  # unrelated: must not produce an answer
            await api.put("/v1/kv/watched", str(len(seen)).encode())
    assert seen == [b"0", b"1", b"2"]


async def test_watch_rides_out_an_agent_that_is_not_up_yet(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.05)

    caplog.set_level(logging.INFO, "waypost.client")
    agent = AgentProcess(["-dev", "-node", "late"], http_port=port)
    async with ApiClient(f"127.0.0.1:{port}", timeout=2) as api:
        watch = api.watch("/v1/catalog/nodes", backoff=Backoff(initial=0.01, maximum=0.02), sleep=sleep)
        first = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0.3)
        assert not first.done()
        with agent:
            resp = await asyncio.wait_for(first, 20)
            assert [n["Node"] for n in resp.json()] == ["late"]
        await watch.aclose()
    assert delays
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
