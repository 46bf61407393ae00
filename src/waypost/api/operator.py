"""/v1/operator: the Raft peer set and autopilot's view, answered from the members and leader tables.

waypost has no Raft of its own: the server agents that joined (``Server`` members) are the
peers, the holder of the leader key is the leader, and every server reads the one shared
store, so each is a voter and none trails the leader. With an etcd store the consensus
really happens in etcd, so the configuration also lists etcd's members and their health
under ``Etcd``, a field Consul's clients ignore.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from waypost.api.agent import CONSUL_COMPAT_VERSION
from waypost.api.common import json_response, parse_consistency
from waypost.api.http import Request, Response
from waypost.state.indexes import Indexes

if TYPE_CHECKING:
    from waypost.api.app import ApiApp

__all__ = ["autopilot_configuration", "autopilot_health", "raft_configuration", "raft_servers"]

RAFT_PROTOCOL = "3"
TERM = 1
"""Raft's term, which waypost does not have: one leader key, one term."""

AUTOPILOT_DEFAULTS: dict[str, Any] = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
}
"""Consul's autopilot defaults (agent/config/default.go); waypost has nothing to tune."""


def raft_servers(idx: Indexes) -> list[dict[str, Any]]:
    """Consul's RaftServer entries: every server agent that has not left, by name."""
    leader = idx.leader.Name if idx.leader is not None else None
    return [
        {
            "ID": m.Tags.get("id", ""),
            "Node": m.Name,
            "Address": f"{m.Addr}:{m.Tags.get('port', '8300')}",
            "Leader": m.Name == leader,
            "ProtocolVersion": RAFT_PROTOCOL,
            "Voter": True,
            "LastIndex": idx.revision,
        }
        for _, m in sorted(idx.members.items())
        if m.Server and not m.Left
    ]


async def raft_configuration(app: ApiApp, req: Request) -> Response:
    parse_consistency(req)
    idx = app.state.indexes
    body: dict[str, Any] = {"Servers": raft_servers(idx), "Index": idx.table_index("members")}
    endpoints = _etcd_endpoints(app)
    if endpoints:
        from waypost.store.etcd_status import cluster_status

        body["Etcd"] = [m.to_json() for m in await cluster_status(endpoints)]
    return json_response(body)


def autopilot_health(app: ApiApp, req: Request) -> Response:
    parse_consistency(req)
    idx = app.state.indexes
    stable = datetime.datetime.fromtimestamp(app.agent.started_at, datetime.UTC)
    servers = []
    for s in raft_servers(idx):
        alive = s["Node"] in idx.live
        servers.append(
            {
                "ID": s["ID"],
                "Name": s["Node"],
                "Address": s["Address"],
                "SerfStatus": "alive" if alive else "failed",
                "Version": CONSUL_COMPAT_VERSION,
                "Leader": s["Leader"],
                "LastContact": "0s",
                "LastTerm": TERM,
                "LastIndex": idx.revision,
                "Healthy": alive,
                "Voter": True,
                "StableSince": stable.isoformat().replace("+00:00", "Z"),
            }
        )
    healthy = sum(1 for s in servers if s["Healthy"])
    quorum = len(servers) // 2 + 1
    ok = bool(servers) and healthy == len(servers)
    body = {"Healthy": ok, "FailureTolerance": max(0, healthy - quorum), "Servers": servers}
    # Consul answers an unhealthy cluster with 429 and the same body, so that a plain HTTP
    # health check on this endpoint fails while scripts can still read the details.
    return json_response(body, 200 if ok else 429)


def autopilot_configuration(app: ApiApp, req: Request) -> Response:
    parse_consistency(req)
    return json_response({**AUTOPILOT_DEFAULTS, "CreateIndex": 1, "ModifyIndex": 1})


def _etcd_endpoints(app: ApiApp) -> list[str]:
    scheme, _, rest = app.agent.config.store.partition("://")
    return [e.strip() for e in rest.split(",") if e.strip()] if scheme == "etcd" else []
