"""Every HTTP route in two tables: ``ROUTES``, the public API as Consul's http_register.go
declares it, and ``STORE_ROUTES``, the agent-to-server API that server agents serve to
client agents on their server port only (raw store writes must never reach the public port).

A path ending in ``/:param`` matches any remainder (Consul's KV keys and service names
may contain slashes); the remainder becomes ``Request.param``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from waypost.api import (
    acl,
    agent,
    catalog,
    connect_ca,
    connect_catalog,
    event,
    health,
    intentions,
    internal,
    internal_ui,
    kv,
    operator,
    query,
    session,
    snapshot,
    status,
    stream,
    txn,
    ui,
    virtual_ips,
    wan,
)

if TYPE_CHECKING:
    from waypost.api.app import ApiApp
    from waypost.api.http import Request, Response

Handler = Callable[["ApiApp", "Request"], "Response | Awaitable[Response] | Any"]

GET, HEAD, PUT, POST, DELETE = "GET", "HEAD", "PUT", "POST", "DELETE"
READ = (GET,)
WRITE = (PUT, POST)

DC_AGNOSTIC = (
    "/v1/agent/", "/v1/internal/query/", "/v1/internal/wan/", "/v1/internal/acl/", "/v1/event/list",
    "/v1/catalog/datacenters", "/v1/coordinate/datacenters",
    "/v1/stream/",
)  # fmt: skip
"""Paths Consul answers from the agent itself or across datacenters, so ``?dc`` does not
route them (a stream is not forwarded: it refuses another datacenter's ``?dc``); any other
path naming a datacenter but this one is forwarded there (``waypost.wan``)."""

SPOOLED_BODIES = frozenset({(PUT, "/v1/snapshot")})
"""Requests whose body the HTTP server writes to a temporary file, with no size cap: Consul
restores a snapshot of any size (``http_config.max_body_bytes`` caps every other body)."""

UI_PREFIX = "/ui/"
"""Where the UI's route is declared; the agent mounts it at ``ui_config.content_path``."""

ROUTES: list[tuple[tuple[str, ...], str, Handler]] = [
    (READ, "/", status.index),
    ((HEAD,), "/", status.index),  # Consul serves "/" through Go's net/http, HEAD included
    (READ, "/ui/:path", ui.files),
    (READ, "/v1/agent/self", agent.self_),
    (READ, "/v1/agent/members", agent.members),
    (READ, "/v1/agent/host", agent.host),
    (READ, "/v1/agent/services", agent.services),
    (READ, "/v1/agent/service/:id", agent.service),
    (READ, "/v1/agent/checks", agent.checks),
    (READ, "/v1/agent/metrics", agent.metrics),
    (READ, "/v1/agent/monitor", agent.monitor),
    (READ, "/v1/agent/health/service/name/:name", agent.health_by_name),
    (READ, "/v1/agent/health/service/id/:id", agent.health_by_id),
    (WRITE, "/v1/agent/service/register", agent.service_register),
    (WRITE, "/v1/agent/service/deregister/:id", agent.service_deregister),
    (WRITE, "/v1/agent/service/maintenance/:id", agent.service_maintenance),
    (WRITE, "/v1/agent/maintenance", agent.node_maintenance),
    (WRITE, "/v1/agent/check/register", agent.check_register),
    (WRITE, "/v1/agent/check/deregister/:id", agent.check_deregister),
    (WRITE, "/v1/agent/check/pass/:id", agent.check_pass),
    (WRITE, "/v1/agent/check/warn/:id", agent.check_warn),
    (WRITE, "/v1/agent/check/fail/:id", agent.check_fail),
    (WRITE, "/v1/agent/check/update/:id", agent.check_update),
    (WRITE, "/v1/agent/reload", agent.reload),
    (WRITE, "/v1/agent/leave", agent.leave),
    (WRITE, "/v1/agent/join/:address", agent.join),
    (WRITE, "/v1/agent/force-leave/:node", agent.force_leave),
    ((PUT,), "/v1/agent/token/:type", acl.agent_token),
    (READ, "/v1/agent/connect/ca/roots", connect_ca.agent_roots),
    (READ, "/v1/agent/connect/ca/leaf/:service", connect_ca.leaf),
    (READ, "/v1/connect/ca/roots", connect_ca.roots),
    (READ, "/v1/connect/ca/configuration", connect_ca.get_configuration),
    ((PUT,), "/v1/connect/ca/configuration", connect_ca.set_configuration),
    (WRITE, "/v1/catalog/register", catalog.register),
    (WRITE, "/v1/catalog/deregister", catalog.deregister),
    (WRITE, "/v1/agent/connect/authorize", intentions.authorize),
    (READ, "/v1/connect/intentions", intentions.list_),
    (WRITE, "/v1/connect/intentions", intentions.create),
    (READ, "/v1/connect/intentions/exact", intentions.exact),
    ((PUT, POST, DELETE), "/v1/connect/intentions/exact", intentions.exact_write),
    (READ, "/v1/connect/intentions/match", intentions.match),
    (READ, "/v1/connect/intentions/check", intentions.check),
    (READ, "/v1/connect/intentions/:id", intentions.by_id),
    ((PUT, POST, DELETE), "/v1/connect/intentions/:id", intentions.by_id_write),
    (READ, "/v1/catalog/connect/:service", connect_catalog.catalog_connect),
    (READ, "/v1/health/connect/:service", connect_catalog.health_connect),
    (READ, "/v1/health/ingress/:service", connect_catalog.health_ingress),
    (READ, "/v1/catalog/gateway-services/:gateway", connect_catalog.gateway_services),
    (READ, "/v1/discovery-chain/:service", connect_catalog.discovery_chain),
    (READ, "/v1/catalog/datacenters", catalog.datacenters),
    (READ, "/v1/catalog/nodes", catalog.nodes),
    (READ, "/v1/catalog/services", catalog.services),
    (READ, "/v1/catalog/service/:name", catalog.service),
    (READ, "/v1/catalog/node/:node", catalog.node),
    (READ, "/v1/catalog/node-services/:node", catalog.node_services),
    (READ, "/v1/health/node/:node", health.node),
    (READ, "/v1/health/checks/:service", health.checks),
    (READ, "/v1/health/service/:service", health.service),
    (READ, "/v1/health/state/:state", health.state),
    (READ, "/v1/stream/health/service/:name", stream.health_service),
    (READ, "/v1/stream/catalog/services", stream.catalog_services),
    (READ, "/v1/stream/kv/:prefix", stream.kv),
    (READ, "/v1/kv/:key", kv.get),
    (WRITE, "/v1/kv/:key", kv.put),
    ((DELETE,), "/v1/kv/:key", kv.delete),
    (WRITE, "/v1/session/create", session.create),
    (WRITE, "/v1/session/destroy/:id", session.destroy),
    (WRITE, "/v1/session/renew/:id", session.renew),
    (READ, "/v1/session/info/:id", session.info),
    (READ, "/v1/session/node/:node", session.node),
    (READ, "/v1/session/list", session.list_),
    (READ, "/v1/query", query.list_),
    ((POST,), "/v1/query", query.create),
    (READ, "/v1/query/:id", query.one),
    ((PUT, DELETE), "/v1/query/:id", query.one),
    ((POST,), "/v1/internal/query/execute-remote", query.execute_remote),
    (WRITE, "/v1/txn", txn.txn),
    (WRITE, "/v1/event/fire/:name", event.fire),
    (READ, "/v1/event/list", event.list_),
    (READ, "/v1/status/leader", status.leader),
    (READ, "/v1/status/peers", status.peers),
    (READ, "/v1/snapshot", snapshot.save),
    ((PUT,), "/v1/snapshot", snapshot.restore),
    (READ, "/v1/operator/raft/configuration", operator.raft_configuration),
    (READ, "/v1/operator/autopilot/health", operator.autopilot_health),
    (READ, "/v1/operator/autopilot/configuration", operator.autopilot_configuration),
    (READ, "/v1/internal/ui/services", internal_ui.services),
    (READ, "/v1/internal/ui/nodes", internal_ui.nodes),
    (READ, "/v1/internal/ui/node/:node", internal_ui.node),
    (READ, "/v1/coordinate/datacenters", status.coordinate_datacenters),
    (READ, "/v1/coordinate/nodes", status.coordinate_nodes),
    (READ, "/v1/coordinate/node/:node", status.coordinate_node),
    (WRITE, "/v1/coordinate/update", status.coordinate_update),
    ((PUT,), "/v1/acl/bootstrap", acl.bootstrap),
    (READ, "/v1/acl/replication", acl.replication),
    ((PUT,), "/v1/acl/token", acl.token_create),
    (READ, "/v1/acl/token/self", acl.token_self),
    ((GET, PUT, DELETE), "/v1/acl/token/:id", acl.token_by_id),
    (READ, "/v1/acl/tokens", acl.token_list),
    ((PUT,), "/v1/acl/policy", acl.policy_create),
    (READ, "/v1/acl/policy/name/:name", acl.policy_by_name),
    ((GET, PUT, DELETE), "/v1/acl/policy/:id", acl.policy_by_id),
    (READ, "/v1/acl/policies", acl.policy_list),
    ((PUT,), "/v1/acl/role", acl.role_create),
    (READ, "/v1/acl/role/name/:name", acl.role_by_name),
    ((GET, PUT, DELETE), "/v1/acl/role/:id", acl.role_by_id),
    (READ, "/v1/acl/roles", acl.role_list),
    (READ, "/v1/internal/wan/exchange", wan.view),
    (WRITE, "/v1/internal/wan/exchange", wan.exchange),
    (READ, "/v1/internal/acl/replicate", wan.acl_replicate),
    (READ, "/v1/waypost/virtual-ips", virtual_ips.list_),
    (READ, "/v1/waypost/virtual-ip/:name", virtual_ips.one),
    (READ, "/v1/waypost/virtual-ip-instances/:name", virtual_ips.instances),
]

STORE_ROUTES: list[tuple[tuple[str, ...], str, Handler]] = [
    (READ, "/v1/internal/store/range", internal.range_),
    (READ, "/v1/internal/store/get", internal.get),
    (READ, "/v1/internal/store/revision", internal.revision),
    (READ, "/v1/internal/store/watch", internal.watch),
    (READ, "/v1/internal/store/stream", internal.stream),
    (WRITE, "/v1/internal/store/txn", internal.txn),
    (WRITE, "/v1/internal/store/lease/:action", internal.lease),
    (WRITE, "/v1/internal/store/connect-sign", connect_ca.sign),
    (READ, "/v1/internal/store/connect-ca-configuration", connect_ca.get_configuration),
    (WRITE, "/v1/internal/store/connect-ca-configuration", connect_ca.set_configuration),
]
