"""``waypost intention create|delete|get|list|match|check``, as Consul's ``consul intention``.

Intentions are named by source and destination (``[namespace/]name``, ``*`` for any), as
Consul 1.9+ names them; ``get`` and ``delete`` also take a legacy intention's ID.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import Client, ClientError, StatusError, client_from
from waypost.cli.flags import FlagSet, Parsed, run_with_flags
from waypost.cli.group import Subcommand, dispatch

CREATE_USAGE = """
Usage: waypost intention create [options] SRC DST

  Create a new intention. The default action is "allow"; -deny makes it a deny
  intention. An intention for the same source and destination already there is an
  error unless -replace is given.

      $ waypost intention create web db
      $ waypost intention create -deny '*' db
"""
DELETE_USAGE = """
Usage: waypost intention delete [options] SRC DST
       waypost intention delete [options] ID

  Delete an intention.
"""
GET_USAGE = """
Usage: waypost intention get [options] SRC DST
       waypost intention get [options] ID

  Read and show the details about an intention.
"""
LIST_USAGE = """
Usage: waypost intention list [options]

  List all intentions, in the order they are evaluated.
"""
MATCH_USAGE = """
Usage: waypost intention match [options] DESTINATION
       waypost intention match [options] -source SOURCE

  Show the intentions that match a destination or source, in evaluation order.
"""
CHECK_USAGE = """
Usage: waypost intention check [options] SRC DST

  Check whether a connection from SRC to DST would be allowed by the intentions.
  Prints "Allowed" (exit 0) or "Denied" (exit 2).
"""


def _short(ns: str, name: str) -> str:
    """Consul's ``SourceString``: the default namespace goes unsaid."""
    return name if ns in ("", "default") else f"{ns}/{name}"


def _line(x: dict[str, Any]) -> str:
    """Consul's ``api.Intention.String``."""
    source = _short(x.get("SourceNS", ""), x["SourceName"])
    return f"{source} => {_short(x.get('DestinationNS', ''), x['DestinationName'])} ({x.get('Action', '')})"


def _args(opts: Parsed, counts: tuple[int, ...]) -> list[str] | None:
    if len(opts.args) not in counts:
        wanted = " or ".join(str(c) for c in counts)
        ui.error(f"Error: command requires exactly {wanted} argument{'s' if counts[-1] != 1 else ''}")
        return None
    return list(opts.args)


def _exact(source: str, destination: str) -> dict[str, str]:
    return {"source": source, "destination": destination}


def _fetch(client: Client, args: list[str]) -> dict[str, Any]:
    if len(args) == 1:
        found: dict[str, Any] = client.get(f"/v1/connect/intentions/{args[0]}").json()
    else:
        found = client.get("/v1/connect/intentions/exact", _exact(*args)).json()
    return found


def _reason(exc: ClientError) -> str:
    return exc.body.decode(errors="replace").strip() if isinstance(exc, StatusError) else str(exc)


def _create(opts: Parsed) -> int:
    args = _args(opts, (2,))
    if args is None:
        return 1
    if opts.boolean("allow") and opts.boolean("deny"):
        ui.error("Only one of -allow or -deny may be specified")
        return 1
    action = "deny" if opts.boolean("deny") else "allow"
    body = {"SourceName": args[0], "DestinationName": args[1], "SourceType": "consul", "Action": action}
    description = opts.string("description")
    if description:
        body["Description"] = description
    meta = opts.mapping("meta")
    shown = _line(body)
    try:
        client = client_from(opts)
        if opts.boolean("replace"):
            client.put("/v1/connect/intentions/exact", _exact(*args), body=json.dumps(body).encode())
        else:
            payload: dict[str, Any] = {**body, "Meta": meta} if meta else body
            client.put("/v1/connect/intentions", body=json.dumps(payload).encode())
    except ClientError as exc:
        ui.error(f'Error creating intention "{shown}": {exc}')
        return 1
    ui.output(f"Created: {shown}")
    return 0


def _delete(opts: Parsed) -> int:
    args = _args(opts, (1, 2))
    if args is None:
        return 1
    try:
        client = client_from(opts)
        if len(args) == 1:
            client.delete(f"/v1/connect/intentions/{args[0]}")
        else:
            client.delete("/v1/connect/intentions/exact", _exact(*args))
    except ClientError as exc:
        ui.error(f"Error deleting the intention: {_reason(exc)}")
        return 1
    ui.output("Intention deleted.")
    return 0


