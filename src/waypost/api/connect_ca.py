"""Connect's CA endpoints: roots, the agent's leaf certificates and the CA configuration.

Roots are a blocking read of the one CA record every server shares; before the first
server has created it the answer has no roots (the Go API's test harness polls until it
has one). Leaves come from the agent's ``LeafCerts``, which renews them before expiry and
after a rotation: a blocking leaf read returns when a newer leaf than ``?index`` exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from waypost.api.blocking import DEFAULT_WAIT, MAX_WAIT
from waypost.api.common import (
    HTTPError,
    decode_json,
    json_response,
    parse_uint,
    query_duration,
    require_param,
)
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read
from waypost.connect import ca_store
from waypost.connect.ca import CAError
from waypost.connect.ca_config import CAConfigError
from waypost.connect.leaf import LeafCerts
from waypost.gostrconv import GO_BOOLS
from waypost.state import queries, schema
from waypost.state.indexes import Indexes
from waypost.store.base import StoreError
from waypost.store.remote import RemoteStore, ServerRefusedError

if TYPE_CHECKING:
    import asyncio

    from waypost.api.app import ApiApp

__all__ = ["agent_roots", "get_configuration", "leaf", "roots", "set_configuration", "sign"]

NOT_ENABLED = "Connect must be enabled in order to use this endpoint"
_TOPICS = ((schema.CONNECT_CA.name,),)
_NO_ROOTS: dict[str, Any] = {"ActiveRootID": "", "TrustDomain": "", "Roots": []}
_CONFIGURATION = "/connect-ca-configuration"
"""The configuration on the agent-to-server API (``STORE_ROUTES``), for client agents."""


def _leaves(app: ApiApp) -> LeafCerts:
    leaves = app.agent.connect_leaves
    if leaves is None:
        raise HTTPError(400, NOT_ENABLED)
    return leaves


def _roots_read(app: ApiApp, req: Request) -> Response | asyncio.Future[Response]:
    if app.agent.connect_leaves is None:
        raise HTTPError(400, NOT_ENABLED)

    def fetch(idx: Indexes) -> queries.Read:
        record = idx.connect_ca.get("state")
        body = ca_store.roots_view(record) if record is not None else _NO_ROOTS
        return idx.table_index(schema.CONNECT_CA.name), _TOPICS, body

    return indexed_read(app, req, fetch, None)


def agent_roots(app: ApiApp, req: Request) -> Response | asyncio.Future[Response]:
    """``/v1/agent/connect/ca/roots``: what proxies trust."""
    return _roots_read(app, req)


def roots(app: ApiApp, req: Request) -> Response | asyncio.Future[Response]:
    """``/v1/connect/ca/roots``; ``?pem=true`` answers the root certificates and their
    intermediates as one PEM bundle, as Consul 1.13+ does; an empty ``?pem`` is false there."""
    pem = req.arg("pem") or "false"
    if pem not in GO_BOOLS:
        raise HTTPError(400, "The 'pem' query parameter must be a boolean value")
    if GO_BOOLS[pem]:
        if app.agent.connect_leaves is None:
            raise HTTPError(400, NOT_ENABLED)
        record = app.state.indexes.connect_ca.get("state")
        pems = [pem for r in (record.Roots if record else []) for pem in (r.RootCert, *r.IntermediateCerts)]
        text = "".join(p if p.endswith("\n") else p + "\n" for p in pems)
        return Response(text.encode(), 200, "application/pem-certificate-chain")
    return _roots_read(app, req)


async def leaf(app: ApiApp, req: Request) -> Response:
    """``/v1/agent/connect/ca/leaf/:service``: Consul's ``IssuedCert`` with the private key."""
    service = require_param(req, "service name")
    leaves = _leaves(app)
    min_index = parse_uint(req, "index", invalid="Invalid index")
    wait = query_duration(req, "wait", "Invalid wait time")
    timeout = DEFAULT_WAIT if wait is None or wait <= 0 else min(wait, MAX_WAIT)
    try:
        current = await leaves.get(service, min_index, timeout if min_index else 0.0)
    except (CAError, CAConfigError, StoreError) as exc:
        raise HTTPError(500, str(exc)) from None
    body = {**current.cert, "CreateIndex": current.index, "ModifyIndex": current.index}
    return json_response(body, headers=[("X-Consul-Index", str(current.index))])


async def _on_a_server(app: ApiApp, method: str, body: bytes = b"") -> Response | None:
    """A client agent's answer about the CA's configuration: a server's, over the
    agent-to-server API (servers alone hold the CA's keys, which a rotation needs to
    cross-sign); None on a server, which answers itself."""
    store = app.state.store
    if not isinstance(store, RemoteStore):
        return None
    try:
        return Response(await store.server_action(_CONFIGURATION, body, method))
    except ServerRefusedError as exc:
        raise HTTPError(exc.status, exc.message) from None
    except StoreError as exc:
        raise HTTPError(500, str(exc)) from None


async def get_configuration(app: ApiApp, req: Request) -> Response:
    if app.agent.connect_leaves is None:
        raise HTTPError(400, NOT_ENABLED)
    if (answer := await _on_a_server(app, "GET")) is not None:
        return answer
    record = app.state.indexes.connect_ca.get("state")
    if record is None:
        raise HTTPError(500, "CA configuration not initialized yet")
    return json_response(
        {
            "Provider": record.Provider,
            "Config": record.Config,
            "State": None,
            "ForceWithoutCrossSigning": False,
            "CreateIndex": record.CreateIndex,
            "ModifyIndex": record.ModifyIndex,
        }
    )


async def set_configuration(app: ApiApp, req: Request) -> Response:
    """A new provider configuration; one that changes the root rotates it (cross-signed).
    Served on the agent-to-server API too, where client agents send theirs."""
    if app.agent.connect_leaves is None:
        raise HTTPError(400, NOT_ENABLED)
    if (answer := await _on_a_server(app, "PUT", req.body)) is not None:
        return answer
    body = decode_json(req)
    if not isinstance(body, dict):
        raise HTTPError(400, "Request decode failed: expected a JSON object")
    fields = {k.lower(): v for k, v in body.items()}
    provider = fields.get("provider", "")
    config = fields.get("config")
    config = {} if config is None else config
    if not isinstance(provider, str):
        raise HTTPError(400, "Request decode failed: Provider: expected a string")
    if not isinstance(config, dict):
        raise HTTPError(400, "Request decode failed: Config: expected an object")
    try:
        await ca_store.set_config(app.state, provider, config)
    except (CAError, CAConfigError) as exc:
        raise HTTPError(400, str(exc)) from None
    return Response(b"")


def sign(app: ApiApp, req: Request) -> Response:
    """A client agent's CSR signed by this server (the store API port only): client agents
    make their leaves' keys but never sign, as Consul's agents ask a server to."""
    body = decode_json(req)
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("CSR"), str)
        or not isinstance(body.get("Service"), str)
    ):
        raise HTTPError(400, "Request decode failed: expected CSR and Service strings")
    record = app.state.indexes.connect_ca.get("state")
    if record is None:
        raise HTTPError(500, "CA not initialized yet")
    try:
        return json_response(ca_store.issue(record, body["CSR"], body["Service"]))
    except (CAError, CAConfigError) as exc:
        raise HTTPError(400, str(exc)) from None
