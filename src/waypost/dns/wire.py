"""DNS messages as bytes: reading queries, and writing prepared answers.

An :class:`Answer` is a response without its header: the question and every record
already encoded (see :mod:`waypost.dns.records`). :func:`render` turns one answer plus
one record order into the bytes after the message ID, applying Consul's limits: the
``a_record_limit``-style cap, the UDP answer cap for clients without EDNS, the size
limit with the authority section dropped first and additional records kept in step
with the surviving answers, and the TC bit when ``enable_truncate`` is on.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "FORMERR",
    "NOERROR",
    "NOTIMP",
    "NXDOMAIN",
    "REFUSED",
    "SERVFAIL",
    "Answer",
    "Forward",
    "Rendered",
    "header_only",
    "opt_record",
    "parse_opt",
    "render",
]

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5


@dataclass(frozen=True, slots=True)
class Forward:
    """The query belongs to the recursors, or with ``datacenter`` to a server of that
    datacenter, or with ``prepared_query`` waits on that query's failover and is asked
    again; ``servfail`` is the reply if none answers. Here rather than with the resolver
    so that the server can tell one from an answer without loading the resolver."""

    query: bytes
    servfail: bytes
    datacenter: str = ""
    prepared_query: str = ""


# Consul: never more than 8 answers to a client without EDNS, UDP payloads never above
# 64 KiB minus IP/UDP headers, TCP answers cut at 64 KiB minus a header's worth.
_MAX_UDP_ANSWERS = 8
_PLAIN_UDP_SIZE = 512
_MAX_UDP_SIZE = 65535 - 68
_MAX_TCP_SIZE = 65523
_ECS_OPTION = 8
_OPT_HEAD = b"\x00\x00\x29"


@dataclass(frozen=True, slots=True)
class Answer:
    """A response minus its header, records encoded, order still open.

    ``answer_extra[i]`` keys the additional records that belong with answer ``i`` in
    ``extras`` (the A/AAAA/TXT of an SRV target, the glue of an NS); they go out once
    per key and only while that answer does. ``additional`` is sent regardless.
    """

    rcode: int
    question: bytes
    answers: tuple[bytes, ...] = ()
    answer_extra: tuple[str, ...] = ()
    extras: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)
    authority: tuple[bytes, ...] = ()
    additional: tuple[bytes, ...] = ()
    authoritative: bool = True
    recursion_available: bool = False
    echo_edns: bool = True
    shuffle: bool = False
    limit: int = 0
    srv: bool = False
    has_soa: bool = False
    per_query: bool = False
    """Built for one query (see ``PreparedResult.near``): never cached."""


# Rendered: four flag byte pairs, indexed by the query's RD bit | CD bit << 1, and the
# message bytes that follow the flags (counts, question and sections).
Rendered = tuple[tuple[bytes, bytes, bytes, bytes], bytes]


def render(
    answer: Answer,
    order: Sequence[int],
    *,
    tcp: bool,
    opt: bytes,
    udp_answer_limit: int,
    enable_truncate: bool,
) -> Rendered:
    """Lay out ``answer`` with its answers in ``order``, trimmed to fit the transport."""
    chosen = list(order)
    if answer.limit and len(chosen) > answer.limit:
        chosen = chosen[: answer.limit]
    offered = len(chosen)
    if tcp:
        cap = 1024 if answer.srv else 4096
        chosen = chosen[:cap]
        budget = _MAX_TCP_SIZE
    else:
        size = len(opt) and int.from_bytes(opt[3:5], "big")
        budget = min(max(size, _PLAIN_UDP_SIZE), _MAX_UDP_SIZE)
        if budget == _PLAIN_UDP_SIZE:
            chosen = chosen[: min(_MAX_UDP_ANSWERS, udp_answer_limit)]
        budget -= 8
    authority = answer.authority
    fixed = 12 + len(answer.question) + len(opt) + sum(map(len, answer.additional))
    sizes = _running_sizes(answer, chosen)
    if len(chosen) > 1 and fixed + sum(map(len, authority)) + sizes[-1] > budget:
        authority = ()
        chosen = chosen[: max(1, bisect.bisect_right(sizes, budget - fixed))]
    extra: list[bytes] = []
    seen: set[str] = set()
    for i in chosen:
        key = answer.answer_extra[i] if answer.answer_extra else ""
        if key and key not in seen:
            seen.add(key)
            extra.extend(answer.extras[key])
    extra.extend(answer.additional)
    counts = struct.pack("!HHHH", 1, len(chosen), len(authority), len(extra) + (1 if opt else 0))
    body = b"".join((counts, answer.question, *(answer.answers[i] for i in chosen), *authority, *extra, opt))
    truncated = enable_truncate and len(chosen) < offered
    return _flags(answer, truncated), body


def _running_sizes(answer: Answer, chosen: Sequence[int]) -> list[int]:
    """Bytes of the first k answers plus their additional records, for every k."""
    total, seen, sizes = 0, set[str](), []
    for i in chosen:
        total += len(answer.answers[i])
        key = answer.answer_extra[i] if answer.answer_extra else ""
        if key and key not in seen:
            seen.add(key)
            total += sum(map(len, answer.extras[key]))
        sizes.append(total)
    return sizes


def _flags(answer: Answer, truncated: bool) -> tuple[bytes, bytes, bytes, bytes]:
    high = 0x80 | (0x04 if answer.authoritative else 0) | (0x02 if truncated else 0)
    low = (0x80 if answer.recursion_available else 0) | answer.rcode
    return (
        bytes((high, low)),
        bytes((high | 0x01, low)),
        bytes((high, low | 0x10)),
        bytes((high | 0x01, low | 0x10)),
    )


def opt_record(payload: int, options: bytes = b"") -> bytes:
    """The OPT record Consul sends back: the client's own UDP size, no flags."""
    return _OPT_HEAD + struct.pack("!HIH", payload, 0, len(options)) + options


def parse_opt(data: bytes, pos: int) -> int:
    """The EDNS payload size of an OPT record at ``pos``.

    Returns -2 when the record is not a plain OPT or carries an EDNS Client Subnet
    option (which must be echoed, so it takes the general path).
    """
    if len(data) < pos + 11 or data[pos] != 0 or data[pos + 1 : pos + 3] != b"\x00\x29":
        return -2
    end = pos + 11 + int.from_bytes(data[pos + 9 : pos + 11], "big")
    if end > len(data):
        return -2
    opt = pos + 11
    while opt + 4 <= end:
        if int.from_bytes(data[opt : opt + 2], "big") == _ECS_OPTION:
            return -2
        opt += 4 + int.from_bytes(data[opt + 2 : opt + 4], "big")
    return int.from_bytes(data[pos + 3 : pos + 5], "big")


def header_only(data: bytes, rcode: int) -> bytes:
    """A bare reply header, as miekg/dns sends for queries it rejects before parsing."""
    high = 0x80 | (data[2] & 0x78)
    low = rcode
    if not data[2] & 0x78:
        high |= data[2] & 0x01
        low |= data[3] & 0x10
    return data[:2] + bytes((high, low)) + b"\x00" * 8
