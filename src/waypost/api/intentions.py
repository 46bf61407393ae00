"""/v1/connect/intentions and /v1/agent/connect/authorize: L4 intentions, kept by source
and destination as Consul 1.9+ keeps them, and the decision a proxy asks for each inbound
connection. Evaluation is ``waypost.connect.intentions``; this module is decoding and I/O.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from waypost.agent.definitions import DefinitionError, canonical_keys, typed, validation_failed
from waypost.api import shapes
from waypost.api.common import HTTPError, bool_response, decode_json, json_response, require_param
from waypost.api.http import Request, Response
from waypost.api.reads import indexed_read
from waypost.connect import intentions as rules
from waypost.state import intention_ops, queries, schema
from waypost.state.indexes import Indexes
from waypost.state.intention_ops import intention_id
from waypost.state.model import Intention

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["SELECTORS"]

SELECTORS = frozenset({
    "ID", "Description", "SourceNS", "SourceName", "DestinationNS", "DestinationName", "SourceType", "Action",
    "Meta", "Precedence", "SourcePartition", "DestinationPartition", "SourcePeer", "SourceSamenessGroup",
})  # fmt: skip
"""``?filter`` selectors of Consul's Intention."""

_TOPICS = ((schema.INTENTIONS.name,),)
_FIELDS = (
    "ID", "Description", "SourceNS", "SourceName", "DestinationNS", "DestinationName", "SourceType", "Action",
    "Meta", "Permissions",
)  # fmt: skip
_IGNORED = (
    "SourcePartition", "DestinationPartition", "SourcePeer", "SourceSamenessGroup", "Precedence", "CreatedAt",
    "UpdatedAt", "Hash", "CreateIndex", "ModifyIndex", "DefaultAddr", "DefaultPort", "LegacyID", "JWT",
)  # fmt: skip
_NOT_FOUND = "Intention not found"


def _index(idx: Indexes) -> int:
    return idx.table_index(schema.INTENTIONS.name)


def _decode(req: Request, **fixed: str) -> Intention:
    """The body as an intention, ``fixed`` fields (from the URL) overriding it; refused
    with Consul's validation messages."""
    try:
        fields = canonical_keys(decode_json(req), _FIELDS, what="Request decode failed", ignored=_IGNORED)
        if fields.get("Permissions"):
            raise DefinitionError("Permissions: L7 intentions are not supported, only Action allow or deny")
        text = {k: typed(fields.get(k) or "", str, k, "Invalid Intention") for k in _FIELDS[:8]}
        raw_meta = fields.get("Meta")
        meta = typed({} if raw_meta is None else raw_meta, dict[str, str], "Meta", "Invalid Intention")
    except DefinitionError as exc:
        raise HTTPError(400, str(exc)) from None
    text |= fixed
    ixn = Intention(
        ID=text["ID"],
        Description=text["Description"],
        SourceNS=text["SourceNS"] or rules.DEFAULT_NS,
        SourceName=text["SourceName"],
        DestinationNS=text["DestinationNS"] or rules.DEFAULT_NS,
        DestinationName=text["DestinationName"],
        SourceType=text["SourceType"] or "consul",
        Action=text["Action"],
        Meta=meta,
    )
    problems = rules.problems(ixn)
    if "/" in ixn.SourceName or "/" in ixn.DestinationName:
        problems.append("SourceName and DestinationName cannot contain '/'")
    if problems:
        raise HTTPError(400, validation_failed(problems).replace("Validation failed", "Invalid Intention", 1))
    ixn.Precedence = rules.precedence(ixn)
    return ixn


def _name(req: Request, param: str) -> str:
    """A ``source``/``destination``/``name`` query parameter as a name in the default namespace."""
    raw = req.arg(param)
    if not raw:
        raise HTTPError(400, f"required query parameter '{param}' not set")
    try:
        ns, name = rules.parse_name(raw)
    except ValueError as exc:
        raise HTTPError(400, f'{param} "{raw}" is invalid: {exc}') from None
    if ns != rules.DEFAULT_NS:
        raise HTTPError(400, f'{param} "{raw}" is invalid: namespace "{ns}" does not exist')
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# -- reads ----------------------------------------------------------------------------------


