"""``waypost members``: the gossip pool as Consul prints it, columns and all, for eyes and awk alike."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags

USAGE = """
Usage: waypost members [options]

  Outputs the members of a running agent's cluster.

      $ waypost members
      $ waypost members -status=alive
      $ waypost members -detailed
"""

#: Serf's member status numbers, as /v1/agent/members reports them.
_STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


def _flags() -> FlagSet:
    fs = FlagSet(USAGE, server=False)
    fs.boolean("detailed", False, "Provides detailed information about nodes.")
    fs.boolean("wan", False, "If the agent is in server mode, lists the WAN pool instead.")
    fs.string(
        "status",
        ".*",
        "If provided, output is filtered to only nodes matching the regular expression for status.",
        "string",
    )
    fs.string("segment", "", "(Enterprise-only) Only list members of this network segment.", "string")
    fs.string("filter", "", "Filter expression to use with the request.", "string")
    fs.string("partition", "", "(Enterprise-only) The admin partition to query.", "string")
    return fs


def _address(member: dict[str, Any]) -> str:
    addr, port = str(member.get("Addr", "")), member.get("Port", 0)
    try:
        if ipaddress.ip_address(addr).version == 6:
            return f"[{addr}]:{port}"
    except ValueError:
        pass
    return f"{addr}:{port}"


def _status(member: dict[str, Any]) -> str:
    return _STATUS.get(int(member.get("Status", 0)), "unknown")


def _sort_key(member: dict[str, Any]) -> tuple[bool, bool, str, str, str]:
    tags = member["Tags"]
    partition = tags.get("ap", "")
    return (
        tags.get("role") != "consul",
        partition not in ("", "default"),
        tags.get("segment", ""),
        partition,
        str(member.get("Name", "")),
    )


def _standard(members: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]]
    for m in members:
        tags: dict[str, str] = m["Tags"]
        role = tags.get("role", "")
        kind = {"consul": "server", "node": "client"}.get(role)
        if kind is None:
            rows.append([m["Name"], _address(m), _status(m), "unknown", "", "", "", "", ""])
            continue
        build = tags.get("build", "") or "< 0.3"
        build = build.split(":", 1)[0]
        rows.append(
            [
                m["Name"],
                _address(m),
                _status(m),
                kind,
                build,
                tags.get("vsn", ""),
                tags.get("dc", ""),
                tags.get("ap", ""),
                tags.get("segment", ""),
            ]
        )
    return rows


def _detailed(members: list[dict[str, Any]]) -> list[list[str]]:
    rows = [["Node", "Address", "Status", "Tags"]]
    for m in members:
        tags = ",".join(f"{k}={v}" for k, v in sorted(m["Tags"].items()))
        rows.append([m["Name"], _address(m), _status(m), tags])
    return rows


def _run(opts: Parsed) -> int:
    try:
        status_re = re.compile(opts.string("status"))
    except re.error as exc:
        ui.error(f"Failed to compile status regexp: {exc}")
        return 1
    try:
        client = client_from(opts)
        query = {
            "wan": "1" if opts.boolean("wan") else None,  # as Consul's API client sends it
            "segment": opts.string("segment") or None,
            "filter": opts.string("filter") or None,
            "partition": opts.string("partition") or None,
        }
        members: list[dict[str, Any]] = client.get("/v1/agent/members", query).json() or []
    except ClientError as exc:
        ui.error(f"Error retrieving members: {exc}")
        return 1
    kept = []
    for m in members:
        tags = m.setdefault("Tags", {}) or {}
        m["Tags"] = tags
        if not tags.get("ap"):
            tags["ap"] = "default"
        if tags["ap"] == "default":
            if not opts.string("segment") and tags.get("role") == "consul":
                tags["segment"] = "<all>"
            elif not tags.get("segment"):
                tags["segment"] = "<default>"
        else:
            tags["segment"] = ""
        if status_re.search(_status(m)):
            kept.append(m)
    if not kept:
        return 2
    kept.sort(key=_sort_key)
    ui.output(ui.columnize(_detailed(kept) if opts.boolean("detailed") else _standard(kept)))
    return 0


def run(argv: Sequence[str]) -> int:
    return run_with_flags(_flags(), argv, _run)
