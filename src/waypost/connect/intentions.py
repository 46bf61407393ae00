"""Intentions as Consul evaluates them, sans I/O: precedence, validation, which intentions
match a name, and the allow/deny decision for one connection.

Consul orders intentions by precedence (an exact destination outranks a wildcard one, then
an exact source outranks a wildcard one: 9, 8, 6, 5 in the default namespace), ties broken
by the names, and the first intention whose source and destination both match decides.
With none matching, the ACL default policy decides (allow while ACLs are off).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from waypost.state.model import Intention

__all__ = [
    "DEFAULT_NS",
    "WILDCARD",
    "Decision",
    "decide",
    "describe",
    "matching",
    "ordered",
    "parse_name",
    "precedence",
    "problems",
    "with_id",
]

WILDCARD = "*"
DEFAULT_NS = "default"
_META_MAX_PAIRS, _META_KEY_MAX, _META_VALUE_MAX = 64, 128, 512


def _exact(ns: str, name: str) -> int:
    if ns == WILDCARD:
        return 0
    return 1 if name == WILDCARD else 2


def precedence(ixn: Intention) -> int:
    """Consul's ``UpdatePrecedence``: 9 exact to exact down to 5 for ``* => *``."""
    top = {2: 9, 1: 6, 0: 3}[_exact(ixn.DestinationNS, ixn.DestinationName)]
    return top - (2 - _exact(ixn.SourceNS, ixn.SourceName))


def ordered(intentions: Iterable[Intention]) -> list[Intention]:
    """Highest precedence first, ties in the lexicographic order of the four names."""
    return sorted(
        intentions,
        key=lambda x: (-x.Precedence, x.SourceNS, x.SourceName, x.DestinationNS, x.DestinationName),
    )


def parse_name(text: str) -> tuple[str, str]:
    """A ``[namespace/]name`` as Consul's intention endpoints and CLI take it."""
    ns, sep, name = text.rpartition("/")
    if not sep:
        return DEFAULT_NS, text
    if "/" in ns:
        raise ValueError("input can contain at most one '/'")
    return ns, name


def problems(ixn: Intention) -> list[str]:
    """Consul's ``Intention.Validate``, each problem in its words."""
    out = []
    for field in ("SourceNS", "SourceName", "DestinationNS", "DestinationName"):
        if not getattr(ixn, field):
            out.append(f"{field} must be set")
    for side in ("Source", "Destination"):
        ns, name = getattr(ixn, f"{side}NS"), getattr(ixn, f"{side}Name")
        if ns != WILDCARD and WILDCARD in ns:
            out.append(f"{side}NS: wildcard character '*' cannot be used with partial values")
        if name != WILDCARD:
            if WILDCARD in name:
                out.append(f"{side}Name: wildcard character '*' cannot be used with partial values")
            if ns == WILDCARD:
                out.append(f"{side}Name: exact value cannot follow wildcard namespace")
        if ns not in (DEFAULT_NS, WILDCARD):
            out.append(
                f'{side}NS: namespace "{ns}" does not exist (only "default" without Consul Enterprise)'
            )
    if len(ixn.Description) > _META_VALUE_MAX:
        out.append(f"Description exceeds maximum length {_META_VALUE_MAX}")
    if len(ixn.Meta) > _META_MAX_PAIRS:
        out.append(f"Meta exceeds maximum element count {_META_MAX_PAIRS}")
    for k, v in ixn.Meta.items():
        if len(k) > _META_KEY_MAX:
            out.append(f'Meta key "{k}" exceeds maximum length {_META_KEY_MAX}')
        if len(v) > _META_VALUE_MAX:
            out.append(f'Meta value for key "{k}" exceeds maximum length {_META_VALUE_MAX}')
    if ixn.Action not in ("allow", "deny"):
        out.append("Action must be set to 'allow' or 'deny'")
    if ixn.SourceType != "consul":
        out.append("SourceType must be set to 'consul'")
    return out


def with_id(intentions: Iterable[Intention], ident: str) -> Intention | None:
    """The legacy intention with this ID (only those made by the create-by-ID API have one)."""
    return next((x for x in intentions if x.ID and ident == x.ID), None)


def _matches(ns: str, name: str, want_ns: str, want: str) -> bool:
    return ns in (WILDCARD, want_ns) and name in (WILDCARD, want)


def matching(intentions: Iterable[Intention], by: str, ns: str, name: str) -> list[Intention]:
    """Consul's ``Intention.Match``: those whose ``by`` side (source or destination) names
    ``name`` exactly or by wildcard, in evaluation order."""
    side = "Source" if by == "source" else "Destination"
    return ordered(
        x for x in intentions if _matches(getattr(x, f"{side}NS"), getattr(x, f"{side}Name"), ns, name)
    )


class Decision(NamedTuple):
    allowed: bool
    reason: str
    intention: Intention | None


def describe(ixn: Intention) -> str:
    """Consul's ``Intention.String``, as authorize's Reason quotes it."""
    ident = f"ID: {ixn.ID}, " if ixn.ID else ""
    return (
        f"{ixn.SourceNS}/{ixn.SourceName} => {ixn.DestinationNS}/{ixn.DestinationName} "
        f"({ident}Precedence: {ixn.Precedence}, Action: {ixn.Action.upper()})"
    )


def decide(
    intentions: Iterable[Intention], source: str, destination: str, *, default_allow: bool
) -> Decision:
    """The first intention matching both ends decides; none, the default policy."""
    for ixn in matching(intentions, "destination", DEFAULT_NS, destination):
        if _matches(ixn.SourceNS, ixn.SourceName, DEFAULT_NS, source):
            return Decision(ixn.Action == "allow", f"Matched L4 intention: {describe(ixn)}", ixn)
    return Decision(default_allow, "Default behavior configured by ACLs", None)
