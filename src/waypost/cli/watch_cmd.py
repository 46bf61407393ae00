"""``waypost watch``: run a handler whenever a view of the cluster changes, as ``consul watch`` does.

Each watch type is a blocking query on one endpoint. The handler runs for the
first result and then for every result that differs from the last one; an index
that goes backwards (a server restored from a snapshot, a new leader) restarts
the loop from 0 instead of blocking forever on an index the server will not
reach.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from waypost.cli import ui
from waypost.cli.client import Client, ClientError, QueryValue, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.gostrconv import GO_BOOLS, num_error

USAGE = """
Usage: waypost watch [options] [child...]

  Watches for changes in a given data view. If a child process is specified, it
  is invoked with the latest results (JSON on stdin, the index in CONSUL_INDEX)
  on every change, including the first result. Otherwise the latest value is
  printed to stdout and the watch exits.

  The watch type is required; other parameters depend on the type:
  key (-key), keyprefix (-prefix), services, nodes, service (-service, -tag,
  -passingonly), checks (-service or -state, -tag), event (-name).

      $ waypost watch -type=key -key=config/app
      $ waypost watch -type=service -service=web -passingonly=true ./on-change.sh
      $ waypost watch -type=event -name=deploy 'cat >> /var/log/deploys'
"""

#: Consul's backoff after a failed query: 5s times the square of the failures, at most 3 minutes.
RETRY_BASE, RETRY_MAX = 5.0, 180.0

#: Parameters each type reads; any other one given is an error, as in Consul's watch.Parse.
_ALLOWED = {
    "key": {"key", "stale"},
    "keyprefix": {"prefix", "stale"},
    "services": {"stale"},
    "nodes": {"stale"},
    "service": {"service", "tag", "passingonly", "stale"},
    "checks": {"service", "state", "tag", "stale"},
    "event": {"name"},
}


class _Stop(Exception):
    """SIGINT or SIGTERM: leave the blocking query or the handler wait at once."""


class WatchError(Exception):
    pass


@dataclass
class Plan:
    """One watch: which endpoint to block on and how to turn its answer into the handler's input."""

    kind: str
    path: str
    query: list[tuple[str, QueryValue]] = field(default_factory=list)
    last_event_id: str = ""

    def fetch(self, client: Client, index: int) -> tuple[int, Any]:
        resp = client.get(self.path, [*self.query, ("index", index or None)], allow=(200, 404), timeout=660)
        found = resp.json() if resp.status == 200 else None
        if self.kind == "key":
            found = found[0] if found else None
        elif self.kind == "event":
            found = self._new_events(found or [])
        return max(1, resp.index), found

    def _new_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Only events after the last one handed out; the list endpoint always returns its whole buffer."""
        ids = [e.get("ID") for e in events]
        fresh = events[ids.index(self.last_event_id) + 1 :] if self.last_event_id in ids else events
        if events:
            self.last_event_id = str(events[-1].get("ID", ""))
        return fresh


def make_plan(opts: Parsed) -> Plan:
    kind = opts.string("type")
    if kind not in _ALLOWED:
        raise WatchError(f"Unsupported watch type: {kind}")
    given = {
        p
        for p in ("key", "prefix", "service", "tag", "passingonly", "state", "name", "stale")
        if p in opts.given and ((p == "stale" and opts.boolean(p)) or (p != "stale" and opts.string(p)))
    }
    extra = sorted(given - _ALLOWED[kind])
    if extra:
        raise WatchError(f"Invalid parameters: [{' '.join(extra)}]")
    tag: list[tuple[str, QueryValue]] = [("tag", opts.string("tag") or None)]
    if kind == "key":
        if not opts.string("key"):
            raise WatchError("Must specify a single key to watch")
        return Plan(kind, f"/v1/kv/{opts.string('key')}")
    if kind == "keyprefix":
        if not opts.string("prefix"):
            raise WatchError("Must specify a single prefix to watch")
        return Plan(kind, f"/v1/kv/{opts.string('prefix')}", [("recurse", True)])
    if kind in ("services", "nodes"):
        return Plan(kind, f"/v1/catalog/{kind}")
    if kind == "service":
        if not opts.string("service"):
            raise WatchError("Must specify a single service to watch")
        return Plan(kind, f"/v1/health/service/{opts.string('service')}", [*tag, ("passing", _passing(opts))])
    if kind == "checks":
        service, state = opts.string("service"), opts.string("state")
        if service and state:
            raise WatchError("Cannot specify service and state")
        if service:
            return Plan(kind, f"/v1/health/checks/{service}")
        return Plan(kind, f"/v1/health/state/{state or 'any'}", tag)
    return Plan(kind, "/v1/event/list", [("name", opts.string("name") or None)])


def _passing(opts: Parsed) -> bool:
    raw = opts.string("passingonly")
    if raw and raw not in GO_BOOLS:
        raise WatchError(f"Failed to parse passingonly flag: {num_error('ParseBool', raw)}")
    return GO_BOOLS.get(raw, False)


def next_index(previous: int | None, current: int) -> int:
    """Consul's rule for the next wait index: start over from 0 when the index went backwards."""
    if previous is not None and current < previous:
        return 0
    return current


