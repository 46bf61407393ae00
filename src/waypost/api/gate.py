"""ACL enforcement at dispatch: the caller's token resolved, the route's need checked, and
filtered reads trimmed to what the token may read.

Filtering works on the handler's finished JSON answer, so handlers stay unaware of ACLs.
Blocking reads hand out the same response object while their data is unchanged, so the
trimmed answer is memoised per (answer, authorizer): a repeated read costs a dict look-up.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.acl.authorizer import Authorizer
from waypost.acl.resolve import Resolver
from waypost.api.acl import NOT_FOUND
from waypost.api.acl_rules import Filter, Need
from waypost.api.common import HTTPError, encode_json
from waypost.api.http import Request, Response
from waypost.state.model import ACLToken
from waypost.store.remote import NO_SERVERS

if TYPE_CHECKING:
    from waypost.agent.agent import Agent
    from waypost.api.app import ApiApp

__all__ = ["Gate", "request_secret"]

_FILTERED = ("X-Consul-Results-Filtered-By-ACLs", "true")
_MEMO = 1024


def request_secret(req: Request) -> str:
    """X-Consul-Token, else ``Authorization: Bearer``, else ``?token=``, as Consul reads them."""
    headers = req.headers
    secret = headers.get("x-consul-token")
    if secret:
        return secret.strip()
    auth = headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return req.arg("token") or "" if req.raw_query else ""


class UnknownToken(HTTPError):
    """A secret this agent's copy of the ACL tables does not hold: Consul's "ACL not found",
    unless (on a client agent) the token was created a moment ago and is on its way."""


class Gate:
    def __init__(self, agent: Agent) -> None:
        acl = agent.config.acl
        self.agent = agent
        self.resolver = Resolver(acl, agent.node.Node, agent.datacenter, reachable=agent.acl_data_current)
        self.tokens = agent.acl_tokens
        self._memo: OrderedDict[tuple[int, int], tuple[bytes, Authorizer, Response]] = OrderedDict()

    def secret(self, req: Request) -> str:
        """The request's token; none given means the agent's default token, then anonymous."""
        return request_secret(req) or self.tokens.get("default")

    def authorizer(self, req: Request) -> Authorizer:
        """Resolved against this agent's indexes even before it reaches a server, so that the
        agent recovery token works while no server is known, as Consul's does."""
        authz = self.resolver.authorizer(self.agent.require_state().indexes, self.secret(req))
        if authz is None:
            raise UnknownToken(403, NOT_FOUND)
        return authz

    def token(self, req: Request) -> ACLToken | None:
        """The caller's stored token record (``acl/token/self``). Consul's client agents ask a
        server for it, so one cut off from its servers fails, whatever ``acl.down_policy``:
        that policy stands in for permissions, never for the record, which a copy no longer
        kept current could show after the token was changed or deleted."""
        if not self.agent.acl_data_current():
            raise HTTPError(500, NO_SERVERS)
        return self.resolver.token(self.agent.require_state().indexes, self.secret(req))

    def permits(self, req: Request, kind: str, access: str) -> bool:
        try:
            return self.authorizer(req).allowed(kind, "", access)
        except HTTPError:
            return False

    def is_agent_token(self, secret: str) -> bool:
        """Whether a store-port caller holds this server's agent token (constant time)."""
        expected = self.tokens.get("agent")
        return bool(expected) and hmac.compare_digest(secret.encode(), expected.encode())

    def check(self, app: ApiApp, req: Request, need: Need) -> tuple[Authorizer, Filter] | Response | None:
        """None to go ahead, a response to answer instead, or a filter for the answer."""
        if need.check is None:
            return None
        authz = self.authorizer(req)
        if authz.manage:
            return None
        found = need.check(app, req, authz)
        if isinstance(found, Response):
            return found
        if found is None or authz.unrestricted or found.kinds <= authz.reads_all:
            return None
        return authz, found

    def trim(self, resp: Response, authz: Authorizer, flt: Filter) -> Response:
        if resp.status != 200 or resp.content_type != "application/json" or not resp.body:
            return resp
        key = (id(resp.body), id(authz))
        hit = self._memo.get(key)
        if hit is not None and hit[0] is resp.body and hit[1] is authz:
            return hit[2]
        value: Any = msgspec.json.decode(resp.body)
        kept = flt.rows(authz, value)
        removed = flt.marked and (kept != value if not isinstance(value, list) else len(kept) != len(value))
        if flt.empty_is_404 and not kept:
            out = Response(b"", 404, headers=[*resp.headers, _FILTERED])
        else:
            headers = [*resp.headers, _FILTERED] if removed else list(resp.headers)
            out = Response(encode_json(kept), 200, resp.content_type, headers)
        self._memo[key] = (resp.body, authz, out)
        if len(self._memo) > _MEMO:
            self._memo.popitem(last=False)
        return out

    async def trim_later(self, pending: Awaitable[Response], authz: Authorizer, flt: Filter) -> Response:
        return self.trim(await pending, authz, flt)
