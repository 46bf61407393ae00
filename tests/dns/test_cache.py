"""Prepared answers: record-order pools, renderings reused, cache bounds."""

from __future__ import annotations

import itertools
import random

import dns.message
from test_wire import QUESTION, srv_answer

from waypost.dns.cache import POOL_SIZE, AnswerCache, Prepared, RenderSettings
from waypost.dns.wire import NOERROR, Answer

SETTINGS = RenderSettings(udp_answer_limit=3, enable_truncate=True)
QUERY = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + QUESTION


def order_of(reply: bytes) -> tuple[str, ...]:
    message = dns.message.from_wire(reply)
    return tuple(rd.target.to_text() for rrset in message.answer for rd in rrset)


def test_small_answers_use_every_permutation() -> None:
    prepared = Prepared(srv_answer(3), random.Random(1), SETTINGS, 0.0)
    seen = {order_of(prepared.respond(QUERY, True, -1)) for _ in range(300)}
    names = [f"node-{i:03d}.node.dc1.consul." for i in range(3)]
    assert seen == set(itertools.permutations(names))


def test_large_answers_keep_drawing_new_orders() -> None:
    prepared = Prepared(srv_answer(20), random.Random(2), SETTINGS, 0.0)
    seen = {order_of(prepared.respond(QUERY, True, -1)) for _ in range(POOL_SIZE * 20)}
    assert len(seen) > POOL_SIZE + 10
    assert all(len(order) == 20 for order in seen)


def test_unshuffled_answers_keep_their_order() -> None:
    answer = srv_answer(6)
    fixed = Answer(NOERROR, QUESTION, answer.answers, answer.answer_extra, answer.extras)
    prepared = Prepared(fixed, random.Random(3), SETTINGS, 0.0)
    assert len({order_of(prepared.respond(QUERY, True, -1)) for _ in range(50)}) == 1


def test_response_carries_query_id_and_rd() -> None:
    prepared = Prepared(srv_answer(2), random.Random(4), SETTINGS, 0.0)
    reply = prepared.respond(QUERY, False, 1232)
    assert reply[:4] == b"\xab\xcd\x85\x00"
    message = dns.message.from_wire(reply)
    assert (message.edns, message.payload) == (0, 1232)


def test_cache_evicts_oldest_and_forgets_on_new_revision() -> None:
    cache = AnswerCache(max_entries=2)
    prepared = Prepared(srv_answer(1), random.Random(5), SETTINGS, 0.0)
    cache.sync(1)
    for key in (b"a", b"b", b"c"):
        cache.put(key, prepared)
    assert list(cache.entries) == [b"b", b"c"]
    cache.sync(1)
    assert len(cache.entries) == 2
    cache.sync(2)
    assert cache.entries == {}
