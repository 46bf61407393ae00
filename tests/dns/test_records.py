"""Single records: RFC 1464 text, address choice, and question-relative compression."""

from __future__ import annotations

import dns.message
import dns.name
import pytest

from waypost.dns.records import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_SRV,
    Encoder,
    address_rdata,
    parse_ip,
    pick_address,
    rfc1464,
    srv_rdata,
    txt_rdata,
)


@pytest.mark.parametrize(
    ("key", "value", "want"),
    [
        ("rack", "a", "rack=a"),
        ("a=b", "c", "a`=b=c"),
        ("a`b", "c`d", "a``b=c``d"),
        (" lead", "v", "` lead=v"),
        ("trail  ", "v", "trail` ` =v"),
        ("RFC1035-spf", "v=spf1 -all", "v=spf1 -all"),
        ("k", "", "k="),
    ],
)
def test_rfc1464(key: str, value: str, want: str) -> None:
    assert rfc1464(key, value) == want


@pytest.mark.parametrize(
    ("address", "tagged", "qtype", "want"),
    [
        ("10.0.0.1", {}, TYPE_A, "10.0.0.1"),
        ("10.0.0.1", {"lan_ipv6": "::1"}, TYPE_AAAA, "::1"),
        ("10.0.0.1", {"lan_ipv6": "::1"}, TYPE_A, "10.0.0.1"),
        ("::1", {"lan_ipv4": "10.0.0.2"}, TYPE_A, "10.0.0.2"),
        ("x", {"lan_ipv4": "10.0.0.2", "lan_ipv6": "::2"}, TYPE_SRV, "10.0.0.2"),
        ("", {"wan": "1.2.3.4"}, TYPE_A, ""),
    ],
)
def test_pick_address(address: str, tagged: dict[str, str], qtype: int, want: str) -> None:
    assert pick_address(address, tagged, qtype) == want


def test_records_point_only_into_the_question() -> None:
    qname = dns.name.from_text("web.service.consul.")
    encoder = Encoder(qname)
    ip = parse_ip("10.0.0.1")
    assert ip is not None
    answer = encoder.rr(qname, 0, address_rdata(ip))
    assert answer[:2] == b"\xc0\x0c"
    target = dns.name.from_text("foo.node.dc1.consul.")
    srv = encoder.rr(qname, 5, srv_rdata(3, 80, target))
    extra = encoder.rr(target, 0, address_rdata(ip))
    assert extra.startswith(b"\x03foo\x04node\x03dc1\xc0\x18")
    question = b"\x03web\x07service\x06consul\x00\x00\x21\x00\x01"
    # Any order of the records yields the same parsed message.
    for records in ((answer, srv, extra), (srv, answer, extra)):
        header = b"\x00\x01\x84\x00\x00\x01\x00\x02\x00\x00\x00\x01"
        message = dns.message.from_wire(header + question + b"".join(records))
        assert sorted(r.to_text() for r in message.answer) == [
            "web.service.consul. 0 IN A 10.0.0.1",
            "web.service.consul. 5 IN SRV 1 3 80 foo.node.dc1.consul.",
        ]
        assert message.additional[0].to_text() == "foo.node.dc1.consul. 0 IN A 10.0.0.1"


def test_long_txt_is_split_into_strings() -> None:
    rdata = txt_rdata("x" * 600)
    assert [len(s) for s in rdata.strings] == [255, 255, 90]  # type: ignore[attr-defined]
