"""A prepared query's definition from a request body, checked as Consul's ``parseQuery`` checks it.

Consul decodes the body with Go's ``encoding/json``: keys match fields case-blind and a
``null`` leaves a field at its zero value. Keys no version of Consul knows are refused
here, naming the key, so that a misspelt ``OnlyPasing`` is not silently a query that
returns warning instances. What is refused keeps Consul's wording, prefixed as Consul's
``Apply`` prefixes it ("Invalid prepared query: ...").
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec

from waypost.durations import parse_duration
from waypost.state.model import PreparedQuery

__all__ = [
    "NAME_PREFIX_MATCH",
    "REDACTED_TOKEN",
    "QueryError",
    "acl_prefix",
    "decode_definition",
    "is_template",
    "validate",
]

NAME_PREFIX_MATCH = "name_prefix_match"
REDACTED_TOKEN = "<hidden>"
"""What a caller without ``acl:write`` sees instead of a query's Token, as in Consul."""

_IGNORED = frozenset(
    {"namespace", "partition", "enterprisemeta", "raftindex", "createindex", "modifyindex", "near"}
)
"""Keys Consul accepts that mean nothing here: Enterprise scoping, read-only indexes, and a
top-level ``Near`` (the npm ``consul`` package sends it there; ``Service.Near`` is the field)."""


class QueryError(ValueError):
    """A definition Consul refuses; the API answers 400 with the message."""


def _canonical(value: Any, shape: type[msgspec.Struct], path: str) -> dict[str, Any]:
    """``value``'s keys spelled as ``shape`` spells them, recursively; nulls dropped."""
    if not isinstance(value, dict):
        raise QueryError(f"Request decode failed: {path.rstrip('.') or 'body'} must be a JSON object")
    fields = {f.name.lower(): f for f in msgspec.structs.fields(shape)}
    out: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(str(key).lower())
        if field is None:
            if str(key).lower() in _IGNORED:
                continue
            raise QueryError(f'Request decode failed: unknown field "{path}{key}"')
        if item is None:
            continue
        inner = _struct_of(field.type)
        if inner is not None:
            if isinstance(item, list):
                item = [_canonical(x, inner, f"{path}{field.name}[{i}].") for i, x in enumerate(item)]
            else:
                item = _canonical(item, inner, f"{path}{field.name}.")
        out[field.name] = item
    return out


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    """The record type a field holds (alone, optional, or in a list), if any."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return next((found for arg in get_args(tp) if (found := _struct_of(arg)) is not None), None)


def decode_definition(body: Any) -> PreparedQuery:
    """The definition in a create or update body (ID and indexes are the server's to set)."""
    fields = _canonical(body if body is not None else {}, PreparedQuery, "")
    fields["ID"] = ""
    try:
        return msgspec.convert(fields, PreparedQuery)
    except msgspec.ValidationError as exc:
        raise QueryError(f"Request decode failed: {exc}") from None


def is_template(query: PreparedQuery) -> bool:
    return bool(query.Template.Type)


def acl_prefix(query: PreparedQuery) -> str | None:
    """Consul's ``GetACLPrefix``: the name the ``query`` ACL rules apply to, or None for an
    unnamed, non-template query, which anyone holding its ID may use."""
    if query.Name or is_template(query):
        return query.Name
    return None


def validate(query: PreparedQuery) -> None:
    """Consul's ``parseQuery``; the template itself is checked when it is compiled."""
    if not query.Name and not is_template(query) and not query.Session:
        raise QueryError("Invalid prepared query: Must be bound to a session")
    if query.Token == REDACTED_TOKEN:
        raise QueryError(
            f"Invalid prepared query: Bad Token '{query.Token}', it looks like a query definition "
            "with a redacted token was submitted"
        )
    service = query.Service
    if not service.Service:
        raise QueryError("Invalid prepared query: Must provide a Service name to query")
    failover = service.Failover
    if failover.NearestN < 0:
        raise QueryError(f"Invalid prepared query: Bad NearestN '{failover.NearestN}', must be >= 0")
    if failover.Targets and (failover.NearestN or failover.Datacenters):
        raise QueryError("Invalid prepared query: Targets cannot be populated with NearestN or Datacenters")
    if any(t.Peer for t in failover.Targets or ()) or service.Peer or service.SamenessGroup:
        raise QueryError("Invalid prepared query: cluster peering is not supported")
    for key in service.NodeMeta or {}:
        if not key:
            raise QueryError("Invalid prepared query: Couldn't load metadata pair: key cannot be blank")
    if query.DNS.TTL:
        try:
            ttl = parse_duration(query.DNS.TTL)
        except ValueError as exc:
            raise QueryError(f"Invalid prepared query: Bad DNS TTL '{query.DNS.TTL}': {exc}") from None
        if ttl < 0:
            raise QueryError(f"Invalid prepared query: DNS TTL '{int(ttl * 1e9)}', must be >=0")
