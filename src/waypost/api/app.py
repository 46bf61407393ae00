"""Dispatch: path to handler through the route table, and errors to Consul's responses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import msgspec
import orjson

from waypost.acl.authorizer import Authorizer
from waypost.agent.lean import as_forwarded, forwarded, uncached
from waypost.api.acl import ACL_DISABLED
from waypost.api.acl_rules import NEEDS, Filter, Need
from waypost.api.blocking import ReadCache
from waypost.api.caching import CACHED_ROUTES, AgentCache, Answer, Caching
from waypost.api.common import HTTPError, error_response
from waypost.api.gate import Gate, UnknownToken, request_secret
from waypost.api.http import Request, Response, settled
from waypost.api.internal import EventRing
from waypost.api.routes import DC_AGNOSTIC, ROUTES, STORE_ROUTES, UI_PREFIX, Handler
from waypost.state.state import State
from waypost.store.remote import NO_SERVERS
from waypost.ui.serve import content_prefix

if TYPE_CHECKING:
    from waypost.agent.agent import Agent

__all__ = ["TOKEN_CATCH_UP", "ApiApp"]

TOKEN_CATCH_UP = 5.0
"""Seconds a client agent waits for a token a server holds to reach its own copy."""

log = logging.getLogger("waypost.api")

_DC_ROUTED = frozenset(
    handler for _, path, handler in ROUTES if path.startswith("/v1/") and not path.startswith(DC_AGNOSTIC)
)
"""Handlers Consul routes by ``?dc``: a datacenter other than this one is forwarded to."""

_ACL_ONLY = frozenset(
    handler for _, path, handler in ROUTES if path.startswith(("/v1/acl/", "/v1/agent/token/"))
)
"""Handlers that answer 401 "ACL support disabled" while ACLs are off."""

_CACHING: dict[Handler, Caching] = {
    handler: CACHED_ROUTES[path] for _, path, handler in ROUTES if path in CACHED_ROUTES
}
"""Handlers with Consul's agent caching (``waypost.api.caching``)."""