def watch_loop(
    plan: Plan, client: Client, handler: Callable[[int, Any], bool], stop: threading.Event
) -> None:
    """Call ``handler(index, result)`` for the first result and each change until it returns False."""
    last_index: int | None = None
    last_result: Any = None
    failures = 0
    while not stop.is_set():
        try:
            index, result = plan.fetch(client, last_index or 0)
        except ClientError as exc:
            failures += 1
            retry = min(RETRY_BASE * failures * failures, RETRY_MAX)
            ui.error(f"[ERROR] watch: Watch errored: type={plan.kind} error={exc} retry={retry:g}s")
            last_index = None
            stop.wait(retry)
            continue
        failures = 0
        if last_index is not None and index == last_index:
            continue
        previous, last_index = last_index, next_index(last_index, index)
        if previous is not None and result == last_result:
            continue
        last_result = result
        if not handler(index, result):
            return


def _run_handler(args: list[str], shell: bool, index: int, data: Any) -> bool:
    argv = [os.environ.get("SHELL") or "/bin/sh", "-c", " ".join(args)] if shell else args
    env = {**os.environ, "CONSUL_INDEX": str(index)}
    try:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env)
    except OSError as exc:
        ui.error(f"Error starting handler: {exc}")
        return False
    try:
        assert child.stdin is not None
        try:
            child.stdin.write((ui.go_json(data) + "\n").encode())
            child.stdin.close()
        except BrokenPipeError:
            pass
        code = child.wait()
    except _Stop:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
    if code != 0:
        ui.error(f"Error executing handler: exit status {code}")
        return False
    return True


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def _run(opts: Parsed, flags: FlagSet) -> int:
    if not opts.string("type"):
        ui.error(f"Watch type must be specified\n\n{flags.help()}")
        return 1
    try:
        plan = make_plan(opts)
        client = client_from(opts)
        client.node_name()
    except WatchError as exc:
        ui.error(str(exc))
        return 1
    except ClientError as exc:
        ui.error(f"Error querying Consul agent: {exc}")
        return 1
    failed = False

    def handle(index: int, data: Any) -> bool:
        nonlocal failed
        if not opts.args:
            ui.output(ui.go_json(data, indent=4))
            return False
        ok = _run_handler(list(opts.args), opts.boolean("shell"), index, data)
        failed = not ok
        return ok

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        watch_loop(plan, client, handle, threading.Event())
    except _Stop:
        return 0
    return 1 if failed else 0


def _flags() -> FlagSet:
    fs = FlagSet(USAGE)
    fs.string(
        "type",
        "",
        "Specifies the watch type. One of key, keyprefix, services, nodes, service, checks, or event.",
        "string",
    )
    fs.string("key", "", "Specifies the key to watch. Only for 'key' type.", "string")
    fs.string("prefix", "", "Specifies the key prefix to watch. Only for 'keyprefix' type.", "string")
    fs.string(
        "service",
        "",
        "Specifies the service to watch. Required for 'service' type, optional for 'checks' type.",
        "string",
    )
    fs.string("tag", "", "Specifies the service tag to filter on. Optional for 'service' type.", "string")
    fs.string(
        "passingonly",
        "",
        "Specifies if only hosts passing all checks are displayed. Optional for "
        "'service' type, must be one of [true|false]. Defaults false.",
        "[true|false]",
    )
    fs.string("state", "", "Specifies the states to watch. Optional for 'checks' type.", "string")
    fs.string("name", "", "Specifies an event name to watch. Only for 'event' type.", "string")
    fs.boolean(
        "shell",
        True,
        "Use a shell to run the command (can set a custom shell via the SHELL environment variable).",
    )
    return fs


def run(argv: Sequence[str]) -> int:
    flags = _flags()
    return run_with_flags(flags, argv, lambda opts: _run(opts, flags))
