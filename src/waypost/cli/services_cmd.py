"""``waypost services register|deregister``: the local agent's services from files or flags.

Files are the same JSON or HCL service definitions the agent reads from its
config directory (one ``service`` block or a ``services`` list), so one file
serves both ``-config-dir`` and this command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

REGISTER_USAGE = """
Usage: waypost services register [options] [FILE...]

  Register one or more services using the local agent API. Services can be
  registered from configuration files (HCL or JSON) or using flags. The caller
  must run "waypost services deregister" when the service goes away.

      $ waypost services register web.json
      $ waypost services register -name=web -port=8080 -tag=v1 -tag=primary -meta=team=a
"""

DEREGISTER_USAGE = """
Usage: waypost services deregister [options] [FILE...]

  Deregister one or more services that were previously registered with the
  local agent.

      $ waypost services deregister web.json db.json
      $ waypost services deregister -id=web
"""


class _FileError(Exception):
    pass


def _canon(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _lookup(svc: dict[str, Any], name: str) -> tuple[str, Any]:
    """The key spelling and value of a field, matched as the agent matches them (case and _ ignored)."""
    for key, value in svc.items():
        if _canon(key) == _canon(name):
            return key, value
    return name, None


def _read_file(path: str) -> list[dict[str, Any]]:
    from waypost.config.errors import ConfigError
    from waypost.config.sources import parse_text

    fmt = "hcl" if path.endswith(".hcl") else "json"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        data = parse_text(path, text, fmt)
    except OSError as exc:
        raise _FileError(f"Error reading {path}: {exc.strerror}") from None
    except ConfigError as exc:
        raise _FileError(f"Error decoding {path}: {exc}") from None
    found: list[dict[str, Any]] = []
    for key, value in data.items():
        if _canon(key) == "service" and isinstance(value, dict):
            found.append(value)
        elif _canon(key) == "services":
            found.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict))
    if not found:
        raise _FileError(
            f"{path}: no service definitions found (expected a 'service' block or 'services' list)"
        )
    return found


def _from_files(paths: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in paths:
        if not os.path.exists(path):
            raise _FileError(f"Error reading {path}: no such file or directory")
        out.extend(_read_file(path))
    return out


def _flag_service(opts: Parsed) -> dict[str, Any]:
    svc: dict[str, Any] = {
        "ID": opts.string("id"),
        "Name": opts.string("name"),
        "Address": opts.string("address"),
        "Port": opts.integer("port"),
        "Kind": opts.string("kind"),
        "Tags": opts.strings("tag"),
        "Meta": opts.mapping("meta"),
    }
    tagged = {}
    for name, addr in opts.mapping("tagged-address").items():
        host, _, port = addr.rpartition(":")
        tagged[name] = {"Address": host or addr, "Port": int(port) if port.isdigit() and host else 0}
    if tagged:
        svc["TaggedAddresses"] = tagged
    return svc


def _combine(svc: dict[str, Any], flags: dict[str, Any]) -> None:
    """Flag values fill in what the file left out; meta and tags add to it, as Consul combines them."""
    for name in ("ID", "Name", "Address", "Port", "Kind"):
        key, current = _lookup(svc, name)
        if flags[name] and not current:
            svc[key] = flags[name]
    key, meta = _lookup(svc, "Meta")
    svc[key] = {**(meta or {}), **flags["Meta"]}
    key, tags = _lookup(svc, "Tags")
    svc[key] = [*(tags or []), *flags["Tags"]]


def _register(opts: Parsed) -> int:
    if not opts.args and not opts.string("name"):
        ui.error("Service registration requires at least one argument or flags.")
        return 1
    if opts.args and opts.string("name"):
        ui.error("Service registration requires arguments or -id, not both.")
        return 1
    try:
        flag_svc = _flag_service(opts)
        services = _from_files(opts.args) if opts.args else [flag_svc]
    except (_FileError, ValueError) as exc:
        ui.error(f"Error: {exc}")
        return 1
    if opts.args:
        for svc in services:
            _combine(svc, flag_svc)
    else:
        services = [{k: v for k, v in flag_svc.items() if v}]
    try:
        client = client_from(opts)
        for svc in services:
            name = _lookup(svc, "Name")[1] or ""
            try:
                client.put("/v1/agent/service/register", None, json.dumps(svc).encode())
            except ClientError as exc:
                ui.error(f'Error registering service "{name}": {exc}')
                return 1
            ui.output(f"Registered service: {name}")
    except ClientError as exc:
        ui.error(f"Error connecting to Consul agent: {exc}")
        return 1
    return 0


def _deregister(opts: Parsed) -> int:
    if not opts.args and not opts.string("id"):
        ui.error("Service deregistration requires at least one argument or -id.")
        return 1
    if opts.args and opts.string("id"):
        ui.error("Service deregistration requires arguments or -id, not both.")
        return 1
    try:
        services = _from_files(opts.args) if opts.args else [{"ID": opts.string("id")}]
        client = client_from(opts)
    except (_FileError, ClientError) as exc:
        ui.error(f"Error: {exc}")
        return 1
    for svc in services:
        sid = _lookup(svc, "ID")[1] or _lookup(svc, "Name")[1] or ""
        if not sid:
            continue
        try:
            client.put(f"/v1/agent/service/deregister/{sid}")
        except ClientError as exc:
            ui.error(f'Error deregistering service "{sid}": {exc}')
            return 1
        ui.output(f"Deregistered service: {sid}")
    return 0


def _register_flags() -> FlagSet:
    fs = FlagSet(REGISTER_USAGE)
    fs.string(
        "id", "", "ID of the service to register for arg-based registration. Defaults to -name.", "string"
    )
    fs.string("name", "", "Name of the service to register for arg-based registration.", "string")
    fs.string("address", "", "Address of the service to register for arg-based registration.", "string")
    fs.integer("port", 0, "Port of the service to register for arg-based registration.")
    fs.string("kind", "", "The service's 'kind'.", "string")
    fs.mapping("meta", "Metadata to set on the service, formatted as key=value. May be repeated.")
    fs.repeated("tag", "Tag to add to the service. May be repeated.")
    fs.mapping(
        "tagged-address", "Tagged address to set on the service, formatted as key=host:port. May be repeated."
    )
    return fs


def _deregister_flags() -> FlagSet:
    fs = FlagSet(DEREGISTER_USAGE)
    fs.string("id", "", "ID to delete. This must not be set if arguments are given.", "string")
    return fs


SUBCOMMANDS: dict[str, Subcommand] = {
    "register": (
        lambda a: run_with_flags(_register_flags(), a, _register),
        "Register services with the local agent",
    ),
    "deregister": (
        lambda a: run_with_flags(_deregister_flags(), a, _deregister),
        "Deregister services with the local agent",
    ),
}


def run(argv: Sequence[str]) -> int:
    return dispatch("services", "Interacts with services registered with the local agent.", SUBCOMMANDS, argv)
