"""Virtual IP allocation: a stable address from a configured range for every name given one.

A name's record and its address's claim are created together, each only if it does not
exist yet, so two agents allocating at once (two servers on one store, or an old leader
that has not yet noticed it lost) can give neither one address to two names nor two
addresses to one name: the loser's transaction fails and it re-plans from the winner's.
Addresses are never freed, so a name keeps its address across restarts, re-registrations
and changes of the range; DNS caches and clients that hold it never see it move.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.indexes import Indexes
from waypost.state.model import VirtualIP, VirtualIPClaim
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Op, Put

__all__ = ["Network", "VipRangeFullError", "allocate", "parse_range", "plan_allocation"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_BATCH = 50
"""Names per transaction: two keys each stays under etcd's default of 128 ops per txn."""


class VipRangeFullError(ValueError):
    """Every address of the range is taken; ``names`` are left without one."""

    def __init__(self, network: Network, names: list[str]) -> None:
        listed = ", ".join(f'"{n}"' for n in names)
        super().__init__(f"virtual IP range {network} is full: no address for {listed}")
        self.network = network
        self.names = names


def parse_range(text: str) -> Network:
    """A CIDR range; host bits set (``127.240.0.5/12``) are an error rather than guessed at."""
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        raise ValueError(f'invalid virtual IP range "{text}": {exc}') from None


def _usable(network: Network) -> range:
    """Addresses a client can connect to: not an IPv4 network or broadcast address, and
    not the IPv6 subnet-router anycast address (the range's first), unless the range is a
    point-to-point /31 or /127 or a single address (RFC 3021, RFC 6164)."""
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.num_addresses <= 2:
        return range(first, last + 1)
    return range(first + 1, last if network.version == 4 else last + 1)


def plan_allocation(
    idx: Indexes, network: Network, wanted: Mapping[str, str], limit: int = _BATCH
) -> tuple[TxnPlan | None, list[str]]:
    """The transaction giving up to ``limit`` of ``wanted``'s names (name -> filter) their
    address or their new filter, and the names the full range leaves without one."""
    compares: list[Compare] = []
    ops: list[Op] = []
    full: list[str] = []
    taken = idx.virtual_ip_claims
    address = type(network.network_address)
    free = (ip for ip in (str(address(i)) for i in _usable(network)) if ip not in taken)
    done = 0
    for name in sorted(wanted):
        current = idx.virtual_ips.get(name)
        filter_ = wanted[name]
        if current is not None and current.Filter == filter_:
            continue
        if done == limit:
            break
        key = schema.VIRTUAL_IPS.key(name)
        if current is not None:
            record = VirtualIP(Name=name, IP=current.IP, Filter=filter_)
            compares.append(guard(key, current))
            ops.append(Put(key, schema.encode(record)))
            done += 1
            continue
        ip = next(free, None)
        if ip is None:
            full.append(name)
            continue
        claim = schema.VIRTUAL_IP_CLAIMS.key(ip)
        compares += [guard(key, None), guard(claim, None)]
        ops += [
            Put(key, schema.encode(VirtualIP(Name=name, IP=ip, Filter=filter_))),
            Put(claim, schema.encode(VirtualIPClaim(Name=name))),
        ]
        done += 1
    return ((compares, ops) if ops else None), full


async def allocate(state: State, network: Network, wanted: Mapping[str, str]) -> None:
    """Give every name in ``wanted`` an address (and its current filter), in batches.

    Raises ``VipRangeFullError`` naming the names left without an address, after every
    name that fits has been written."""
    full: list[str] = []
    for _ in range(len(wanted) // _BATCH + 2):

        def plan() -> TxnPlan | None:
            planned, left = plan_allocation(state.indexes, network, wanted)
            full[:] = left
            return planned

        if await state.write(plan) is None:
            break
    if full:
        raise VipRangeFullError(network, full)