def _get(opts: Parsed) -> int:
    args = _args(opts, (1, 2))
    if args is None:
        return 1
    try:
        x = _fetch(client_from(opts), args)
    except ClientError as exc:
        ui.error(f"Error reading the intention: {_reason(exc)}")
        return 1
    rows = [
        ["Source:", _short(x.get("SourceNS", ""), x["SourceName"])],
        ["Destination:", _short(x.get("DestinationNS", ""), x["DestinationName"])],
        ["Action:", x.get("Action", "")],
    ]
    if x.get("ID"):
        rows.append(["ID:", x["ID"]])
    if x.get("Description"):
        rows.append(["Description:", x["Description"]])
    rows += [[f"Meta[{k}]:", v] for k, v in sorted((x.get("Meta") or {}).items())]
    if x.get("CreatedAt"):
        rows.append(["Created At:", x["CreatedAt"]])
    ui.output(ui.columnize(rows))
    return 0


def _list(opts: Parsed) -> int:
    if _args(opts, (0,)) is None:
        return 1
    try:
        found = client_from(opts).get("/v1/connect/intentions").json() or []
    except ClientError as exc:
        ui.error(f"Failed to retrieve the intention list: {exc}")
        return 1
    if not found:
        ui.output("There are no intentions.")
        return 0
    rows = [["ID", "Source", "Action", "Destination", "Precedence"]]
    rows += [
        [x.get("ID", ""), _short(x.get("SourceNS", ""), x["SourceName"]), x.get("Action", ""),
         _short(x.get("DestinationNS", ""), x["DestinationName"]), str(x["Precedence"])]
        for x in found
    ]  # fmt: skip
    ui.output(ui.columnize(rows))
    return 0


def _match(opts: Parsed) -> int:
    args = _args(opts, (1,))
    if args is None:
        return 1
    by = "source" if opts.boolean("source") else "destination"
    try:
        found = client_from(opts).get("/v1/connect/intentions/match", {"by": by, "name": args[0]}).json()
    except ClientError as exc:
        ui.error(f"Error matching the connection: {exc}")
        return 1
    for x in found.get(args[0]) or []:
        ui.output(_line(x))
    return 0


def _check(opts: Parsed) -> int:
    args = _args(opts, (2,))
    if args is None:
        return 1
    try:
        answer = client_from(opts).get("/v1/connect/intentions/check", _exact(*args)).json()
    except ClientError as exc:
        ui.error(f"Error testing the connection: {exc}")
        return 1
    allowed = bool(answer.get("Allowed"))
    ui.output("Allowed" if allowed else "Denied")
    return 0 if allowed else 2


def _create_flags() -> FlagSet:
    flags = FlagSet(CREATE_USAGE, server=False)
    flags.boolean("allow", False, "Create an intention that allows when matched.")
    flags.boolean("deny", False, "Create an intention that denies when matched.")
    flags.string("description", "", "A description of the intention.")
    flags.mapping(
        "meta", "Metadata to set on the intention, formatted as key=value. May be given more than once."
    )
    flags.boolean(
        "replace", False, "Replace the intention for the same source and destination if there is one."
    )
    return flags


def _match_flags() -> FlagSet:
    flags = FlagSet(MATCH_USAGE)
    flags.boolean("destination", False, "Match by destination (the default).")
    flags.boolean("source", False, "Match by source.")
    return flags


def _plain(
    usage: str, body: Callable[[Parsed], int], *, server: bool = True
) -> Callable[[Sequence[str]], int]:
    return lambda a: run_with_flags(FlagSet(usage, server=server), a, body)


SUBCOMMANDS: dict[str, Subcommand] = {
    "create": (
        lambda a: run_with_flags(_create_flags(), a, _create),
        "Create intentions for service connections.",
    ),
    "delete": (_plain(DELETE_USAGE, _delete, server=False), "Delete an intention."),
    "get": (_plain(GET_USAGE, _get), "Show information about an intention."),
    "list": (_plain(LIST_USAGE, _list), "List intentions."),
    "match": (
        lambda a: run_with_flags(_match_flags(), a, _match),
        "Show intentions that match a source or dest.",
    ),
    "check": (_plain(CHECK_USAGE, _check), "Check whether a connection between two services is allowed."),
}


def run(argv: Sequence[str]) -> int:
    return dispatch(
        "intention",
        "Interacts with Connect service intentions: which services may connect to which.",
        SUBCOMMANDS,
        argv,
    )
