"""The agent's leaf certificates: one per service asked for, kept fresh for as long as the agent runs.

As Consul's agent cache does, the key is made here and only a CSR goes to the signer (a
server), and a leaf is renewed before it expires, at a random point between 60% and 90%
of its lifetime (so the agents of a cluster do not all ask at once), or at once when the
active root changes. Each new leaf gets a higher index, which is what a blocking
``/v1/agent/connect/ca/leaf/:service`` read waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from waypost.connect import ca
from waypost.connect.ca_store import active_root
from waypost.state import schema
from waypost.state.model import ConnectCA
from waypost.state.state import State
from waypost.store.base import Event

__all__ = ["Leaf", "LeafCerts", "Signer"]

log = logging.getLogger("waypost.connect")

Signer = Callable[[str, str], Awaitable[dict[str, Any]]]
"""``(csr_pem, service) -> IssuedCert``: a server's signature, however it is reached."""

_RETRY = 1.0


@dataclass(slots=True)
class Leaf:
    cert: dict[str, Any]
    """Consul's ``IssuedCert``, ``PrivateKeyPEM`` included."""
    index: int
    root_id: str
    renew_at: float


@dataclass(slots=True)
class _Entry:
    leaf: Leaf | None = None
    error: Exception | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class LeafCerts:
    def __init__(
        self, state: State, datacenter: str, sign: Signer, *, rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.state = state
        self.datacenter = datacenter
        self.sign = sign
        self.rng = rng or random.Random()
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        state.listeners.append(self._on_change)

    def _on_change(self, batch: list[Event], revision: int) -> None:
        if any(ev.kv.key == schema.CONNECT_CA_KEY for ev in batch):
            for entry in self._entries.values():
                entry.wake.set()

    def _record(self) -> ConnectCA:
        record = self.state.indexes.connect_ca.get("state")
        if record is None:
            raise ca.CAError("the CA is not initialised yet")
        return record

    async def get(self, service: str, min_index: int = 0, wait: float = 0.0) -> Leaf:
        """The service's current leaf; with ``min_index``, the first one above it, or the
        current one after ``wait`` seconds. Raises the signer's error while none was issued."""
        entry = self._entries.get(service)
        if entry is None:
            entry = self._entries[service] = _Entry()
            entry.task = asyncio.create_task(self._keep(service, entry), name=f"connect leaf {service}")
        while entry.leaf is None and entry.error is None:
            await entry.changed.wait()
        if entry.leaf is None:
            assert entry.error is not None
            raise entry.error
        if min_index and entry.leaf.index <= min_index and wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    while entry.leaf.index <= min_index:
                        await entry.changed.wait()
        return entry.leaf

    async def _issue(self, service: str, previous: Leaf | None) -> Leaf:
        record = self._record()
        key = ca.generate_key()
        uri = ca.spiffe_service(ca.trust_domain(record.ClusterID), self.datacenter, service)
        cert = await self.sign(ca.make_csr(key, uri, service), service)
        cert = {**cert, "PrivateKeyPEM": ca.key_pem(key)}
        # From now rather than ValidAfter, which is backdated a minute: a short test TTL
        # would otherwise be renewed over and over.
        issued = self.clock()
        before = dt.datetime.fromisoformat(cert["ValidBefore"]).timestamp()
        renew_at = issued + (before - issued) * self.rng.uniform(0.6, 0.9)
        index = max(self.state.indexes.revision, previous.index + 1 if previous else 1)
        return Leaf(cert, index, active_root(record).ID, renew_at)

    def _current(self, leaf: Leaf) -> bool:
        record = self.state.indexes.connect_ca.get("state")
        root = next((r for r in record.Roots if r.Active), None) if record else None
        return root is not None and leaf.root_id == root.ID and self.clock() < leaf.renew_at

    async def _keep(self, service: str, entry: _Entry) -> None:
        while True:
            entry.wake.clear()
            leaf = entry.leaf
            if leaf is None or not self._current(leaf):
                try:
                    entry.leaf, entry.error = await self._issue(service, leaf), None
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("leaf certificate for %s: %s; retrying", service, exc)
                    entry.error = exc if entry.leaf is None else None
                    entry.changed.set()
                    entry.changed = asyncio.Event()
                    await asyncio.sleep(_RETRY)
                    continue
                entry.changed.set()
                entry.changed = asyncio.Event()
            assert entry.leaf is not None
            delay = max(0.0, entry.leaf.renew_at - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await entry.wake.wait()

    async def close(self) -> None:
        if self._on_change in self.state.listeners:
            self.state.listeners.remove(self._on_change)
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._entries.clear()
