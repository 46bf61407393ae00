"""The agent's side of health checks: registration rules (auto IDs, initial status,
maintenance checks) and the notifier the check scheduler reports into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec

from waypost.agent.definitions import DefinitionError, ServiceDefinition, parse_service
from waypost.agent.persist import LocalDefinitions
from waypost.api.http import Request, Response, settled
from waypost.checks.base import LoopClock
from waypost.checks.definition import CheckDefinition, CheckDefinitionError, parse_check_definition
from waypost.checks.scheduler import CheckScheduler, ScriptChecksDisabledError
from waypost.connect.registration import sidecar_definition, sidecar_id
from waypost.durations import format_duration
from waypost.state.model import HealthCheck, NodeService
from waypost.state.schema import encode

if TYPE_CHECKING:
    from waypost.agent.agent import Agent

__all__ = ["NODE_MAINT", "AgentChecks", "UnknownServiceError", "service_maint_id"]

NODE_MAINT = "_node_maintenance"
_NODE_MAINT_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message."
)
_SVC_MAINT_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."
)


def service_maint_id(service_id: str) -> str:
    return f"_service_maintenance:{service_id}"


class UnknownServiceError(DefinitionError):
    """A check names a service this agent does not have; Consul answers 404, not 400."""


class AgentChecks:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.definitions: dict[str, CheckDefinition] = {}
        self.from_config: set[str] = set()
        self.sidecars: set[str] = set()
        """Services registered from a ``SidecarService`` block, which go with their parent."""
        self.scheduler = CheckScheduler(
            self,
            clock=LoopClock(),
            rng=agent.rng,
            allow_scripts=agent.config.enable_script_checks or agent.config.enable_local_script_checks,
            alias_source=CatalogAliasSource(agent) if agent.config.server else ServerAliasSource(agent),
        )
        self.persisted = LocalDefinitions(agent.config.data_dir)

    async def start(self) -> None:
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()

    # -- CheckNotifier -----------------------------------------------------------------

    def update_check(self, check_id: str, status: str, output: str) -> None:
        self.agent.local.update_check(check_id, status, output)

    def deregister_critical_service(self, service_id: str) -> None:
        self.remove_service(service_id)

    # -- registration ------------------------------------------------------------------

    def restore(self) -> None:
        """Re-register what the API registered before the last restart."""
        self.persisted.load()
        for body in list(self.persisted.services.values()):
            self.register_service(body, persist=False)
        for body in list(self.persisted.checks.values()):
            self.register_check(body, persist=False)

    def register_service(
        self, body: Any, *, replace_existing_checks: bool = False, persist: bool = True
    ) -> NodeService:
        """The service, and its ``Connect.SidecarService`` as a service of its own; both
        are parsed and checked before either is registered."""
        defn = parse_service(body, self.agent.datacenter)
        sidecar = None
        if defn.sidecar is not None:
            ports = self.agent.config.ports
            sidecar = sidecar_definition(
                defn.service,
                defn.sidecar,
                datacenter=self.agent.datacenter,
                ports=(ports.sidecar_min_port, ports.sidecar_max_port),
                local=self.agent.local.services.values(),
            )
        prepared = self._prepare(defn)
        sidecar_checks = self._prepare(sidecar) if sidecar is not None else []
        svc = self._register(defn.service, prepared, replace_existing_checks)
        if sidecar is not None:
            self._register(sidecar.service, sidecar_checks, replace_existing_checks)
            self.sidecars.add(sidecar.service.ID)
        if persist:
            self.persisted.keep_service(svc.ID, body)
        return svc

    def _prepare(self, defn: ServiceDefinition) -> list[tuple[CheckDefinition, HealthCheck]]:
        """The service's checks with their IDs and names, each refused here if it cannot run."""
        svc = defn.service
        parsed = [self._parse(c) for c in defn.checks]
        for n, check in enumerate(parsed, start=1):
            suffix = f":{n}" if len(parsed) > 1 else ""
            parsed[n - 1] = replace(
                check,
                check_id=check.check_id or f"service:{svc.ID}{suffix}",
                name=check.name or f"Service '{svc.Service}' check",
                service_id=svc.ID,
            )
        return [(check, self._record(check)) for check in parsed]

    def _register(
        self,
        svc: NodeService,
        prepared: list[tuple[CheckDefinition, HealthCheck]],
        replace_existing_checks: bool,
    ) -> NodeService:
        local = self.agent.local
        local.add_service(svc)
        wanted = {c.check_id for c, _ in prepared}
        if replace_existing_checks:
            for cid, c in list(local.checks.items()):
                if (
                    c.ServiceID == svc.ID
                    and cid not in wanted
                    and not cid.startswith("_service_maintenance:")
                ):
                    self.remove_check(cid)
        for check, record in prepared:
            self._add(check, record)
        return svc

    def remove_service(self, service_id: str) -> bool:
        """Also removes the sidecar the service's registration added, as Consul does."""
        local = self.agent.local
        if service_id not in local.services:
            return False
        if sidecar_id(service_id) in self.sidecars:
            self.sidecars.discard(sidecar_id(service_id))
            self.remove_service(sidecar_id(service_id))
        removed = local.remove_service(service_id)
        for cid in removed:
            self.scheduler.remove(cid)
            self.definitions.pop(cid, None)
        self.persisted.forget_service(service_id, removed)
        return True

    def register_check(self, body: Any, *, persist: bool = True) -> HealthCheck:
        check = self._parse(body)
        if not check.check_id:
            check = replace(check, check_id=check.name)
        if not check.check_id:
            raise DefinitionError("Missing check name")
        if check.service_id and check.service_id not in self.agent.local.services:
            raise UnknownServiceError(f'ServiceID "{check.service_id}" does not exist')
        record = self._add(check, self._record(check, standalone=True))
        if persist:
            self.persisted.keep_check(record.CheckID, body)
        return record

    def remove_check(self, check_id: str) -> bool:
        if check_id not in self.agent.local.checks:
            return False
        self.scheduler.remove(check_id)
        self.definitions.pop(check_id, None)
        self.agent.local.remove_check(check_id)
        self.persisted.forget_check(check_id)
        return True

    def ttl_update(self, check_id: str, status: str, output: str) -> None:
        """pass/warn/fail/update; raises KeyError for an unknown or non-TTL check."""
        defn = self.definitions.get(check_id)
        if defn is None or defn.kind != "ttl":
            raise KeyError(check_id)
        self.scheduler.ttl_update(check_id, status, output)

    def _parse(self, body: Any) -> CheckDefinition:
        if not isinstance(body, dict):
            raise DefinitionError("Invalid check: a check must be a JSON object")
        try:
            return parse_check_definition(body)
        except CheckDefinitionError as exc:
            raise DefinitionError(str(exc)) from None

    def _record(self, defn: CheckDefinition, *, standalone: bool = False) -> HealthCheck:
        """The catalog record of a check, refused here (nothing changed yet) if the scheduler
        cannot run it or the store could not hold it.

        Consul spells a zero Interval or Timeout "0s" on a check registered on its own (its
        CheckDefinition formats the durations as they are) and leaves it empty on a check
        registered with its service."""
        zero = "0s" if standalone else ""
        if defn.kind:
            try:
                self.scheduler.check_supported(defn)
            except (ScriptChecksDisabledError, ValueError) as exc:
                raise DefinitionError(str(exc)) from None
        previous = self.agent.local.checks.get(defn.check_id)
        record = HealthCheck(
            Node=self.agent.node.Node,
            CheckID=defn.check_id,
            Name=defn.name,
            Status=defn.status or (previous.Status if previous else "critical"),
            Notes=defn.notes,
            Output=previous.Output if previous and not defn.status else "",
            ServiceID=defn.service_id,
            Type=defn.kind,
            Interval=format_duration(defn.interval) if defn.interval else zero,
            Timeout=format_duration(defn.timeout) if defn.timeout else zero,
            Definition=defn.to_definition_dict(),
        )
        encode(record)
        return record

    def _add(self, defn: CheckDefinition, record: HealthCheck) -> HealthCheck:
        self.scheduler.remove(defn.check_id)
        if defn.kind:
            self.scheduler.add(defn.check_id, defn)
        self.definitions[defn.check_id] = defn
        self.agent.local.add_check(record)
        return record

    # -- maintenance -------------------------------------------------------------------

    def node_maintenance(self, enable: bool, reason: str) -> None:
        self._maintenance(NODE_MAINT, "Node", enable, reason or _NODE_MAINT_REASON)

    def service_maintenance(self, service_id: str, enable: bool, reason: str) -> bool:
        if service_id not in self.agent.local.services:
            return False
        cid = service_maint_id(service_id)
        self._maintenance(cid, "Service", enable, reason or _SVC_MAINT_REASON, service_id)
        return True

    def _maintenance(self, check_id: str, what: str, enable: bool, notes: str, service_id: str = "") -> None:
        """Maintenance is a critical check of its own, as in Consul, so every reader of health
        (HTTP, DNS, blocking queries) takes the instance out without knowing about it."""
        local = self.agent.local
        if not enable:
            local.remove_check(check_id)
            return
        local.add_check(
            HealthCheck(
                Node=self.agent.node.Node,
                CheckID=check_id,
                Name=f"{what} Maintenance Mode",
                Notes=notes,
                Status="critical",
                ServiceID=service_id,
                Type="maintenance",
            )
        )

    # -- config files ------------------------------------------------------------------

    def load_config(self) -> None:
        """(Re-)register the services and checks of the config files, dropping ones that
        disappeared from them since the last load (SIGHUP / agent/reload)."""
        cfg = self.agent.config
        before = set(self.from_config)
        self.from_config.clear()
        for body in cfg.services:
            svc = self.register_service(body, persist=False)
            self.from_config.add("s:" + svc.ID)
        for body in cfg.checks:
            chk = self.register_check(body, persist=False)
            self.from_config.add("c:" + chk.CheckID)
        for gone in before - self.from_config:
            kind, ident = gone.split(":", 1)
            if kind == "s":
                self.remove_service(ident)
            else:
                self.remove_check(ident)


