"""``waypost kv``: reading and writing the key/value store the way ``consul kv`` scripts expect.

Values are written to stdout as raw bytes, so binary values survive ``kv get > file``.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, UsageError, load_data, run_with_flags
from waypost.cli.group import Subcommand, dispatch

GET_USAGE = """
Usage: waypost kv get [options] [KEY_OR_PREFIX]

  Retrieves the value at the given key. If no key exists with that name, an
  error is returned. If a key exists with that name but has no data, nothing is
  returned.

      $ waypost kv get foo
      $ waypost kv get -detailed foo
      $ waypost kv get -recurse foo
      $ waypost kv get -keys -separator=/ foo/
"""

PUT_USAGE = """
Usage: waypost kv put [options] KEY [DATA]

  Writes the data to the given path in the key-value store.

      $ waypost kv put config/redis/maxconns 5
      $ waypost kv put config/program/license @license.lic
      $ echo "abcd1234" | waypost kv put config/program/license -
      $ waypost kv put webapp/beta/active
      $ waypost kv put -cas -modify-index=844 config/redis/maxconns 5
      $ waypost kv put -acquire -session=<id> locks/leader
"""

DELETE_USAGE = """
Usage: waypost kv delete [options] KEY_OR_PREFIX

  Removes the value at the given path. If no key exists at the path, no action
  is taken.

      $ waypost kv delete foo
      $ waypost kv delete -recurse foo
      $ waypost kv delete -cas -modify-index=12 foo
