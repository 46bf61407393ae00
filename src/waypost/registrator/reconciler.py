"""The agent side: what this registrator registered, and the calls that bring it in line.

The registrator's own services carry its host name in Meta (``registrator-host``) and
the container ID they came from, so after a restart it reads them back from
``/v1/agent/services`` and reconciles instead of registering a second copy. Each
container is reconciled on its own: desired services (from ``services``) against the
ones recorded for it; a registration the agent refuses (a 4xx: bad Meta, a bad check)
is logged with the container's name and skipped, while an unreachable agent raises
``ApiError`` with status 0 for the caller to retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from waypost.client import ApiClient, ApiError
from waypost.registrator.services import (
    HEALTH_SUFFIX,
    MARKER_CONTAINER,
    MARKER_HOST,
    SERVICE_ID_PATTERN,
    TTL_SUFFIX,
    Desired,
)

__all__ = ["Reconciler", "Record"]

log = logging.getLogger("waypost.registrator")


@dataclass
class Record:
    """A service as last registered; ``body`` None when only known from the agent's list."""

    body: dict[str, Any] | None = None
    health: tuple[str, str] | None = None
    serial: int = 0
    """The reconciler's count of registrations when this one was made."""


@dataclass
class Reconciler:
    api: ApiClient
    hostname: str
    registered: dict[str, dict[str, Record]] = field(default_factory=dict)
    """container ID -> service ID -> what was registered for it."""
    serial: int = 0

    async def agent_services(self) -> tuple[dict[str, Any], int]:
        """The agent's services, and the registration count before asking for them."""
        serial = self.serial
        found = (await self.api.get("/v1/agent/services")).json()
        return (found if isinstance(found, dict) else {}), serial

    def adopt(self, services: dict[str, Any], serial: int) -> set[str]:
        """Record this host's services found on the agent; the containers whose services
        the agent no longer has (it restarted with an empty state) need registering again.
        Registrations made after ``serial`` may have raced the listing and are left alone."""
        ours: dict[str, set[str]] = {}
        for sid, svc in services.items():
            meta = svc.get("Meta") or {} if isinstance(svc, dict) else {}
            if meta.get(MARKER_HOST) == self.hostname and meta.get(MARKER_CONTAINER):
                ours.setdefault(str(meta[MARKER_CONTAINER]), set()).add(str(sid))
        stale = set()
        for cid, records in self.registered.items():
            for sid, record in records.items():
                if sid not in ours.get(cid, ()) and record.serial <= serial:
                    records[sid] = Record()
                    stale.add(cid)
        for cid, sids in ours.items():
            records = self.registered.setdefault(cid, {})
            for sid in sids - records.keys():
                records[sid] = Record()
                stale.add(cid)
        return stale

    async def cleanup(self, services: dict[str, Any]) -> None:
        """``-cleanup``: this host's Registrator-style entries that no container owns."""
        owned = {sid for records in self.registered.values() for sid in records}
        for sid, svc in services.items():
            match = SERVICE_ID_PATTERN.match(str(sid))
            meta = svc.get("Meta") or {} if isinstance(svc, dict) else {}
            if sid in owned or meta.get(MARKER_HOST) or not match or match.group(1) != self.hostname:
                continue
            await self._deregister(str(sid), "dangling")

    async def apply(self, cid: str, name: str, desired: list[Desired] | None) -> None:
        """Bring the container's services to ``desired``; None keeps what is registered."""
        records = self.registered.setdefault(cid, {})
        if desired is not None:
            wanted = {d.id: d for d in desired}
            for sid in [s for s in records if s not in wanted]:
                await self._deregister(sid, f"container {name}")
                del records[sid]
            for d in desired:
                await self._ensure(cid, name, d, records)
        if not records:
            del self.registered[cid]

    async def _ensure(self, cid: str, name: str, d: Desired, records: dict[str, Record]) -> None:
        record = records.get(d.id)
        if record is None or record.body != d.body:
            resp = await self.api.request("PUT", "/v1/agent/service/register", body=d.body)
            if resp.status >= 500:
                raise ApiError(0, f"registering {d.id}: {resp.status} {resp.body.decode(errors='replace')}")
            if resp.status != 200:
                log.error("container %s: agent refused service %s: %s", name, d.id,
                          resp.body.decode(errors="replace").strip())  # fmt: skip
                records.pop(d.id, None)
                return
            log.info("added: %s %s", cid[:12], d.id)
            self.serial += 1
            record = records[d.id] = Record(d.body, serial=self.serial)
        if d.health is not None and record.health != d.health:
            await self.update_health(d.id, d.health)
            record.health = d.health

    async def update_health(self, sid: str, health: tuple[str, str]) -> None:
        status, output = health
        await self.api.put(
            f"/v1/agent/check/update/{quote('service:' + sid + HEALTH_SUFFIX, safe='')}",
            {"Status": status, "Output": output},
        )

    async def refresh(self) -> None:
        """``-ttl-refresh``: pass every heartbeat check and re-assert every mirrored health."""
        for records in list(self.registered.values()):
            for sid, record in list(records.items()):
                if record.body is None:
                    continue
                check_ids = {c.get("CheckID") for c in record.body.get("Checks", ())}
                if f"service:{sid}{TTL_SUFFIX}" in check_ids:
                    await self.api.put(
                        f"/v1/agent/check/pass/{quote('service:' + sid + TTL_SUFFIX, safe='')}"
                    )
                if record.health is not None:
                    await self.update_health(sid, record.health)

    async def _deregister(self, sid: str, why: str) -> None:
        resp = await self.api.request("PUT", f"/v1/agent/service/deregister/{quote(sid, safe='')}")
        if resp.status >= 500:
            raise ApiError(0, f"deregistering {sid}: {resp.status} {resp.body.decode(errors='replace')}")
        if resp.status not in (200, 404):
            log.error(
                "%s: agent refused to deregister %s: %s", why, sid, resp.body.decode(errors="replace").strip()
            )
            return
        log.info("removed: %s (%s)", sid, why)