class CatalogAliasSource:
    """What alias checks read: the local agent's own checks for its node, the catalog else."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def node_checks(self, node: str) -> Sequence[HealthCheck]:
        if not node or node == self.agent.node.Node:
            return list(self.agent.local.checks.values())
        return list(self.agent.require_state().indexes.checks.get(node, {}).values())

    def service_exists(self, node: str, service_id: str) -> bool:
        if not node or node == self.agent.node.Node:
            return service_id in self.agent.local.services
        return service_id in self.agent.require_state().indexes.services.get(node, {})

    async def wait_change(self, node: str, last_index: int) -> int:
        topics = self.agent.require_state().indexes.topics
        topic = ("node", node or self.agent.node.Node)
        current = topics.index(topic)
        if current != last_index:
            return current
        # Index 0 (a node not in the catalog yet, as at start-up) parks too: returning it at
        # once would make the caller's loop spin without ever yielding to the event loop.
        waiter = topics.park([topic])
        assert waiter.future is not None
        try:
            await waiter.future
        finally:
            topics.unpark(waiter)
        return topics.index(topic)


_ALIAS_WAIT = "50s"
"""A remote alias's blocking read: within the scheduler's minute between re-reads."""

_CHECKS = msgspec.json.Decoder(list[HealthCheck] | None)


class _Listed(msgspec.Struct):
    ID: str = ""


class _NodeServices(msgspec.Struct):
    Services: list[_Listed] | None = None


_NODE_SERVICES = msgspec.json.Decoder(_NodeServices | None)


class ServerAliasSource(CatalogAliasSource):
    """A client agent's, which does not hold other nodes: an alias of another node reads
    it from a server (``health/node`` as a blocking query, then ``catalog/node-services``),
    as Consul's client agents read it through a server."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(agent)
        self._checks: dict[str, list[HealthCheck]] = {}
        self._services: dict[str, set[str]] = {}

    def _own(self, node: str) -> bool:
        return not node or node == self.agent.node.Node

    def node_checks(self, node: str) -> Sequence[HealthCheck]:
        return super().node_checks(node) if self._own(node) else self._checks.get(node, [])

    def service_exists(self, node: str, service_id: str) -> bool:
        if self._own(node):
            return super().service_exists(node, service_id)
        return service_id in self._services.get(node, set())

    async def wait_change(self, node: str, last_index: int) -> int:
        if self._own(node):
            return await super().wait_change(node, last_index)
        query = f"index={last_index}&wait={_ALIAS_WAIT}" if last_index else ""
        resp = await self._read(f"/v1/health/node/{node}", query)
        index = next((int(v) for k, v in resp.headers if k.lower() == "x-consul-index" and v.isdigit()), 0)
        self._checks[node] = _CHECKS.decode(resp.body) or []
        listed = _NODE_SERVICES.decode((await self._read(f"/v1/catalog/node-services/{node}", "")).body)
        self._services[node] = {s.ID for s in (listed.Services or [] if listed is not None else [])}
        return index

    async def _read(self, path: str, query: str) -> Response:
        resp = await settled(self.agent.wan.ask_server(Request("GET", path, query, {}, b"")))
        if resp.status != 200:
            raise CatalogReadError(f"{path}: {resp.status} {resp.body[:200].decode(errors='replace')}")
        return resp


class CatalogReadError(Exception):
    """A server did not answer an alias's read of another node."""