"""


def _key_arg(opts: Parsed) -> str | None:
    """The optional single KEY argument with a leading "/" dropped; None (after an error) if more."""
    if len(opts.args) > 1:
        ui.error(f"Too many arguments (expected 1, got {len(opts.args)})")
        return None
    key = opts.args[0] if opts.args else ""
    return key[1:] if key.startswith("/") else key


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.buffer.flush()


def _value(pair: dict[str, Any]) -> bytes:
    return base64.b64decode(pair.get("Value") or "")


def _detailed(pair: dict[str, Any], as_base64: bool) -> bytes:
    value = _value(pair)
    rows = [
        [name, str(pair.get(name, 0))] for name in ("CreateIndex", "Flags", "Key", "LockIndex", "ModifyIndex")
    ]
    rows.append(["Session", pair.get("Session") or "-"])
    rows.append(["Value", ""])
    text = ui.tabwrite(rows).encode()
    return text + (base64.b64encode(value) if as_base64 else value)


def _get(opts: Parsed) -> int:
    key = _key_arg(opts)
    if key is None:
        return 1
    recurse, keys = opts.boolean("recurse"), opts.boolean("keys")
    if not key and not (recurse or keys):
        ui.error("Error! Missing KEY argument")
        return 1
    try:
        client = client_from(opts)
        if keys:
            found = client.get(
                f"/v1/kv/{key}", {"keys": True, "separator": opts.string("separator")}, allow=(200, 404)
            ).json()
            for k in found or []:
                ui.output(str(k))
            return 0
        resp = client.get(f"/v1/kv/{key}", {"recurse": recurse}, allow=(200, 404))
    except ClientError as exc:
        ui.error(f"Error querying Consul agent: {exc}")
        return 1
    pairs: list[dict[str, Any]] = resp.json() if resp.status == 200 else []
    as_base64 = opts.boolean("base64")
    if recurse:
        for i, pair in enumerate(pairs):
            if opts.boolean("detailed"):
                _write(_detailed(pair, as_base64) + (b"\n" if i < len(pairs) - 1 else b""))
            else:
                value = _value(pair)
                _write(pair["Key"].encode() + b":" + (base64.b64encode(value) if as_base64 else value))
        return 0
    if not pairs:
        ui.error(f"Error! No key exists at: {key}")
        return 1
    if opts.boolean("detailed"):
        _write(_detailed(pairs[0], as_base64))
    else:
        _write(_value(pairs[0]))
    return 0


def _put(opts: Parsed) -> int:
    if not opts.args:
        ui.error("Error! Missing KEY argument")
        return 1
    if len(opts.args) > 2:
        ui.error(f"Error! Too many arguments (expected 1 or 2, got {len(opts.args)})")
        return 1
    key = opts.args[0]
    try:
        data = load_data(opts.args[1]) if len(opts.args) == 2 and opts.args[1] else b""
    except UsageError as exc:
        ui.error(f"Error! {exc}")
        return 1
    if opts.boolean("base64"):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            ui.error(f"Error! Cannot base 64 decode data: {exc}")
            return 1
    session, acquire, release = opts.string("session"), opts.boolean("acquire"), opts.boolean("release")
    if (acquire or release) and not session:
        ui.error("Error! Missing -session (required with -acquire and -release)")
        return 1
    cas, index = opts.boolean("cas"), opts.integer("modify-index")
    if cas and index == 0:
        ui.error("Must specify -modify-index with -cas!")
        return 1
    query: dict[str, str | int | bool | None] = {"flags": opts.integer("flags") or None}
    if cas:
        query["cas"] = index
    elif acquire:
        query["acquire"] = session
    elif release:
        query["release"] = session
    try:
        ok = client_from(opts).put(f"/v1/kv/{key}", query, data).json()
    except ClientError as exc:
        ui.error(f"Error! Did not write to {key}: {exc}" if cas else f"Error! Failed writing data: {exc}")
        return 1
    if cas:
        return _report(ok, f"Success! Data written to: {key}", f"Error! Did not write to {key}: CAS failed")
    if acquire:
        return _report(ok, f"Success! Lock acquired on: {key}", "Error! Did not acquire lock")
    if release:
        return _report(ok, f"Success! Lock released on: {key}", "Error! Did not release lock")
    return _report(True, f"Success! Data written to: {key}", "")


def _report(ok: object, success: str, failure: str) -> int:
    if ok is True:
        ui.output(success)
        return 0
    ui.error(failure)
    return 1


def _delete(opts: Parsed) -> int:
    key = _key_arg(opts)
    if key is None:
        return 1
    recurse, cas, index = opts.boolean("recurse"), opts.boolean("cas"), opts.integer("modify-index")
    if not key and not recurse:
        ui.error("Error! Missing KEY argument")
        return 1
    if cas and index == 0:
        ui.error("Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.")
        return 1
    if index and not cas:
        ui.error("Cannot specify -modify-index without -cas!")
        return 1
    if recurse and cas:
        ui.error("Cannot specify both -cas and -recurse!")
        return 1
    try:
        client = client_from(opts)
        ok = client.delete(f"/v1/kv/{key}", {"recurse": recurse, "cas": index if cas else None}).json()
    except ClientError as exc:
        if recurse:
            ui.error(f"Error! Did not delete prefix {key}: {exc}")
        else:
            ui.error(f"Error! Did not delete key {key}: {exc}" if cas else f"Error deleting key {key}: {exc}")
        return 1
    if recurse:
        return _report(True, f"Success! Deleted keys with prefix: {key}", "")
    return _report(
        ok if cas else True, f"Success! Deleted key: {key}", f"Error! Did not delete key {key}: CAS failed"
    )


def _get_flags() -> FlagSet:
    fs = FlagSet(GET_USAGE)
    fs.boolean("base64", False, "Base64 encode the value. The default value is false.")
    fs.boolean(
        "detailed",
        False,
        "Provide additional metadata about the key in addition to the value such "
        "as the ModifyIndex and any flags that may have been set on the key.",
    )
    fs.boolean("keys", False, "List keys which start with the given prefix, but not their values.")
    fs.boolean("recurse", False, "Recursively look at all keys prefixed with the given path.")
    fs.string(
        "separator",
        "/",
        'String to use as a separator between keys. The default value is "/", but '
        "this option is only taken into account when paired with the -keys flag.",
        "string",
    )
    return fs


def _put_flags() -> FlagSet:
    fs = FlagSet(PUT_USAGE)
    fs.boolean("acquire", False, "Obtain a lock on the key using the session given by -session.")
    fs.boolean("base64", False, "Treat the data as base 64 encoded. The default value is false.")
    fs.boolean("cas", False, "Perform a Check-And-Set operation; requires -modify-index.")
    fs.integer("flags", 0, "Unsigned integer value to assign to this key-value pair.", unsigned=True)
    fs.integer("modify-index", 0, "ModifyIndex of the key, used with -cas.", unsigned=True)
    fs.boolean("release", False, "Forfeit the lock on the key held by the session given by -session.")
    fs.string("session", "", "Session to use with -acquire and -release.", "string")
    return fs


def _delete_flags() -> FlagSet:
    fs = FlagSet(DELETE_USAGE)
    fs.boolean("cas", False, "Perform a Check-And-Set operation; requires -modify-index.")
    fs.integer("modify-index", 0, "ModifyIndex of the key, used with -cas.", unsigned=True)
    fs.boolean("recurse", False, "Recursively delete all keys with the path. The default value is false.")
    return fs


def _transfer(name: str) -> Subcommand:
    def run_transfer(argv: Sequence[str]) -> int:
        from waypost.cli import kv_transfer

        return kv_transfer.run(name, argv)

    summary = (
        "Exports a tree from the KV store as JSON" if name == "export" else "Imports a tree stored as JSON"
    )
    return run_transfer, summary


SUBCOMMANDS: dict[str, Subcommand] = {
    "get": (lambda a: run_with_flags(_get_flags(), a, _get), "Retrieves or lists data from the KV store"),
    "put": (lambda a: run_with_flags(_put_flags(), a, _put), "Sets or updates data in the KV store"),
    "delete": (lambda a: run_with_flags(_delete_flags(), a, _delete), "Removes data from the KV store"),
    "export": _transfer("export"),
    "import": _transfer("import"),
}


def run(argv: Sequence[str]) -> int:
    return dispatch("kv", "Interacts with the key-value store.", SUBCOMMANDS, argv)
