"""The sidecar's authorization cache against a real agent: one authorize call per source
until an intention changes, and a changed intention in force for the next connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from waypost.client import ApiClient
from waypost.proxy.authorize import Authorizer
from waypost.testing import AgentProcess

TIMEOUT = 10.0


async def _uri(api: ApiClient, service: str) -> str:
    domain = (await api.get("/v1/agent/connect/ca/roots")).json()["TrustDomain"]
    return f"spiffe://{domain}/ns/default/dc/dc1/svc/{service}"


async def _intention(api: ApiClient, source: str, destination: str, action: str) -> None:
    query = {"source": source, "destination": destination}
    await api.put("/v1/connect/intentions/exact", {"Action": action}, query=query)


async def _until(auth: Authorizer, uri: str, want: bool) -> None:
    """Ask (as each new connection does) until the decision is ``want``; bounded."""
    async with asyncio.timeout(TIMEOUT):
        for _ in range(1000):
            if (await auth.allowed(uri, "01"))[0] is want:
                return
            await asyncio.sleep(0.01)
    pytest.fail(f"the decision for {uri} is still not {want}")


@contextlib.asynccontextmanager
async def _following(api: ApiClient, destination: str) -> AsyncIterator[Authorizer]:
    """An Authorizer for ``destination``, started and following its intentions (bounded wait);
    closed on the way out."""
    auth = Authorizer(api, destination, wait="5s")
    auth.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            await auth.followed()
        yield auth
    finally:
        await auth.close()


async def test_a_decision_is_asked_once_and_kept_until_an_intention_changes(api: ApiClient) -> None:
    await _intention(api, "web", "db", "allow")
    uri = await _uri(api, "web")
    async with _following(api, "db") as auth:
        for _ in range(20):
            assert (await auth.allowed(uri, "01"))[0] is True
        assert auth.asked == 1  # the other nineteen made no HTTP call

        await _intention(api, "web", "db", "deny")
        await _until(auth, uri, want=False)
        asked = auth.asked
        for _ in range(20):
            assert (await auth.allowed(uri, "01"))[0] is False
        assert auth.asked == asked

        # Another source is its own decision; an unrelated intention drops them all.
        other = await _uri(api, "billing")
        assert (await auth.allowed(other, "02"))[0] is True  # no intention: ACLs off allow
        await _intention(api, "web", "db", "allow")
        await _until(auth, uri, want=True)


async def test_retarget_follows_the_new_destinations_intentions(api: ApiClient) -> None:
    await _intention(api, "web", "ledger", "deny")
    uri = await _uri(api, "web")
    async with _following(api, "cache") as auth:
        assert (await auth.allowed(uri, "01"))[0] is True
        await auth.retarget("ledger")
        assert (await auth.allowed(uri, "01"))[0] is False
        async with asyncio.timeout(TIMEOUT):
            await auth.followed()
        await _intention(api, "web", "ledger", "allow")
        await _until(auth, uri, want=True)


async def test_without_an_agent_every_connection_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    with AgentProcess(["-dev"], log_path=tmp_path / "a.log") as agent:
        address = agent.address
    async with ApiClient(address) as api:
        auth = Authorizer(api, "db", wait="5s")
        auth.start()
        try:
            allowed, reason = await auth.allowed("spiffe://x.consul/ns/default/dc/dc1/svc/web", "01")
            assert not allowed
            assert reason.startswith("authorize failed")
            assert not auth.following
        finally:
            await auth.close()