def list_(app: ApiApp, req: Request) -> Response | Any:
    """Every intention, in evaluation order (as Consul lists them)."""
    return indexed_read(
        app,
        req,
        lambda idx: (
            _index(idx),
            _TOPICS,
            [shapes.intention(x) for x in rules.ordered(idx.intentions.values())],
        ),
        SELECTORS,
    )


def exact(app: ApiApp, req: Request) -> Response | Any:
    ident = intention_id(_name(req, "source"), _name(req, "destination"))
    if ident not in app.state.indexes.intentions:
        raise HTTPError(404, _NOT_FOUND)

    def fetch(idx: Indexes) -> queries.Read:
        found = idx.intentions.get(ident)
        return _index(idx), _TOPICS, shapes.intention(found) if found is not None else None

    return indexed_read(app, req, fetch, None)


def match(app: ApiApp, req: Request) -> Response | Any:
    by = req.arg("by")
    if not by:
        raise HTTPError(400, "required query parameter 'by' not set")
    if by not in ("source", "destination"):
        raise HTTPError(400, "'by' parameter must be one of 'source' or 'destination'")
    raw = req.args("name")
    if not raw:
        raise HTTPError(400, "required query parameter 'name' not set")
    names = []
    for text in raw:
        try:
            names.append((text, *rules.parse_name(text)))
        except ValueError as exc:
            raise HTTPError(400, f'name "{text}" is invalid: {exc}') from None

    def fetch(idx: Indexes) -> queries.Read:
        found = {
            text: [shapes.intention(x) for x in rules.matching(idx.intentions.values(), by, ns, name)]
            for text, ns, name in names
        }
        return _index(idx), _TOPICS, found

    return indexed_read(app, req, fetch, None)


def default_allow(app: ApiApp) -> bool:
    """With no intention matching, Consul falls back to the ACL default policy; with ACLs
    off, to allow."""
    acl = app.agent.config.acl
    return not acl.enabled or acl.default_policy == "allow"


def check(app: ApiApp, req: Request) -> Response:
    source, destination = _name(req, "source"), _name(req, "destination")
    source_type = req.arg("source-type") or "consul"
    if source_type != "consul":
        raise HTTPError(400, f'unsupported source-type "{source_type}"')
    decision = rules.decide(
        app.state.indexes.intentions.values(), source, destination, default_allow=default_allow(app)
    )
    return json_response({"Allowed": decision.allowed})


# -- writes ---------------------------------------------------------------------------------


async def create(app: ApiApp, req: Request) -> Response:
    """The legacy create: refused while the pair has an intention, the ID always Consul's."""
    ixn = _decode(req)
    ixn.ID = str(uuid.uuid4())
    ixn.CreatedAt = ixn.UpdatedAt = _now()

    def build(idx: Indexes) -> tuple[Intention, Intention | None]:
        current = idx.intentions.get(intention_id(ixn.SourceName, ixn.DestinationName))
        if current is not None:
            raise HTTPError(400, f"duplicate intention found: {rules.describe(current)}")
        return ixn, None

    await intention_ops.write(app.state, build)
    return json_response({"ID": ixn.ID})


async def exact_write(app: ApiApp, req: Request) -> Response:
    """PUT upserts the pair's intention, DELETE removes it; both answer ``true``."""
    if req.method == "DELETE":
        await intention_ops.remove(app.state, _name(req, "source"), _name(req, "destination"))
        return bool_response(True)
    return await _upsert_exact(app, req)


