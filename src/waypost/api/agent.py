"""/v1/agent: this agent's own services, checks, membership and lifecycle."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from waypost import __version__
from waypost.agent.checks import UnknownServiceError
from waypost.agent.definitions import canonical_keys, typed
from waypost.agent.monitor import LEVELS
from waypost.api import shapes
from waypost.api.common import (
    HTTPError,
    apply_filter,
    decode_json,
    encode_json,
    json_response,
    query_duration,
    require_param,
)
from waypost.api.http import Request, Response
from waypost.api.metrics import metrics_response
from waypost.api.selectors import AGENT_SERVICE, HEALTH_CHECK, MEMBER
from waypost.gostrconv import GO_BOOLS, go_quote
from waypost.state.model import Member, worst_status
from waypost.store.base import StoreError
from waypost.wan.members import WanServer

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

CONSUL_COMPAT_VERSION = "1.21.0"
"""The Consul release whose API this agent speaks; clients parse Config.Version."""


def _member_out(member: Member, status: int) -> shapes.Member:
    return shapes.Member(
        Name=member.Name,
        Addr=member.Addr,
        Port=member.Port,
        Tags={"build": f"{CONSUL_COMPAT_VERSION}:waypost-{__version__}", "vsn": "2", **member.Tags},
        Status=status,
        ProtocolMin=1,
        ProtocolMax=5,
        ProtocolCur=2,
        DelegateMin=2,
        DelegateMax=5,
        DelegateCur=4,
    )


_ALIVE, _LEAVING, _LEFT, _FAILED = 1, 2, 3, 4
"""Serf's member status codes, as Consul reports them."""


def _status(app: ApiApp, member: Member) -> int:
    """A member marked left that is still running is Serf's ``leaving``: a force-left agent
    until it refutes, or one between announcing its leave and going."""
    live = not app.agent.online or member.Name in app.state.indexes.live
    if member.Left:
        return _LEAVING if live else _LEFT
    return _ALIVE if live else _FAILED


def _known_members(app: ApiApp) -> list[Member]:
    """The catalog's members; a client agent that has joined no server knows only itself,
    as a lone Serf member does."""
    cluster = app.agent.cluster
    if not app.agent.online and cluster is not None:
        return [cluster.member()]
    return sorted(app.state.indexes.members.values(), key=lambda m: m.Name)


def self_(app: ApiApp, req: Request) -> Response:
    agent = app.agent
    cfg = agent.config
    body = {
        "Config": {
            "Datacenter": agent.datacenter,
            "PrimaryDatacenter": cfg.primary_datacenter or agent.datacenter,
            "NodeName": agent.node.Node,
            "NodeID": agent.node.ID,
            "Server": cfg.server,
            "Revision": f"waypost-{__version__}",
            "Version": CONSUL_COMPAT_VERSION,
            "BuildDate": "2026-01-01T00:00:00Z",
        },
        "DebugConfig": {
            "Datacenter": agent.datacenter,
            "NodeName": agent.node.Node,
            "ServerMode": cfg.server,
            "DevMode": cfg.dev,
            "DataDir": cfg.data_dir or "",
            "ClientAddrs": [agent.http_addr],
            "HTTPPort": agent.http_port,
            "DNSPort": agent.dns_port,
            "DNSDomain": cfg.domain,
        },
        "Coord": {"Vec": [0.0] * 8, "Error": 1.5, "Adjustment": 0.0, "Height": 1e-05},
        "Member": _member_out(app.agent.cluster.member(), _ALIVE) if app.agent.cluster else {},
        "Meta": agent.node.Meta,
        "Stats": _stats(app),
        "xDS": {"SupportedProxies": {}, "Port": -1, "Ports": {"Plaintext": -1, "TLS": -1}},
    }  # fmt: skip
    return json_response(body)


_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}
"""``platform.machine()`` names as Go's ``runtime.GOARCH`` spells them."""


