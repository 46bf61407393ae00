"""What every endpoint shares: errors, JSON in and out, Consul's query parameters and headers."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from waypost.agent.definitions import DefinitionError
from waypost.api.filter import FilterError, compile_filter
from waypost.api.http import Request, Response
from waypost.durations import parse_duration
from waypost.state.catalog_ops import CatalogError
from waypost.state.kv_ops import KVError

log = logging.getLogger("waypost.api")

__all__ = [
    "HTTPError",
    "apply_filter",
    "bool_response",
    "decode_json",
    "encode_json",
    "error_response",
    "json_response",
    "node_meta_args",
    "parse_consistency",
    "parse_uint",
    "query_duration",
    "require_param",
]

_ENCODER = msgspec.json.Encoder()


class HTTPError(Exception):
    """Raised by handlers; becomes a text/plain response with Consul's status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(exc: Exception) -> Response:
    """Consul's answer to a failed request: its status, and the message as plain text."""
    if isinstance(exc, HTTPError):
        return Response.text(exc.message, exc.status)
    if isinstance(exc, DefinitionError | CatalogError):
        return Response.text(str(exc), 400)
    if isinstance(exc, KVError):
        return Response.text(str(exc), 500)
    log.error("request failed", exc_info=exc)
    return Response.text(f"Internal error: {exc}", 500)


def encode_json(value: Any) -> bytes:
    return _ENCODER.encode(value)


def json_response(value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(_ENCODER.encode(value), status, headers=headers)


_TRUE = Response(b"true")
_FALSE = Response(b"false")


def bool_response(ok: bool) -> Response:
    return Response(_TRUE.body if ok else _FALSE.body)


def decode_json(req: Request, *, allow_empty: bool = False) -> Any:
    if not req.body.strip():
        if allow_empty:
            return None
        raise HTTPError(400, "Request decode failed: EOF")
    try:
        return msgspec.json.decode(req.body)
    except msgspec.DecodeError as exc:
        raise HTTPError(400, f"Request decode failed: {exc}") from None


def node_meta_args(req: Request) -> list[tuple[str, str]]:
    """``?node-meta=key:value`` pairs (repeatable; all must match)."""
    out = []
    for raw in req.args("node-meta"):
        key, sep, value = raw.partition(":")
        if not sep:
            raise HTTPError(400, f"Invalid node-meta: {raw!r} is not in key:value form")
        out.append((key, value))
    return out


def require_param(req: Request, what: str) -> str:
    if not req.param:
        raise HTTPError(400, f"Missing {what}")
    return req.param


def parse_uint(req: Request, name: str, *, default: int = 0) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, f"Invalid {name}: {raw!r} is not an unsigned integer") from None
    if value < 0:
        raise HTTPError(400, f"Invalid {name}: {raw!r} is not an unsigned integer")
    return value


def query_duration(req: Request, name: str, message: str) -> float | None:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_duration(raw)
    except ValueError:
        raise HTTPError(400, message) from None


def parse_consistency(req: Request) -> str:
    """The consistency mode a read asked for, with Consul's conflict errors."""
    stale = req.flag("stale") or req.flag("max_stale")
    consistent = req.flag("consistent")
    if stale and consistent:
        raise HTTPError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
    if req.flag("cached") and consistent:
        raise HTTPError(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")
    if consistent:
        return "consistent"
    if stale:
        return "stale"
    return "leader"


def apply_filter(req: Request, items: list[Any]) -> list[Any]:
    expr = req.arg("filter")
    if not expr:
        return items
    try:
        flt = compile_filter(expr)
        return [item for item in items if flt.matches(msgspec.to_builtins(item))]
    except FilterError as exc:
        raise HTTPError(400, f"Failed to create boolean expression evaluator: {exc}") from None