class ApiApp:
    """One listener's API: the public ``ROUTES``, or the ``STORE_ROUTES`` a server serves
    to client agents on its server port."""

    event_ring: EventRing
    """The revisions client agents' watches read; kept only by the store listener's app."""

    def __init__(self, agent: Agent, routes: list[tuple[tuple[str, ...], str, Handler]] = ROUTES) -> None:
        self.agent = agent
        acl = agent.config.acl
        self.cache = ReadCache(acl_policy=acl.default_policy if acl.enabled else "allow")
        self._use_cache = agent.config.http_config.use_cache
        self.gate = Gate(agent) if agent.config.acl.enabled else None
        """ACL enforcement; None while ACLs are off, which keeps dispatch as it was."""
        self._store_api = routes is STORE_ROUTES
        self._lean = not agent.config.server and not self._store_api
        """A client agent's public API, which relays what it does not hold (``agent.lean``)."""
        self.agent_cache = AgentCache(self._contact_age, source=agent.refreshed_reads if self._lean else None)
        if routes is STORE_ROUTES:
            self.event_ring = EventRing(agent.require_state())
        self._needs: dict[tuple[Handler, str], Need] = {}
        self._exact: dict[str, dict[str, Handler]] = {}
        self._prefixed: dict[str, list[tuple[str, dict[str, Handler]]]] = {}
        """Routes ending in ``/:param`` by API area (``/v1/health/``), longest prefix first, so
        a request scans only its own area's few prefixes."""
        prefixed: dict[str, dict[str, Handler]] = {}
        ui_prefix = content_prefix(agent.config.ui_config.content_path)
        for methods, path, handler in agent.wan.routes(routes):
            mounted = ui_prefix + path[len(UI_PREFIX) :] if path.startswith(UI_PREFIX) else path
            if "/:" in mounted:
                table = prefixed.setdefault(mounted[: mounted.index("/:") + 1], {})
            else:
                table = self._exact.setdefault(mounted, {})
            for method in methods:
                table[method] = handler
                need = NEEDS.get(("PUT" if method == "POST" else method, path))
                if need is not None:
                    self._needs[handler, method] = need
        for prefix, handlers in sorted(prefixed.items(), key=lambda kv: -len(kv[0])):
            self._prefixed.setdefault(_area(prefix), []).append((prefix, handlers))

    @property
    def state(self) -> State:
        """The catalog; a client agent that knows no server yet has none to offer."""
        if not self.agent.online:
            raise HTTPError(500, NO_SERVERS)
        return self.agent.require_state()

    def _contact_age(self) -> float:
        """Seconds since this agent's replica last heard from the store: the ``Age`` of a
        background-refresh answer (0 while the store's watch is live)."""
        state = self.agent.state
        return state.last_contact_ms() / 1000 if state is not None else 0.0

    def _route(self, req: Request) -> dict[str, Handler] | None:
        table = self._exact.get(req.path)
        if table is not None:
            return table
        for prefix, handlers in self._prefixed.get(_area(req.path), ()):
            if req.path.startswith(prefix):
                req.param = req.path[len(prefix) :]
                return handlers
            if req.path == prefix[:-1]:
                return handlers
        return None

    def handle(self, req: Request, *, retried: bool = False) -> Response | Awaitable[Response]:
        """``retried``: a second try, after waiting for a token this agent did not know."""
        handlers = self._route(req)
        if handlers is None:
            return Response.text("404 page not found", 404)
        handler = handlers.get(req.method)
        if handler is None:
            if req.method == "OPTIONS":
                return Response(headers=[("Allow", ", ".join(sorted(handlers)))])
            return Response.text(f"method {req.method} not allowed", 405)
        pretty = "pretty" in req.query
        if not self._use_cache and "cached" in req.query:
            del req.query["cached"]  # http_config.use_cache off: Consul reads no ?cached at all
        caching = _CACHING.get(handler)
        if self._lean and forwarded(req.path):
            relayed = as_forwarded(req, self.agent.node.Node)
            views = self.agent.views
            if views.takes(relayed, self.agent.datacenter):
                return self._answer(views.read(relayed, lambda: self.agent.wan.ask_server(relayed)), pretty)
            if caching is None:
                return self.agent.wan.ask_server(relayed)
            return self._answer(
                self.agent_cache.through(
                    caching, relayed, lambda: self.agent.wan.ask_server(uncached(relayed)), relayed=True
                ),
                pretty,
            )
        dc = req.arg("dc") if req.raw_query else None
        if dc and handler in _DC_ROUTED and dc != self.agent.datacenter:
            return self.agent.wan.forward(dc, req)
        gate = self.gate
        trim: tuple[Authorizer, Filter] | None = None
        if gate is not None:
            try:
                verdict = self._authorize(gate, req, handler)
            except UnknownToken as exc:
                return self._once_token_known(req) if self._lean and not retried else error_response(exc)
            except Exception as exc:
                return error_response(exc)
            if isinstance(verdict, Response):
                return verdict
            trim = verdict
        elif handler in _ACL_ONLY:
            return Response.text(ACL_DISABLED, 401)

        def run() -> Answer:
            answer = handler(self, req)
            if trim is None or gate is None:
                return answer
            return (
                gate.trim(answer, *trim) if isinstance(answer, Response) else gate.trim_later(answer, *trim)
            )

        if caching is not None:
            result = self.agent_cache.through(caching, req, run)
        else:
            try:
                result = run()
            except Exception as exc:
                return error_response(exc)
        return self._answer(result, pretty)

    async def _once_token_known(self, req: Request) -> Response:
        """A client agent's copy of the ACL tables trails the servers': a token created a
        moment ago through a server may not be in it yet. Consul's client agents resolve a
        token they do not know by asking a server; so does this one, and when the token
        exists it waits (at most ``TOKEN_CATCH_UP`` seconds) for its copy to hold the
        token's write, then answers the request again."""
        probe = Request("GET", "/v1/acl/token/self", "", {"x-consul-token": request_secret(req)}, b"")
        found = await settled(self.agent.wan.ask_server(probe))
        if found.status == 200:
            with contextlib.suppress(TimeoutError, ValueError, KeyError, TypeError):
                written = int(orjson.loads(found.body)["ModifyIndex"])
                async with asyncio.timeout(TOKEN_CATCH_UP):
                    await self.agent.require_state().wait_applied(written)
        return await settled(self.handle(req, retried=True))

    def _answer(self, result: Answer, pretty: bool) -> Answer:
        """A handler's answer as sent: indented for ``?pretty``, now or when it comes."""
        if isinstance(result, Response):
            return _indent(result) if pretty else result
        if isinstance(result, asyncio.Future):
            return _chain(result) if pretty else result
        return self._finish(result, pretty)

    def admit(self, head: Request) -> Response | None:
        """The ACL check of :meth:`handle` on a spooled request's head, before its body is
        taken: a caller that would be refused never gets to write a body to disk."""
        gate = self.gate
        handlers = self._route(head)
        handler = handlers.get(head.method) if handlers is not None else None
        if gate is None or handler is None or (self._lean and forwarded(head.path)):
            return None
        try:
            verdict = self._authorize(gate, head, handler)
        except Exception as exc:
            return error_response(exc)
        return verdict if isinstance(verdict, Response) else None

    def _authorize(
        self, gate: Gate, req: Request, handler: Handler
    ) -> Response | tuple[Authorizer, Filter] | None:
        """The one place a request's token is checked: the route's entry in ``NEEDS``, or on
        the store port a verified agent certificate, this server's agent token or a
        management token (client agents then need no token of the servers')."""
        if self._store_api:
            tls = self.agent.tls
            if (
                (req.peer_names and tls is not None and tls.verified_agent(req.peer_names))
                or gate.is_agent_token(request_secret(req))
                or gate.authorizer(req).manage
            ):
                return None
            raise HTTPError(403, "Permission denied")
        need = self._needs.get((handler, req.method))
        if need is None:
            raise HTTPError(403, "Permission denied")  # a route without a rule is closed
        return gate.check(self, req, need)

    async def _finish(self, pending: Awaitable[Response], pretty: bool) -> Response:
        try:
            resp = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return error_response(exc)
        return _indent(resp) if pretty else resp


def _area(path: str) -> str:
    """``/v1/<area>/`` of a path; ``/v1/kv`` is in ``/v1/kv/``, whose bare prefix it is.
    Outside ``/v1/`` (the UI) the area is the first segment."""
    end = path.find("/", 4 if path.startswith("/v1/") else 1)
    return path + "/" if end < 0 else path[: end + 1]


def _chain(pending: asyncio.Future[Response]) -> asyncio.Future[Response]:
    """``?pretty`` on a parked blocking query: indent its answer when it comes; cancelling
    (the client left) cancels the query."""
    answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    def done(fut: asyncio.Future[Response]) -> None:
        if answer.done():
            return
        if fut.cancelled():
            answer.cancel()
        else:
            answer.set_result(_indent(fut.result()))

    def left(ans: asyncio.Future[Response]) -> None:
        if ans.cancelled():
            pending.cancel()

    pending.add_done_callback(done)
    answer.add_done_callback(left)
    return answer


def _indent(resp: Response) -> Response:
    """``?pretty``: the same JSON, indented as Consul indents it."""
    if resp.content_type != "application/json" or not resp.body:
        return resp
    body = msgspec.json.format(resp.body, indent=4)
    return Response(body, resp.status, resp.content_type, resp.headers)
