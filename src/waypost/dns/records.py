"""Encoding single resource records once, so answers can be re-ordered per query.

Every record is encoded on its own, with names compressed only against the question,
which always sits at offset 12 of a response. Because no record points into another,
the records of a prepared answer can be shuffled and dropped freely and the message
stays valid; the price is a few uncompressed target names in SRV answers.
"""

from __future__ import annotations

import io
import ipaddress
import struct
from collections.abc import Callable, Mapping

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.CNAME import CNAME
from dns.rdtypes.ANY.NS import NS
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from waypost.dns.config import SoaConfig

__all__ = [
    "IP",
    "TYPE_A",
    "TYPE_AAAA",
    "TYPE_ANY",
    "TYPE_AXFR",
    "TYPE_NS",
    "TYPE_PTR",
    "TYPE_SOA",
    "TYPE_SRV",
    "TYPE_TXT",
    "Encoder",
    "address_rdata",
    "cname_rdata",
    "hex_name",
    "ns_rdata",
    "parse_ip",
    "pick_address",
    "ptr_rdata",
    "rfc1464",
    "soa_rdata",
    "srv_rdata",
    "txt_rdata",
]

TYPE_A = 1
TYPE_NS = 2
TYPE_SOA = 6
TYPE_PTR = 12
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_SRV = 33
TYPE_AXFR = 252
TYPE_ANY = 255

_IN = dns.rdataclass.IN
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


class _QuestionOnly(dict[dns.name.Name, int]):
    """A compression table that never learns: records may only point at the question."""

    def __setitem__(self, key: dns.name.Name, value: int) -> None:
        return None


class Encoder:
    """Encodes records for answers to one question name."""

    def __init__(self, question: dns.name.Name) -> None:
        table = _QuestionOnly()
        offset = 12
        for i, label in enumerate(question.labels[:-1]):
            dict.__setitem__(table, dns.name.Name(question.labels[i:]), offset)
            offset += len(label) + 1
        self._compress = table

    def rr(self, owner: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> bytes:
        out = io.BytesIO()
        owner.to_wire(out, self._compress)
        body = rdata.to_wire(compress=self._compress) or b""
        out.write(struct.pack("!HHIH", rdata.rdtype, _IN, ttl & 0xFFFFFFFF, len(body)))
        out.write(body)
        return out.getvalue()


def _rdata(factory: Callable[..., dns.rdata.Rdata], rdtype: int, *args: object) -> dns.rdata.Rdata:
    return factory(_IN, rdtype, *args)


def parse_ip(text: str) -> IP | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def pick_address(address: str, tagged: Mapping[str, str], qtype: int) -> str:
    """Consul's address translation: prefer the ``lan_ipv4``/``lan_ipv6`` tagged address
    matching the question type, else the plain address."""
    v4 = tagged.get("lan_ipv4", "") if qtype != TYPE_AAAA else ""
    v6 = tagged.get("lan_ipv6", "") if qtype != TYPE_A else ""
    return v4 or v6 or address


def address_rdata(ip: IP) -> dns.rdata.Rdata:
    if ip.version == 4:
        return _rdata(A, dns.rdatatype.A, str(ip))
    return _rdata(AAAA, dns.rdatatype.AAAA, str(ip))


def hex_name(ip: IP) -> str:
    """The ``<hex>`` label of ``<hex>.addr.<dc>.<domain>``."""
    return ip.packed.hex()


def srv_rdata(weight: int, port: int, target: dns.name.Name) -> dns.rdata.Rdata:
    return _rdata(SRV, dns.rdatatype.SRV, 1, weight & 0xFFFF, port & 0xFFFF, target)


def rfc1464(key: str, value: str) -> str:
    """``key=value`` with RFC 1464 quoting; ``rfc1035-`` keys carry the bare value."""
    if key.lower().startswith("rfc1035-"):
        return value
    key = key.replace("`", "``").replace("=", "`=")
    stripped = key.lstrip(" ")
    key = "` " * (len(key) - len(stripped)) + stripped
    stripped = key.rstrip(" ")
    key = stripped + "` " * (len(key) - len(stripped))
    return key + "=" + value.replace("`", "``")


def txt_rdata(text: str) -> dns.rdata.Rdata:
    raw = text.encode()
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return _rdata(TXT, dns.rdatatype.TXT, chunks)


def soa_rdata(domain: dns.name.Name, serial: int, soa: SoaConfig) -> dns.rdata.Rdata:
    return _rdata(
        SOA,
        dns.rdatatype.SOA,
        dns.name.Name((b"ns", *domain.labels)),
        dns.name.Name((b"hostmaster", *domain.labels)),
        serial & 0xFFFFFFFF,
        soa.refresh,
        soa.retry,
        soa.expire,
        soa.min_ttl,
    )


def ns_rdata(target: dns.name.Name) -> dns.rdata.Rdata:
    return _rdata(NS, dns.rdatatype.NS, target)


def ptr_rdata(target: dns.name.Name) -> dns.rdata.Rdata:
    return _rdata(PTR, dns.rdatatype.PTR, target)


def cname_rdata(target: dns.name.Name) -> dns.rdata.Rdata:
    return _rdata(CNAME, dns.rdatatype.CNAME, target)
