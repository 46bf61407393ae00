"""ACL replication: a secondary datacenter (``primary_datacenter`` names another) copies
the primary's policies, roles and global tokens into its own store, as Consul's ACL
replication of type "tokens" does, so a token made in the primary works everywhere.

The leader of the secondary holds a blocking query on the primary's
``/v1/internal/acl/replicate`` (through the WAN pool, with the ``replication`` token) and
writes the difference: records the primary changed, and the deletion of policies, roles
and global tokens it no longer has. Tokens created with ``Local`` stay the secondary's
own. ACL writes made in a secondary are forwarded to the primary (``primary_handler``),
except those of local tokens, and come back through replication.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.api.common import decode_json
from waypost.api.http import Request, Response
from waypost.state import schema
from waypost.state.indexes import Indexes
from waypost.state.model import ACLPolicy, ACLRole, ACLToken
from waypost.state.state import TxnPlan
from waypost.store.base import Delete, Op, Put, StoreError

if TYPE_CHECKING:
    from waypost.agent.agent import Agent
    from waypost.api.app import ApiApp
    from waypost.wan.federation import Federation

__all__ = [
    "PRIMARY_WRITES",
    "REPLICATE_PATH",
    "AclReplicator",
    "Replicated",
    "changes",
    "primary_handler",
    "replicated",
]

log = logging.getLogger("waypost.wan.acl")

REPLICATE_PATH = "/v1/internal/acl/replicate"
_WAIT = "60s"
_BATCH = 64
"""Operations per store transaction (etcd allows 128 by default)."""
_BACKOFF = 1.0

PRIMARY_WRITES = {
    "/v1/acl/bootstrap": False, "/v1/acl/token": True, "/v1/acl/token/:id": True, "/v1/acl/policy": False,
    "/v1/acl/policy/:id": False, "/v1/acl/role": False, "/v1/acl/role/:id": False,
}  # fmt: skip
"""ACL routes whose writes a secondary sends to the primary; True: local tokens stay here."""


class Replicated(msgspec.Struct, forbid_unknown_fields=False):
    """What the primary replicates: every policy and role, and its global tokens."""

    Policies: list[ACLPolicy] = []
    Roles: list[ACLRole] = []
    Tokens: list[ACLToken] = []


def replicated(idx: Indexes) -> Replicated:
    return Replicated(
        sorted(idx.acl_policies.values(), key=lambda p: p.ID),
        sorted(idx.acl_roles.values(), key=lambda r: r.ID),
        sorted((t for t in idx.acl_tokens.values() if not t.Local), key=lambda t: t.AccessorID),
    )


def _same(a: Any, b: Any) -> bool:
    """Equal but for the indexes, which are each store's own."""
    return bool(
        msgspec.structs.replace(a, CreateIndex=0, ModifyIndex=0)
        == msgspec.structs.replace(b, CreateIndex=0, ModifyIndex=0)
    )


def _sync(table: schema.Table[Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[Op]:
    ops: list[Op] = [Delete(table.key(key)) for key in ours if key not in theirs]
    for key, record in theirs.items():
        mine = ours.get(key)
        if mine is None or not _same(mine, record):
            clean = msgspec.structs.replace(record, CreateIndex=0, ModifyIndex=0)
            ops.append(Put(table.key(key), schema.encode(clean)))
    return ops


def changes(idx: Indexes, source: Replicated) -> list[Op]:
    """The store operations that make this datacenter's ACL records the primary's."""
    global_tokens = {k: t for k, t in idx.acl_tokens.items() if not t.Local}
    return [
        *_sync(schema.ACL_POLICIES, idx.acl_policies, {p.ID: p for p in source.Policies}),
        *_sync(schema.ACL_ROLES, idx.acl_roles, {r.ID: r for r in source.Roles}),
        *_sync(schema.ACL_TOKENS, global_tokens, {t.AccessorID: t for t in source.Tokens if not t.Local}),
    ]


_DECODE = msgspec.json.Decoder(Replicated)


class AclReplicator:
    """Runs on every server of a secondary datacenter; only the leader replicates."""

    def __init__(self, agent: Agent, federation: Federation) -> None:
        self.agent = agent
        self.federation = federation
        self.primary = agent.config.primary_datacenter
        self.index = 0
        self.last_success = 0.0
        self.last_error = 0.0
        self.last_error_message = ""

    def status(self) -> dict[str, Any]:
        """Consul's ACLReplicationStatus for this secondary."""
        cluster = self.agent.cluster
        leading = cluster is not None and cluster.is_leader
        return {
            "Enabled": True,
            "Running": leading,
            "SourceDatacenter": self.primary,
            "ReplicationType": "tokens",
            "ReplicatedIndex": self.index,
            "ReplicatedRoleIndex": self.index,
            "ReplicatedTokenIndex": self.index,
            "LastSuccess": _rfc3339(self.last_success),
            "LastError": _rfc3339(self.last_error),
            "LastErrorMessage": self.last_error_message,
        }

    async def run(self) -> None:
        while True:
            cluster = self.agent.cluster
            if cluster is None or not cluster.is_leader:
                self.index = 0  # a new leader starts from a full copy
                await asyncio.sleep(_BACKOFF)
                continue
            try:
                await self.replicate_once()
            except (OSError, StoreError, ValueError) as exc:
                self.last_error, self.last_error_message = time.time(), str(exc)
                log.warning("ACL replication from %s failed: %s", self.primary, exc)
                await asyncio.sleep(_BACKOFF)

    async def replicate_once(self) -> None:
        """One blocking read of the primary's ACL records, and the writes it calls for."""
        query = f"index={self.index}&wait={_WAIT}" if self.index else ""
        headers = {"x-consul-token": self.federation.token()} if self.federation.token() else {}
        req = Request("GET", REPLICATE_PATH, query, headers, b"")
        resp = await self.federation.relay_to(self.primary, req)
        if resp.status != 200:
            raise ValueError(f"{resp.status} {resp.body[:200].decode(errors='replace')}")
        source = _DECODE.decode(resp.body)
        index = int(dict(resp.headers).get("X-Consul-Index", "0") or 0)
        state = self.agent.require_state()
        ops = changes(state.indexes, source)
        for start in range(0, len(ops), _BATCH):
            await state.write(functools.partial(_plan, ops[start : start + _BATCH]))
        if ops:
            log.info("ACL replication: %d records updated from %s", len(ops), self.primary)
        self.index = index if index > self.index else 0
        self.last_success = time.time()


def _plan(ops: list[Op]) -> TxnPlan:
    return [], ops


def _rfc3339(seconds: float) -> str:
    if not seconds:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


Handler = Callable[["ApiApp", Request], Any]


def primary_handler(handler: Handler, *, local_tokens: bool) -> Handler:
    """``handler``'s writes go to the primary datacenter; with ``local_tokens``, writes of
    tokens with ``Local`` (and of tokens this datacenter holds as local) stay here."""

    def forwarding(app: ApiApp, req: Request) -> Response | Awaitable[Response] | Any:
        if req.method == "GET" or (local_tokens and _local_token(app, req)):
            return handler(app, req)
        federation = app.agent.wan
        return asyncio.ensure_future(federation.relay_to(app.agent.config.primary_datacenter, req))

    return forwarding


def _local_token(app: ApiApp, req: Request) -> bool:
    held = app.agent.require_state().indexes.acl_tokens.get(req.param) if req.param else None
    if held is not None:
        return held.Local
    body = decode_json(req, allow_empty=True)
    return isinstance(body, dict) and any(k.lower() == "local" and v is True for k, v in body.items())