async def _upsert_exact(app: ApiApp, req: Request) -> Response:
    source, destination = _name(req, "source"), _name(req, "destination")
    ixn = _decode(req, SourceName=source, DestinationName=destination)

    def build(idx: Indexes) -> tuple[Intention, Intention | None]:
        current = idx.intentions.get(intention_id(source, destination))
        if current is not None:
            ixn.ID, ixn.CreatedAt = current.ID, current.CreatedAt
            ixn.UpdatedAt = _now() if current.ID else ""
            ixn.Meta = ixn.Meta or current.Meta
        return ixn, None

    await intention_ops.write(app.state, build)
    return bool_response(True)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _known_id(app: ApiApp, req: Request, verb: str) -> Intention:
    ident = require_param(req, "intention ID")
    found = rules.with_id(app.state.indexes.intentions.values(), ident)
    if found is None:
        if verb == "read" or not _UUID.match(ident):
            raise HTTPError(404, _NOT_FOUND)
        raise HTTPError(404, f"Cannot {verb} non-existent intention: '{ident}'")
    return found


def by_id(app: ApiApp, req: Request) -> Response:
    return json_response(shapes.intention(_known_id(app, req, "read")))


async def by_id_write(app: ApiApp, req: Request) -> Response:
    """The legacy update (PUT) and delete by ID."""
    if req.method == "DELETE":
        found = _known_id(app, req, "delete")
        await intention_ops.remove(app.state, found.SourceName, found.DestinationName)
        return Response()
    old = _known_id(app, req, "modify")
    ixn = _decode(req, ID=old.ID)

    def build(idx: Indexes) -> tuple[Intention, Intention | None]:
        current = rules.with_id(idx.intentions.values(), old.ID)
        if current is None:
            raise HTTPError(404, f"Cannot modify non-existent intention: '{old.ID}'")
        taken = idx.intentions.get(intention_id(ixn.SourceName, ixn.DestinationName))
        if taken is not None and taken.ID != old.ID:
            raise HTTPError(400, f"duplicate intention found: {rules.describe(taken)}")
        ixn.CreatedAt, ixn.UpdatedAt = current.CreatedAt, _now()
        return ixn, current

    await intention_ops.write(app.state, build)
    return Response()


# -- the data plane's question --------------------------------------------------------------

_SPIFFE_SERVICE = re.compile(r"^(?:/ap/[^/]+)?/ns/([^/]+)/dc/([^/]+)/svc/([^/]+)$")
_SPIFFE_OTHER = re.compile(
    r"^/((ap/[^/]+/)?agent/client/dc/[^/]+/id/[^/]+|agent/server/dc/[^/]+|(ap/[^/]+/)?gateway/mesh/dc/[^/]+)$"
)
"""Connect identifiers of agents, servers and mesh gateways: valid, but not a service."""


def client_service(uri: str) -> str:
    """The service a client certificate's SPIFFE URI names, with Consul's refusals."""
    scheme, sep, rest = uri.partition("://")
    host, slash, path = rest.partition("/")
    if scheme.lower() != "spiffe" or not sep or not host or not slash:
        raise HTTPError(400, "ClientCertURI not a valid Connect identifier")
    found = _SPIFFE_SERVICE.match("/" + path)
    if found is None:
        if _SPIFFE_OTHER.match("/" + path):
            raise HTTPError(400, "ClientCertURI not a valid Service identifier")
        raise HTTPError(400, "ClientCertURI not a valid Connect identifier")
    return found.group(3)


def authorize(app: ApiApp, req: Request) -> Response:
    """Whether the certificate's service may connect to ``Target`` now: the proxy asks for
    every inbound connection, so a changed intention holds from the next one on."""
    try:
        fields = canonical_keys(
            decode_json(req), ("Target", "ClientCertURI", "ClientCertSerial"), what="Request decode failed"
        )
        target = typed(fields.get("Target") or "", str, "Target", "Request decode failed")
        uri = typed(fields.get("ClientCertURI") or "", str, "ClientCertURI", "Request decode failed")
    except DefinitionError as exc:
        raise HTTPError(400, str(exc)) from None
    if not target:
        raise HTTPError(400, "Target service must be specified")
    source = client_service(uri)
    decision = rules.decide(
        app.state.indexes.intentions.values(), source, target, default_allow=default_allow(app)
    )
    return json_response({"Authorized": decision.allowed, "Reason": decision.reason})