def _stats(app: ApiApp) -> dict[str, dict[str, str]]:
    """Consul's ``Stats`` sections, every value a string as Consul sends them; clients and
    dashboards read ``consul.leader`` and ``consul.server`` to find the cluster's shape."""
    agent, cfg = app.agent, app.agent.config
    idx = agent.require_state().indexes  # empty, not an error, on a client agent with no server yet
    checks = agent.local.checks.values()
    if cfg.server:
        cluster = agent.cluster
        consul = {
            "server": "true",
            "leader": _go_bool(cluster is not None and cluster.is_leader),
            "leader_addr": idx.leader.Addr if idx.leader is not None else "",
            "bootstrap": _go_bool(cfg.bootstrap),
            "known_datacenters": str(len(agent.wan.datacenters())),
        }
    else:
        servers = [m for m in idx.members.values() if m.Server and not m.Left and m.Name in idx.live]
        consul = {"server": "false", "known_servers": str(len(servers))}
    consul["acl"] = "enabled" if cfg.acl.enabled else "disabled"
    return {
        "agent": {
            "check_monitors": str(sum(c.Type == "script" for c in checks)),
            "check_ttls": str(sum(c.Type == "ttl" for c in checks)),
            "checks": str(len(agent.local.checks)),
            "services": str(len(agent.local.services)),
        },
        "build": {"prerelease": "", "revision": __version__, "version": CONSUL_COMPAT_VERSION,
                  "version_metadata": ""},
        "consul": consul,
        "runtime": {"arch": _GOARCH.get(platform.machine(), platform.machine()), "os": sys.platform,
                    "version": f"python{platform.python_version()}", "cpu_count": str(os.cpu_count() or 1),
                    "max_procs": str(len(os.sched_getaffinity(0))),
                    "goroutines": str(len(asyncio.all_tasks()))},
    }  # fmt: skip


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def members(app: ApiApp, req: Request) -> Response:
    """The LAN pool, or with ``?wan`` the servers as the WAN pool names them (``node.dc``);
    ``?filter`` applies to the member rows, as for Consul's serf members. A client agent
    is in no WAN pool: Consul answers its ``?wan`` with ``null``."""
    wan = bool(req.arg("wan"))
    if wan and req.arg("segment") not in (None, "", "_all"):
        raise HTTPError(400, "Cannot provide a segment with wan=true")
    listed = _known_members(app)
    if wan and not app.agent.config.server:
        apply_filter(req, [], MEMBER)
        return json_response(None)
    if wan:
        rows = [_wan_member(app, m) for m in listed if m.Server]
        rows += [_remote_member(s) for s in app.agent.wan.table.servers()]
    else:
        rows = [_member_out(m, _status(app, m)) for m in listed]
    return json_response(apply_filter(req, rows, MEMBER))


def _wan_member(app: ApiApp, member: Member) -> shapes.Member:
    dc = member.Tags.get("dc", app.agent.datacenter)
    port = int(member.Tags.get("wan_join_port", app.agent.config.ports.serf_wan))
    out = _member_out(member, _status(app, member))
    return msgspec.structs.replace(out, Name=f"{member.Name}.{dc}", Port=port)


def _remote_member(server: WanServer) -> shapes.Member:
    """A server of another datacenter, as this server's probes see it."""
    url = urlsplit(server.url)
    member = Member(
        Name=server.name, Addr=url.hostname or "", Port=url.port or 0, Server=True,
        Tags={"dc": server.datacenter, "role": "consul"},
    )  # fmt: skip
    return msgspec.structs.replace(_member_out(member, server.status), Name=server.key)


