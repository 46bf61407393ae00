"""Rendering prepared answers (limits, truncation, EDNS) and reading queries."""

from __future__ import annotations

from collections.abc import Iterable

import dns.flags
import dns.message
import dns.name
import pytest

from waypost.dns.records import Encoder, address_rdata, parse_ip, srv_rdata, txt_rdata
from waypost.dns.wire import (
    FORMERR,
    NOERROR,
    NOTIMP,
    Answer,
    header_only,
    opt_record,
    parse_opt,
    render,
)

QNAME = dns.name.from_text("web.service.consul.")
QUESTION = b"\x03web\x07service\x06consul\x00\x00\x21\x00\x01"


def srv_answer(count: int, *, authority: int = 0) -> Answer:
    """``count`` SRV answers, each with its own target and A record."""
    encoder = Encoder(QNAME)
    answers, keys, extras = [], [], {}
    for i in range(count):
        target = dns.name.from_text(f"node-{i:03d}.node.dc1.consul.")
        ip = parse_ip(f"10.0.{i // 250}.{i % 250 + 1}")
        assert ip is not None
        answers.append(encoder.rr(QNAME, 0, srv_rdata(1, 80, target)))
        keys.append(target.to_text())
        extras[target.to_text()] = (encoder.rr(target, 0, address_rdata(ip)),)
    ns = tuple(encoder.rr(QNAME, 0, srv_rdata(0, 0, QNAME)) for _ in range(authority))
    return Answer(
        NOERROR, QUESTION, tuple(answers), tuple(keys), extras, authority=ns, shuffle=True, srv=True
    )


def parse(rendered: tuple[tuple[bytes, ...], bytes], rd: int = 1) -> dns.message.Message:
    flags, body = rendered
    return dns.message.from_wire(b"\x12\x34" + flags[rd] + body)


def draw(
    answer: Answer, order: Iterable[int], *, tcp: bool = False, opt: bytes = b"", truncate: bool = True
) -> dns.message.Message:
    return parse(render(answer, list(order), tcp=tcp, opt=opt, udp_answer_limit=3, enable_truncate=truncate))


def targets(message: dns.message.Message) -> list[str]:
    return [rd.target.to_text() for rrset in message.answer for rd in rrset]


def glue(message: dns.message.Message) -> list[str]:
    return [rrset.name.to_text() for rrset in message.additional]


@pytest.mark.parametrize(
    ("limit", "opt", "tcp", "answers"),
    [
        (3, b"", False, 3),  # Consul's default udp_answer_limit without EDNS
        (20, b"", False, 6),  # at most 8 without EDNS, and 512 bytes hold only 6 of these
        (1, b"", False, 1),
        (3, opt_record(512), False, 3),  # EDNS at or below 512 counts as plain UDP
        (3, opt_record(1232), False, 15),  # EDNS lifts the count cap; the size decides
        (3, opt_record(65535), False, 100),
        (3, b"", True, 100),
    ],
)
def test_udp_limits(limit: int, opt: bytes, tcp: bool, answers: int) -> None:
    rendered = render(
        srv_answer(100), range(100), tcp=tcp, opt=opt, udp_answer_limit=limit, enable_truncate=True
    )
    message = parse(rendered)
    assert len(targets(message)) == answers
    assert glue(message) == targets(message)
    assert bool(message.flags & dns.flags.TC) == (answers < 100)
    if not tcp:
        size = len(rendered[1]) + 4
        assert size <= max(512, int.from_bytes(opt[3:5], "big") if opt else 0) - 8 or answers == 1


def test_truncation_is_silent_unless_enabled() -> None:
    message = draw(srv_answer(10), range(10), truncate=False)
    assert len(targets(message)) == 3
    assert not message.flags & dns.flags.TC


def test_order_is_respected_and_extras_follow() -> None:
    order = [7, 2, 9]
    message = draw(srv_answer(10), order, tcp=True)
    assert targets(message) == [f"node-{i:03d}.node.dc1.consul." for i in order]
    assert glue(message) == targets(message)


def test_authority_goes_first_when_too_big() -> None:
    big = srv_answer(16, authority=2)
    kept = draw(big, range(2), opt=opt_record(1232))
    assert len(kept.authority) == 1  # both NS records are one RRset
    trimmed = draw(big, range(16), opt=opt_record(1232))
    assert trimmed.authority == []
    assert trimmed.flags & dns.flags.TC


def test_one_answer_is_sent_even_if_too_big() -> None:
    note = Encoder(QNAME).rr(QNAME, 0, txt_rdata("x" * 600))
    huge = Answer(NOERROR, QUESTION, srv_answer(2).answers, additional=(note,))
    message = draw(huge, range(2))
    assert len(targets(message)) == 1
    assert message.flags & dns.flags.TC


def test_limit_applies_before_transport_caps() -> None:
    capped = Answer(NOERROR, QUESTION, srv_answer(10).answers, limit=2)
    message = draw(capped, range(10), tcp=True)
    assert len(targets(message)) == 2
    assert not message.flags & dns.flags.TC


def test_flags_variants() -> None:
    flags, _ = render(
        Answer(NOTIMP, QUESTION, authoritative=False, recursion_available=True),
        [],
        tcp=False,
        opt=b"",
        udp_answer_limit=3,
        enable_truncate=False,
    )
    assert flags == (b"\x80\x84", b"\x81\x84", b"\x80\x94", b"\x81\x94")


def test_header_only() -> None:
    query = dns.message.make_query("a.consul", "A", id=99).to_wire()
    assert header_only(query, FORMERR) == b"\x00\x63\x81\x01" + b"\x00" * 8
    notify = query[:2] + bytes((query[2] | 0x20,)) + query[3:]
    assert header_only(notify, NOTIMP) == b"\x00\x63\xa0\x04" + b"\x00" * 8


@pytest.mark.parametrize(
    ("opt", "want"),
    [
        (opt_record(1232), 1232),
        (opt_record(4096, b"\x00\x0a\x00\x08" + b"c" * 8), 4096),  # cookies are ignored
        (opt_record(4096, b"\x00\x08\x00\x04\x00\x01\x00\x00"), -2),  # ECS takes the general path
        (b"\x00\x00\x01" + opt_record(1)[3:], -2),
        (opt_record(1232)[:-1], -2),
        (opt_record(1232, b"\x00\x0a\x00\x08")[:-1] + b"\x00", 1232),
    ],
)
def test_parse_opt(opt: bytes, want: int) -> None:
    assert parse_opt(b"xx" + opt, 2) == want
