"""/v1/kv: Consul's key-value store with locks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, bool_response, encode_json, parse_uint
from waypost.api.http import Request, Response
from waypost.api.shapes import DirEntry
from waypost.state import kv_ops
from waypost.state.model import KVEntry

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["kv_pair"]


def kv_pair(e: KVEntry) -> DirEntry:
    return DirEntry(
        e.LockIndex, e.Key, e.Flags, e.Value or None, e.Session or msgspec.UNSET, e.CreateIndex, e.ModifyIndex
    )


def key_listing(keys: Iterable[str], prefix: str, separator: str) -> list[str]:
    """``?keys``: the keys under ``prefix`` (sorted), those past a ``separator`` folded into
    the part up to it, as Consul lists them (also a client agent's KV views')."""
    out: dict[str, None] = {}
    for key in keys:
        rest = key[len(prefix) :]
        if separator:
            cut = rest.find(separator)
            if cut >= 0:
                out[prefix + rest[: cut + len(separator)]] = None
                continue
        out[key] = None
    return list(out)


def get(app: ApiApp, req: Request) -> Response | Any:
    key = req.param
    recurse = req.flag("recurse")
    keys = req.flag("keys")
    raw = req.flag("raw")
    if not key and not (recurse or keys):
        raise HTTPError(400, "Missing key name")
    separator = req.arg("separator") or req.arg("seperator") or ""
    state = app.state

    def query() -> QueryResult:
        idx = state.indexes
        if recurse or keys:
            entries = idx.kv_prefix(key)
            index = idx.kv_prefix_index(key)
            topics = (("kv-prefix", key),)
            if keys:
                if not entries and key:
                    return QueryResult(index, topics, b"", 404)
                listed = key_listing((e.Key for e in entries), key, separator)
                return QueryResult(index, topics, encode_json(listed))
            if not entries:
                return QueryResult(index, topics, b"", 404)
            return QueryResult(index, topics, encode_json([kv_pair(e) for e in entries]))
        entry = idx.kv.get(key)
        topics = (("kv", key),)
        if entry is None:
            return QueryResult(idx.kv_tombstones.get(key) or idx.table_index("kvs"), topics, b"", 404)
        index = idx.kv_index(entry)
        if raw:
            return QueryResult(index, topics, entry.Value, content_type="text/plain; charset=utf-8")
        return QueryResult(index, topics, encode_json([kv_pair(entry)]))

    return blocking_read(state, req, query, cache=app.cache)


async def put(app: ApiApp, req: Request) -> Response:
    key = req.param
    if not key:
        raise HTTPError(400, "Missing key name")
    present = [name for name in ("cas", "acquire", "release") if req.flag(name)]
    if len(present) > 1:
        raise HTTPError(400, "Conflicting flags: " + ",".join(f"{n}={req.arg(n)}" for n in present))
    limit = app.agent.config.limits.kv_max_value_size
    if len(req.body) > limit:
        raise HTTPError(
            413,
            f"Request body({len(req.body)} bytes) too large, max size: {limit} bytes. See "
            "https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.",
        )
    flags = parse_uint(req, "flags")
    ok = await kv_ops.kv_set(
        app.state,
        key,
        req.body,
        flags=flags,
        cas=parse_uint(req, "cas") if req.flag("cas") else None,
        acquire=req.arg("acquire") if req.flag("acquire") else None,
        release=req.arg("release") if req.flag("release") else None,
        lock_delays=app.agent.lock_delays,
    )
    return bool_response(ok)


async def delete(app: ApiApp, req: Request) -> Response:
    key = req.param
    recurse = req.flag("recurse")
    if not key and not recurse:
        raise HTTPError(400, "Missing key name")
    cas = parse_uint(req, "cas") if req.flag("cas") else None
    ok = await kv_ops.kv_delete(app.state, key, recurse=recurse, cas=cas)
    return bool_response(ok)
