"""/v1/txn: several KV operations applied atomically, or none of them."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from waypost.agent.definitions import canonical_keys
from waypost.api.common import HTTPError, decode_json, json_response
from waypost.api.http import Request, Response
from waypost.api.kv import kv_pair
from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.model import KVEntry
from waypost.store.base import Compare, Delete, Op, Put

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

MAX_OPS = 128
_KV_FIELDS = ("Verb", "Key", "Value", "Flags", "Index", "Session", "Namespace", "Partition")


class _Failed(Exception):
    pass


class _Txn:
    """Runs the verbs against a private overlay of the KV table, collecting store ops."""

    def __init__(self, app: ApiApp) -> None:
        self.idx = app.state.indexes
        self.overlay: dict[str, KVEntry | None] = {}
        self.compares: dict[str, Compare] = {}
        self.ops: list[Op] = []
        self.results: list[tuple[str, KVEntry | None, bool]] = []

    def current(self, key: str) -> KVEntry | None:
        if key in self.overlay:
            return self.overlay[key]
        entry = self.idx.kv.get(key)
        self.compares.setdefault(key, guard(schema.KVS.key(key), entry))
        return entry

    def write(self, entry: KVEntry) -> None:
        self.current(entry.Key)
        self.overlay[entry.Key] = entry
        self.ops.append(Put(schema.KVS.key(entry.Key), schema.encode(entry)))
        self.results.append((entry.Key, entry, False))

    def delete(self, key: str) -> None:
        self.current(key)
        self.overlay[key] = None
        self.ops.append(Delete(schema.KVS.key(key)))

    def run(self, op: dict[str, Any]) -> None:
        verb = op.get("Verb", "")
        key = str(op.get("Key") or "")
        flags = int(op.get("Flags") or 0)
        index = int(op.get("Index") or 0)
        session = str(op.get("Session") or "")
        cur = self.current(key) if key else None
        value = _value(op.get("Value"))
        if verb == "set":
            self.write(_entry(key, value, flags, cur))
        elif verb == "cas":
            if (index == 0 and cur is not None) or (index != 0 and (cur is None or cur.ModifyIndex != index)):
                raise _Failed(f'failed to set key "{key}", index is stale')
            self.write(_entry(key, value, flags, cur))
        elif verb == "lock":
            if session not in self.idx.sessions:
                raise _Failed(f'invalid session "{session}"')
            if cur is not None and cur.Session and cur.Session != session:
                raise _Failed(f'failed to lock key "{key}", lock is already held')
            entry = _entry(key, value, flags, cur)
            if cur is None or cur.Session != session:
                entry.LockIndex += 1
            entry.Session = session
            self.write(entry)
        elif verb == "unlock":
            if cur is None or cur.Session != session:
                raise _Failed(
                    f'failed to unlock key "{key}", lock isn\'t held, or is held by another session'
                )
            entry = _entry(key, value, flags, cur)
            entry.Session = ""
            self.write(entry)
        elif verb in ("get", "get-or-empty"):
            if cur is None and verb == "get":
                raise _Failed(f'key "{key}" doesn\'t exist')
            if cur is not None:
                self.results.append((key, cur, True))
        elif verb == "get-tree":
            for e in self.idx.kv_prefix(key):
                self.results.append((e.Key, self.overlay.get(e.Key, e), True))
        elif verb == "check-index":
            if cur is None or cur.ModifyIndex != index:
                raise _Failed(f"current modify index {cur.ModifyIndex if cur else 0} != {index}")
        elif verb == "check-session":
            if cur is None or cur.Session != session:
                raise _Failed(f'current session "{cur.Session if cur else ""}" != "{session}"')
        elif verb == "check-not-exists":
            if cur is not None:
                raise _Failed(f'key "{key}" exists')
        elif verb == "delete":
            self.delete(key)
        elif verb == "delete-tree":
            for e in self.idx.kv_prefix(key):
                self.delete(e.Key)
        elif verb == "delete-cas":
            if cur is None or cur.ModifyIndex != index:
                raise _Failed(f'failed to delete key "{key}", index is stale')
            self.delete(key)
        else:
            raise _Failed(f'unknown KV verb "{verb}"')


def _value(raw: Any) -> bytes:
    if raw is None:
        return b""
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, "Failed to parse body: Value must be base64") from None


def _entry(key: str, value: bytes, flags: int, cur: KVEntry | None) -> KVEntry:
    return KVEntry(
        Key=key,
        Value=value,
        Flags=flags,
        Session=cur.Session if cur else "",
        LockIndex=cur.LockIndex if cur else 0,
    )


async def txn(app: ApiApp, req: Request) -> Response:
    if len(req.body) > app.agent.config.limits.txn_max_req_len:
        raise HTTPError(413, "Request body too large")
    body = decode_json(req)
    if not isinstance(body, list):
        raise HTTPError(400, "Failed to parse body: expected a JSON array of operations")
    if len(body) > MAX_OPS:
        raise HTTPError(413, f"Transaction contains too many operations ({len(body)} > {MAX_OPS})")
    ops = []
    for i, raw in enumerate(body):
        wrapped = canonical_keys(raw, ("KV", "Node", "Service", "Check"), what=f"operation {i}")
        if "KV" not in wrapped:
            raise HTTPError(400, f"operation {i}: only KV operations are supported")
        ops.append(canonical_keys(wrapped["KV"], _KV_FIELDS, what=f"operation {i}"))
    for _ in range(16):
        work = _Txn(app)
        errors = []
        for i, op in enumerate(ops):
            try:
                work.run(op)
            except _Failed as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
        if errors:
            return json_response({"Results": None, "Errors": errors}, 409)
        result = await app.state.store.txn(list(work.compares.values()), work.ops)
        await app.state.wait_applied(result.revision)
        if result.succeeded:
            return json_response({"Results": _results(app, work), "Errors": None})
    raise HTTPError(500, "transaction kept conflicting with concurrent writes")


def _results(app: ApiApp, work: _Txn) -> list[dict[str, Any]]:
    out = []
    for key, entry, with_value in work.results:
        stored = app.state.indexes.kv.get(key) if not with_value else entry
        shown = stored or entry
        assert shown is not None
        pair = kv_pair(shown)
        if not with_value:
            pair.Value = None
        out.append({"KV": pair})
    return out
