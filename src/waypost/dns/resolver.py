"""The DNS core: query bytes in, response bytes (or a forwarding request) out.

No sockets here; :mod:`waypost.dns.server` feeds datagrams and TCP frames to
:meth:`Resolver.handle` and sends back what it returns.

The hot path avoids parsing. Almost every query a service-discovery server sees is a
plain header, one question and perhaps an OPT record, asking for a name it answered a
moment ago. So :meth:`Resolver.handle` checks the header counts with two slice
comparisons, takes the bytes from offset 12 up to the first zero byte plus the type and
class, lowercases them and looks them up among the prepared answers. A hit means those
exact bytes were once validated as a well-formed question (a question's first zero
byte can only be its root label, or the bytes would not have matched a validated
key), so the response is the query's ID and flag bits in front of pre-rendered bytes.
Anything else - a miss, an unusual header, an OPT with an EDNS Client Subnet option -
goes through dnspython, which also builds and caches the prepared answer for next time.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Callable

import dns.edns
import dns.exception
import dns.message

from waypost.dns.backend import DnsBackend, Pending
from waypost.dns.cache import AnswerCache, Prepared, RenderSettings
from waypost.dns.config import DnsConfig
from waypost.dns.remote import RemoteDns
from waypost.dns.router import Router
from waypost.dns.wire import FORMERR, NOTIMP, SERVFAIL, Answer, Forward, header_only, opt_record, parse_opt

__all__ = ["Forward", "Resolver"]

log = logging.getLogger("waypost.dns")

_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00"
# Negative answers carry an SOA whose serial is the current time, as in Consul.
_SOA_LIFETIME = 1.0


class Resolver:
    """Answers DNS queries from a :class:`~waypost.dns.backend.DnsBackend`."""

    def __init__(
        self,
        backend: DnsBackend,
        config: DnsConfig | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        max_cached: int = 8192,
        remote: RemoteDns | None = None,
    ) -> None:
        self.config = config or DnsConfig()
        self.remote = remote
        """Where names in other datacenters are relayed; None: they are NXDOMAIN."""
        self.backend = backend
        self._rng = rng or random.Random()
        self._clock = clock
        self._router = Router(backend, self.config, clock, remote)
        self._cache = AnswerCache(max_cached)
        self._settings = RenderSettings(self.config.udp_answer_limit, self.config.enable_truncate)

    def handle(self, data: bytes, tcp: bool = False, client_ip: str = "") -> bytes | Forward | None:
        """The reply to one query from ``client_ip``; ``None`` means send nothing (responses, runts)."""
        cache = self._cache
        revision = self.backend.revision()
        if revision != cache.revision:
            cache.sync(revision)
        if len(data) > 16 and not data[2] & 0xF8 and data[4:11] == _ONE_QUESTION and data[11] < 2:
            end = data.find(0, 12) + 5
            prepared = cache.entries.get(data[12:end].lower())
            if prepared is not None and (not prepared.expires or self._clock() < prepared.expires):
                if not data[11]:
                    return prepared.respond(data, tcp, -1)
                edns = parse_opt(data, end)
                if edns >= 0:
                    return prepared.respond(data, tcp, edns)
        try:
            return self._general(data, tcp, client_ip)
        except Exception:
            log.exception("DNS query failed")
            return header_only(data, SERVFAIL) if len(data) >= 12 else None

    def _general(self, data: bytes, tcp: bool, client_ip: str) -> bytes | Forward | None:
        """Everything off the hot path, with miekg/dns's acceptance rules."""
        if len(data) < 12 or data[2] & 0x80:
            return None
        if data[2] & 0x78:
            return header_only(data, NOTIMP)
        qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
        if qd != 1 or an > 1 or ns > 1 or ar > 2:
            return header_only(data, FORMERR)
        try:
            msg = dns.message.from_wire(data, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, struct.error, IndexError, UnicodeError):
            return header_only(data, FORMERR)
        if len(msg.question) != 1:
            return header_only(data, FORMERR)
        question = msg.question[0]
        name = question.name.canonicalize().to_wire() or b""
        key = name + struct.pack("!HH", question.rdtype, question.rdclass)
        edns = msg.payload if msg.edns >= 0 else -1
        subnet = next((o for o in msg.options if isinstance(o, dns.edns.ECSOption)), None)
        prepared = self._prepare(key, question.rdtype, subnet.address if subnet is not None else client_ip)
        if not isinstance(prepared, Prepared):
            servfail = Answer(SERVFAIL, key, authoritative=False, recursion_available=True)
            reply = Prepared(servfail, self._rng, self._settings, 0.0).respond(data, tcp, edns)
            if isinstance(prepared, Pending):
                return Forward(data, reply, prepared_query=prepared.query)
            return Forward(data, reply, prepared or "")
        if subnet is not None:
            echoed = dns.edns.ECSOption(subnet.address, subnet.srclen, 0).to_wire() or b""
            option = struct.pack("!HH", dns.edns.OptionType.ECS, len(echoed)) + echoed
            return prepared.respond_with_opt(data, tcp, opt_record(edns, option))
        return prepared.respond(data, tcp, edns)

    def _prepare(self, key: bytes, qtype: int, client_ip: str) -> Prepared | str | Pending | None:
        """The prepared answer, or where to send the query (see ``Router.build``); the
        source address, as Consul takes it, is the EDNS client subnet's, else the client's."""
        prepared = self._cache.entries.get(key)
        now = self._clock()
        if prepared is not None and (not prepared.expires or now < prepared.expires):
            return prepared
        try:
            answer = self._router.build(key, qtype, client_ip)
        except Exception:
            log.exception("DNS lookup failed")
            answer = Answer(
                SERVFAIL, key, authoritative=False, recursion_available=bool(self.config.recursors)
            )
        if answer is None or isinstance(answer, (str, Pending)):
            return answer
        fleeting = answer.has_soa or answer.rcode == SERVFAIL
        prepared = Prepared(answer, self._rng, self._settings, now + _SOA_LIFETIME if fleeting else 0.0)
        if not answer.per_query:
            self._cache.put(key, prepared)
        return prepared
