"""/v1/internal/wan: the exchange servers of different datacenters probe each other with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from waypost.api.common import HTTPError, json_response
from waypost.api.http import Request, Response
from waypost.wan.members import Exchange, valid

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

_DECODE = msgspec.json.Decoder(Exchange)


def exchange(app: ApiApp, req: Request) -> Response:
    """A server of another datacenter tells whom it knows and learns whom we know. Only
    servers are in the WAN pool, as Consul's client agents are in none."""
    if not app.agent.config.server:
        raise HTTPError(500, "Must be a server to join WAN cluster")
    try:
        peer = _DECODE.decode(req.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HTTPError(400, f"Request decode failed: {exc}") from None
    for where, entry in (("Self", peer.Self), *((f"Servers[{i}]", e) for i, e in enumerate(peer.Servers))):
        problem = valid(entry)
        if problem is not None:
            raise HTTPError(400, f"Invalid {where}: {problem}")
    return json_response(app.agent.wan.receive(peer))
