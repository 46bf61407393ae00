"""/v1/internal/wan: the exchange servers of different datacenters probe each other with;
/v1/internal/acl/replicate: what secondary datacenters copy from the primary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from waypost.api.blocking import QueryResult, blocking_read
from waypost.api.common import HTTPError, encode_json, json_response
from waypost.api.http import Request, Response
from waypost.state import schema
from waypost.wan.acl_replication import replicated
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


def view(app: ApiApp, req: Request) -> Response:
    """What this server knows of the WAN pool, for a client agent of its datacenter."""
    if not app.agent.config.server:
        raise HTTPError(500, "Must be a server to join WAN cluster")
    return json_response(app.agent.wan.payload())


_ACL_TABLES = (schema.ACL_POLICIES.name, schema.ACL_ROLES.name, schema.ACL_TOKENS.name)
_ACL_TOPICS = tuple((table,) for table in _ACL_TABLES)


def acl_replicate(app: ApiApp, req: Request) -> Response | Any:
    """Every policy and role and the global tokens, as stored; a blocking read on the ACL
    tables, so a secondary hears of a change at once."""

    def query() -> QueryResult:
        idx = app.state.indexes
        index = max(idx.table_index(table) for table in _ACL_TABLES)
        return QueryResult(index, _ACL_TOPICS, encode_json(replicated(idx)))

    return blocking_read(app.state, req, query)
