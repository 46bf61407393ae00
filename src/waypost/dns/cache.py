"""Prepared answers: everything about a response that does not change per query.

Consul shuffles service answers on every query. Shuffling and re-encoding per query
would cost more than the rest of the hot path together, so a :class:`Prepared` keeps a
pool of record orders and renders each (order, transport, EDNS size) combination once.
A query then costs a random pick and a concatenation. The pool is every permutation
when there are at most five answers; for more it holds :data:`POOL_SIZE` random orders
and replaces one of them every :data:`POOL_SIZE` queries, so the orders clients see
keep changing while the per-query cost stays flat.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from waypost.dns.wire import Answer, Rendered, opt_record, render

__all__ = ["POOL_SIZE", "AnswerCache", "Prepared", "RenderSettings"]

POOL_SIZE = 64
_ALL_ORDERS_UP_TO = 5
_MAX_RENDERED_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RenderSettings:
    udp_answer_limit: int
    enable_truncate: bool


class Prepared:
    """One cached answer with its record orders and the renderings made so far."""

    __slots__ = (
        "_fresh",
        "_next",
        "_orders",
        "_rendered",
        "_rendered_bytes",
        "_rng",
        "_settings",
        "_uses",
        "answer",
        "expires",
    )

    def __init__(self, answer: Answer, rng: random.Random, settings: RenderSettings, expires: float) -> None:
        self.answer = answer
        self.expires = expires
        self._rng = rng
        self._settings = settings
        self._rendered: dict[tuple[int, bool, int], Rendered] = {}
        self._rendered_bytes = 0
        self._uses = 0
        self._next = 0
        n = len(answer.answers)
        self._fresh = answer.shuffle and n > _ALL_ORDERS_UP_TO
        if not answer.shuffle or n < 2:
            self._orders = [tuple(range(n))]
        elif n <= _ALL_ORDERS_UP_TO:
            self._orders = list(itertools.permutations(range(n)))
        else:
            self._orders = [tuple(rng.sample(range(n), n)) for _ in range(POOL_SIZE)]

    def respond(self, query: bytes, tcp: bool, edns: int) -> bytes:
        """The full response to ``query``: its ID, its RD/CD bits, one of our orders."""
        orders = len(self._orders)
        slot = int(self._rng.random() * orders) if orders > 1 else 0
        if self._fresh:
            self._uses += 1
            if self._uses >= POOL_SIZE:
                self._replace_one()
        key = (slot, tcp, edns if self.answer.echo_edns else -1)
        rendered = self._rendered.get(key)
        if rendered is None:
            opt = opt_record(edns) if edns >= 0 and self.answer.echo_edns else b""
            rendered = self._render(slot, tcp, opt)
            self._rendered_bytes += len(rendered[1])
            if self._rendered_bytes > _MAX_RENDERED_BYTES:
                self._rendered.clear()
                self._rendered_bytes = len(rendered[1])
            self._rendered[key] = rendered
        flags, body = rendered
        return query[:2] + flags[(query[2] & 1) | ((query[3] >> 3) & 2)] + body

    def respond_with_opt(self, query: bytes, tcp: bool, opt: bytes) -> bytes:
        """Like :meth:`respond` for an OPT record that is unique to this query (ECS)."""
        slot = int(self._rng.random() * len(self._orders))
        flags, body = self._render(slot, tcp, opt if self.answer.echo_edns else b"")
        return query[:2] + flags[(query[2] & 1) | ((query[3] >> 3) & 2)] + body

    def _render(self, slot: int, tcp: bool, opt: bytes) -> Rendered:
        return render(
            self.answer,
            self._orders[slot],
            tcp=tcp,
            opt=opt,
            udp_answer_limit=self._settings.udp_answer_limit,
            enable_truncate=self._settings.enable_truncate,
        )

    def _replace_one(self) -> None:
        self._uses = 0
        slot = self._next
        self._next = (slot + 1) % POOL_SIZE
        self._orders[slot] = tuple(
            self._rng.sample(range(len(self.answer.answers)), len(self.answer.answers))
        )
        for key in [k for k in self._rendered if k[0] == slot]:
            self._rendered_bytes -= len(self._rendered.pop(key)[1])


class AnswerCache:
    """Prepared answers keyed by lowercased wire question, valid for one backend revision."""

    __slots__ = ("_max", "entries", "revision")

    def __init__(self, max_entries: int = 8192) -> None:
        self.entries: dict[bytes, Prepared] = {}
        self.revision = -1
        self._max = max_entries

    def sync(self, revision: int) -> None:
        """Forget everything when the backend moved on."""
        if revision != self.revision:
            self.entries.clear()
            self.revision = revision

    def put(self, key: bytes, prepared: Prepared) -> None:
        """Store ``prepared``, evicting the oldest entry when full."""
        if len(self.entries) >= self._max:
            del self.entries[next(iter(self.entries))]
        self.entries[key] = prepared
