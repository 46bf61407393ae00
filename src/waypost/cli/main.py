"""``waypost <command>``: one registry of commands, each in its own module.

Modules are imported only when their command runs, so ``waypost kv get`` does not pay
for loading the agent.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "acl": ("waypost.cli.acl_cmd", "Interact with Consul's ACLs"),
    "agent": ("waypost.cli.agent_cmd", "Runs a waypost agent"),
    "catalog": ("waypost.cli.catalog_cmd", "Interact with the catalog"),
    "connect": ("waypost.cli.connect_cmd", "Interact with Consul Connect"),
    "event": ("waypost.cli.event_cmd", "Fire a new event"),
    "force-leave": ("waypost.cli.force_leave_cmd", 'Forces a member of the cluster into the "left" state'),
    "info": ("waypost.cli.info_cmd", "Provides debugging information for operators"),
    "intention": ("waypost.cli.intention_cmd", "Interact with Connect service intentions"),
    "join": ("waypost.cli.join_cmd", "Tell waypost agent to join cluster"),
    "kv": ("waypost.cli.kv_cmd", "Interact with the key-value store"),
    "leave": ("waypost.cli.leave_cmd", "Gracefully leaves the cluster and shuts down"),
    "lock": ("waypost.cli.lock_cmd", "Execute a command holding a lock"),
    "maint": ("waypost.cli.maint_cmd", "Controls node or service maintenance mode"),
    "members": ("waypost.cli.members_cmd", "Lists the members of a cluster"),
    "monitor": ("waypost.cli.monitor_cmd", "Stream logs from an agent"),
    "operator": ("waypost.cli.operator_cmd", "Provides cluster-level tools for operators"),
    "proxy": ("waypost.cli.proxy_cmd", "Proxies connections to the passing instances of services"),
    "reload": ("waypost.cli.reload_cmd", "Triggers the agent to reload configuration files"),
    "registrator": ("waypost.cli.registrator_cmd", "Registers the services of Docker containers"),
    "rtt": ("waypost.cli.rtt_cmd", "Estimates network round trip time between nodes"),
    "run": ("waypost.cli.run_cmd", "Runs a command registered as a service while it lives"),
    "services": ("waypost.cli.services_cmd", "Interact with services"),
    "snapshot": ("waypost.cli.snapshot_cmd", "Saves, restores and inspects snapshots of server state"),
    "template": ("waypost.cli.template_cmd", "Render files from the catalog and KV store (consul-template)"),
    "tls": ("waypost.cli.tls_cmd", "Builtin helpers for creating CAs and certificates"),
    "validate": ("waypost.cli.validate_cmd", "Validate config files/directories"),
    "version": ("waypost.cli.version_cmd", "Prints the waypost version"),
    "watch": ("waypost.cli.watch_cmd", "Watch for changes"),
}
"""name -> (module with ``run(argv) -> int``, one-line summary)."""


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["Usage: waypost [--version] [--help] <command> [<args>]", "", "Available commands are:"]
    lines += [f"    {name.ljust(width)}    {summary}" for name, (_, summary) in sorted(COMMANDS.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "-help", "--help"):
        print(usage(), file=sys.stderr)
        return 0 if args else 1
    if args[0] in ("-v", "-version", "--version"):
        args[0] = "version"
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"Unknown command: {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 1
    try:
        module = importlib.import_module(entry[0])
        code: int = module.run(args[1:])
    except KeyboardInterrupt:
        # Interrupted before the command installed its own handlers (an agent still starting).
        return 130
    return code