def host(app: ApiApp, req: Request) -> Response:
    load = os.getloadavg()
    body = {
        "Memory": {"total": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
        "CPU": [{"cpu": i, "modelName": platform.processor()} for i in range(os.cpu_count() or 1)],
        "Host": {"hostname": platform.node(), "os": platform.system().lower(),
                 "kernelVersion": platform.release(), "uptime": int(time.time() - app.agent.started_at),
                 "loadavg": list(load)},
        "Disk": {},
        "CollectionTime": time.time_ns(),
        "Errors": None,
    }  # fmt: skip
    return json_response(body)


def services(app: ApiApp, req: Request) -> Response:
    listed = [shapes.agent_service(s) for _, s in sorted(app.agent.local.services.items())]
    listed = apply_filter(req, listed, AGENT_SERVICE)
    return json_response({s.ID: s for s in listed})


async def service(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "service ID")
    local = app.agent.local

    def render() -> tuple[str, bytes] | None:
        svc = local.services.get(sid)
        if svc is None:
            return None
        out = shapes.agent_service(svc)
        digest = hashlib.blake2b(encode_json(out), digest_size=8).hexdigest()
        out.ContentHash = digest
        return digest, encode_json(out)

    rendered = render()
    wanted = req.arg("hash")
    if wanted and rendered is not None and rendered[0] == wanted:
        rendered = await local.wait_for_change(lambda: render(), wanted, _wait_seconds(req))
    if rendered is None:
        raise HTTPError(404, f"unknown service ID: {sid}")
    return Response(rendered[1], headers=[("X-Consul-Contenthash", rendered[0])])


def _wait_seconds(req: Request) -> float:
    wait = query_duration(req, "wait", "Invalid wait time")
    return 300.0 if wait is None or wait <= 0 else min(wait, 600.0)


def checks(app: ApiApp, req: Request) -> Response:
    listed = apply_filter(req, [c for _, c in sorted(app.agent.local.checks.items())], HEALTH_CHECK)
    return json_response({c.CheckID: c for c in listed})


def _unknown(kind: str, ident: str) -> HTTPError:
    return HTTPError(
        404, f'Unknown {kind} ID "{ident}". Ensure that the {kind} ID is passed, not the {kind} name.'
    )


async def _synced(app: ApiApp) -> Response:
    """Answer a local change once the catalog shows it, so a client can read its write back.
    A client agent that knows no server yet keeps the change locally and answers at once."""
    if app.agent.online:
        await app.agent.local.wait_synced()
    return Response()


async def service_register(app: ApiApp, req: Request) -> Response:
    replace = req.flag("replace-existing-checks") and req.arg("replace-existing-checks") not in ("false", "0")
    app.agent.checks.register_service(decode_json(req), replace_existing_checks=replace)
    return await _synced(app)


async def service_deregister(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "service ID")
    if not app.agent.checks.remove_service(sid):
        raise _unknown("service", sid)
    return await _synced(app)


def _enable(req: Request) -> bool:
    raw = req.arg("enable")
    if raw is None:
        raise HTTPError(400, "Missing value for enable")
    if raw not in GO_BOOLS:
        raise HTTPError(400, f"Invalid value for enable: {go_quote(raw)}")
    return GO_BOOLS[raw]


async def service_maintenance(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "service ID")
    if not app.agent.checks.service_maintenance(sid, _enable(req), req.arg("reason") or ""):
        raise _unknown("service", sid)
    return await _synced(app)


async def node_maintenance(app: ApiApp, req: Request) -> Response:
    app.agent.checks.node_maintenance(_enable(req), req.arg("reason") or "")
    return await _synced(app)


async def check_register(app: ApiApp, req: Request) -> Response:
    try:
        app.agent.checks.register_check(decode_json(req))
    except UnknownServiceError as exc:
        raise HTTPError(404, str(exc)) from None
    return await _synced(app)


async def check_deregister(app: ApiApp, req: Request) -> Response:
    cid = require_param(req, "check ID")
    if not app.agent.checks.remove_check(cid):
        raise _unknown("check", cid)
    return await _synced(app)


async def _ttl(app: ApiApp, cid: str, status: str, output: str) -> Response:
    try:
        app.agent.checks.ttl_update(cid, status, output)
    except KeyError:
        raise _unknown("check", cid) from None
    return await _synced(app)


async def check_pass(app: ApiApp, req: Request) -> Response:
    return await _ttl(app, require_param(req, "check ID"), "passing", req.arg("note") or "")


async def check_warn(app: ApiApp, req: Request) -> Response:
    return await _ttl(app, require_param(req, "check ID"), "warning", req.arg("note") or "")


async def check_fail(app: ApiApp, req: Request) -> Response:
    return await _ttl(app, require_param(req, "check ID"), "critical", req.arg("note") or "")


async def check_update(app: ApiApp, req: Request) -> Response:
    body = canonical_keys(decode_json(req), ("Status", "Output"), what="Request")
    status = body.get("Status", "")
    if status not in ("passing", "warning", "critical"):
        raise HTTPError(400, f'Invalid check status: "{status}"')
    output = typed(body.get("Output") or "", str, "Output", "Request decode failed")
    return await _ttl(app, require_param(req, "check ID"), status, output)


async def reload(app: ApiApp, req: Request) -> Response:
    try:
        await app.agent.reload()
    except ValueError as exc:
        raise HTTPError(500, f"Failed to reload configs: {exc}") from None
    return Response()


def leave(app: ApiApp, req: Request) -> Response:
    app.agent.request_leave()
    return Response()


async def join(app: ApiApp, req: Request) -> Response:
    """``address`` is a server's agent-to-server listener, ``host[:port]`` (port 8300 by
    default); with ``?wan`` (servers only, as in Consul) it is the HTTP API of a server of
    another datacenter (port 8500 by default), the port WAN federation speaks on."""
    address = require_param(req, "address")
    wan = bool(req.arg("wan"))
    if wan and not app.agent.config.server:
        raise HTTPError(500, "Must be a server to join WAN cluster")
    try:
        await (app.agent.wan.join(address) if wan else app.agent.join(address))
    except ValueError as exc:
        raise HTTPError(400, f"Invalid join address: {exc}") from None
    except (OSError, StoreError) as exc:
        raise HTTPError(500, f"1 error occurred:\n\t* {exc}\n\n") from None
    return Response()


async def force_leave(app: ApiApp, req: Request) -> Response:
    """``?prune`` forgets the member at once; ``?wan`` names it as the WAN pool does (``node.dc``)."""
    name = require_param(req, "node")
    if req.flag("wan"):
        if not app.agent.config.server:
            raise HTTPError(500, "Must be a server to force-leave a node from the WAN cluster")
        name = name.removesuffix(f".{app.agent.datacenter}")
    cluster = app.agent.cluster
    if cluster is None or not await cluster.force_leave(name, prune=req.flag("prune")):
        raise HTTPError(500, f"agent: No node found with name '{name}'")
    return Response()


def monitor(app: ApiApp, req: Request) -> Response:
    """Stream the agent's log at ``loglevel`` (default info), as text or ``logjson`` lines."""
    name = (req.arg("loglevel") or "info").lower()
    level = LEVELS.get(name)
    if level is None:
        raise HTTPError(400, f"Unknown log level: {name}")
    stream = app.agent.logs.stream(level, req.flag("logjson"))
    return Response(content_type="text/plain; charset=utf-8", stream=stream)


def metrics(app: ApiApp, req: Request) -> Response:
    return metrics_response(app, req.arg("format") == "prometheus")


_CODES = {"passing": 200, "warning": 429, "critical": 503, "maintenance": 503}


def _service_health(app: ApiApp, svc: Any) -> tuple[str, shapes.AgentServiceChecksInfo]:
    local = app.agent.local
    checks = [c for c in local.checks.values() if c.ServiceID in ("", svc.ID)]
    status = worst_status([c.Status for c in checks])
    entry = shapes.AgentServiceChecksInfo(
        status, shapes.agent_service(svc), [shapes.agent_check(c) for c in checks]
    )
    return status, entry


def health_by_name(app: ApiApp, req: Request) -> Response:
    name = require_param(req, "service name")
    found = [
        _service_health(app, s) for _, s in sorted(app.agent.local.services.items()) if s.Service == name
    ]
    if not found:
        body = f"ServiceName {name} Not Found"
        return Response.text(body, 404) if req.arg("format") == "text" else json_response([], 404)
    status = worst_status([s for s, _ in found])
    if req.arg("format") == "text":
        return Response.text(status, _CODES[status])
    return json_response([entry for _, entry in found], _CODES[status])


def health_by_id(app: ApiApp, req: Request) -> Response:
    sid = require_param(req, "service ID")
    svc = app.agent.local.services.get(sid)
    if svc is None:
        body = f"ServiceId {sid} Not Found"
        if req.arg("format") == "text":
            return Response.text(body, 404)
        return json_response(shapes.UnknownServiceHealth(), 404)
    status, entry = _service_health(app, svc)
    if req.arg("format") == "text":
        return Response.text(status, _CODES[status])
    return json_response(entry, _CODES[status])
