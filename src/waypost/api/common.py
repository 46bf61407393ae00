"""What every endpoint shares: errors, JSON in and out, Consul's query parameters and headers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import msgspec

from waypost.agent.definitions import DefinitionError
from waypost.api.filter import FilterError, compile_filter
from waypost.api.http import Request, Response
from waypost.durations import parse_duration
from waypost.gostrconv import atoi, parse_uint64
from waypost.state.catalog_ops import CatalogError
from waypost.state.kv_ops import KVError
from waypost.state.schema import InvalidRecordError
from waypost.store.outcome import TxnOutcomeUnknownError

log = logging.getLogger("waypost.api")

__all__ = [
    "NO_DC_PATH",
    "CacheControl",
    "HTTPError",
    "apply_filter",
    "bool_response",
    "decode_json",
    "encode_json",
    "error_response",
    "filter_predicate",
    "json_response",
    "node_meta_args",
    "parse_cache_control",
    "parse_consistency",
    "parse_uint",
    "query_duration",
    "require_param",
]

_ENCODER = msgspec.json.Encoder()

NO_DC_PATH = "No path to datacenter"
"""Consul's answer (a 500) to a request routed to a datacenter it cannot reach: unknown,
or none of its servers answering."""


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
    if isinstance(exc, DefinitionError | CatalogError | InvalidRecordError):
        return Response.text(str(exc), 400)
    if isinstance(exc, KVError):
        return Response.text(str(exc), 500)
    if isinstance(exc, TxnOutcomeUnknownError):
        # Not a bug but an honest "don't know": the write may have applied; reading tells.
        log.warning("write failed: %s", exc)
        return Response.text(f"Internal error: {exc} (the write may have applied: read it back)", 500)
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


MAX_DEPTH = 32
"""Deepest nesting a body may have; no Consul request nests more than a handful of levels."""

_LONG_NUMBER = re.compile(rb"\d{19}")
_INT_RANGE = (-(2**63), 2**64 - 1)
"""What Go's int64 and uint64 fields hold between them; anything past it is refused as Go does."""


def decode_json(req: Request, *, allow_empty: bool = False) -> Any:
    body = req.body
    if not body.strip():
        if allow_empty:
            return None
        raise HTTPError(400, "Request decode failed: EOF")
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise HTTPError(400, f"Request decode failed: nesting deeper than {MAX_DEPTH} levels")
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise HTTPError(400, f"Request decode failed: {exc}") from None
    if _LONG_NUMBER.search(body):
        _check_ints(value, "$")
    return value


def _too_deep(body: bytes) -> bool:
    """Scans brackets outside strings before decoding, so a hostile body never recurses."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _check_ints(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_ints(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_ints(item, f"{path}[{i}]")
    elif isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
        raise HTTPError(400, f"Request decode failed: number {value} out of range at `{path}`")


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


def parse_uint(req: Request, name: str, *, default: int = 0, invalid: str | None = None) -> int:
    """``?name`` as Go's ``strconv.ParseUint`` reads it; a malformed one is refused with
    ``invalid`` when Consul has its own message for it, else with Go's error after the name."""
    raw = req.arg(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_uint64(raw)
    except ValueError as exc:
        raise HTTPError(400, invalid or f"Invalid {name}: {exc}") from None


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


class CacheControl(NamedTuple):
    """The request's ``Cache-Control`` directives that Consul's agent cache reads (seconds)."""

    max_age: int = 0
    stale_if_error: int = 0
    must_revalidate: bool = False


_NO_CACHE_CONTROL = CacheControl()


def parse_cache_control(req: Request) -> CacheControl:
    """Consul's ``parseCacheControl``: comma-separated directives, case-insensitive;
    ``max-age``, ``stale-if-error`` (each a Go ``Atoi`` number) and ``must-revalidate`` are
    read, any other directive ignored; ``max-age=0`` means must-revalidate."""
    raw = req.headers.get("cache-control")
    if not raw:
        return _NO_CACHE_CONTROL
    max_age = stale = 0
    revalidate = False
    for directive in raw.lower().split(","):
        d = directive.strip()
        if d == "must-revalidate":
            revalidate = True
        elif d.startswith("max-age="):
            max_age = _seconds(d[8:])
            revalidate = revalidate or max_age == 0
        elif d.startswith("stale-if-error="):
            stale = _seconds(d[15:])
    return CacheControl(max_age, stale, revalidate)


def _seconds(raw: str) -> int:
    try:
        return atoi(raw)
    except ValueError:
        raise HTTPError(400, "Invalid Cache-Control header.") from None


def filter_predicate(req: Request, selectors: Collection[str]) -> Callable[[Any], bool] | None:
    """``?filter`` as a test of one result row, or None when the request has none.

    The expression is compiled here, against the row type's top-level ``selectors``
    (``waypost.api.selectors``), so a malformed one is refused before any data is read,
    even when there is nothing to filter; a clash between the expression and the data
    (an operator a field's type lacks) can only show while testing a row.
    """
    expr = req.arg("filter")
    if not expr:
        return None
    try:
        flt = compile_filter(expr, selectors)
    except FilterError as exc:
        raise _filter_error(exc) from None

    def keep(item: Any) -> bool:
        try:
            return flt.matches(msgspec.to_builtins(item))
        except FilterError as exc:
            raise _filter_error(exc) from None

    return keep


def _filter_error(exc: FilterError) -> HTTPError:
    return HTTPError(400, f"Failed to create boolean expression evaluator: {exc}")


def apply_filter(req: Request, items: list[Any], selectors: Collection[str]) -> list[Any]:
    keep = filter_predicate(req, selectors)
    return items if keep is None else [item for item in items if keep(item)]
