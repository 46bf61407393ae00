"""``waypost acl bootstrap|token|policy|role``: Consul's ACL commands over /v1/acl.

Output is Consul's pretty format (``-format=json`` prints the API's JSON); errors are
Consul's lines with the agent's answer, and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from waypost.cli import ui
from waypost.cli.client import ClientError, client_from
from waypost.cli.flags import FlagSet, Parsed, UsageError, load_data, run_with_flags
from waypost.cli.group import Subcommand, dispatch

__all__ = ["run"]


def _links(title: str, links: list[dict[str, str]] | None) -> list[str]:
    if not links:
        return []
    return [f"{title}:", *(f"   {link['ID']} - {link['Name']}" for link in links)]


def _identities(body: dict[str, Any]) -> list[str]:
    lines = []
    if body.get("ServiceIdentities"):
        lines.append("Service Identities:")
        for s in body["ServiceIdentities"]:
            dcs = ", ".join(s.get("Datacenters") or []) or "all"
            lines.append(f"   {s['ServiceName']} (Datacenters: {dcs})")
    if body.get("NodeIdentities"):
        lines.append("Node Identities:")
        lines += [f"   {n['NodeName']} (Datacenter: {n['Datacenter']})" for n in body["NodeIdentities"]]
    return lines


def _token_text(t: dict[str, Any]) -> str:
    lines = [
        f"AccessorID:       {t['AccessorID']}",
        f"SecretID:         {t['SecretID']}",
        f"Description:      {t.get('Description', '')}",
        f"Local:            {str(t.get('Local', False)).lower()}",
        f"Create Time:      {t.get('CreateTime', '')}",
    ]
    if t.get("ExpirationTime"):
        lines.append(f"Expiration Time:  {t['ExpirationTime']}")
    lines += _links("Policies", t.get("Policies")) + _links("Roles", t.get("Roles")) + _identities(t)
    return "\n".join(lines)


def _policy_text(p: dict[str, Any]) -> str:
    lines = [
        f"ID:           {p['ID']}",
        f"Name:         {p['Name']}",
        f"Description:  {p.get('Description', '')}",
        f"Datacenters:  {', '.join(p.get('Datacenters') or [])}",
    ]
    if "Rules" in p:
        lines += ["Rules:", p["Rules"]]
    return "\n".join(lines)


def _role_text(r: dict[str, Any]) -> str:
    lines = [
        f"ID:           {r['ID']}",
        f"Name:         {r['Name']}",
        f"Description:  {r.get('Description', '')}",
    ]
    return "\n".join(lines + _links("Policies", r.get("Policies")) + _identities(r))


def _show(opts: Parsed, value: Any, text: Callable[[dict[str, Any]], str]) -> None:
    if opts.string("format") == "json":
        ui.output(json.dumps(value, indent=4))
    elif isinstance(value, list):
        ui.output("\n\n".join(text(v) for v in value))
    else:
        ui.output(text(value))


def _flags(usage: str) -> FlagSet:
    fs = FlagSet(usage)
    fs.string("format", "pretty", "Output format: pretty or json.", "pretty|json")
    return fs


def _link_flags(fs: FlagSet) -> None:
    fs.repeated("policy-id", "ID of a policy to link. May be repeated.")
    fs.repeated("policy-name", "Name of a policy to link. May be repeated.")
    fs.repeated("service-identity", "A service identity, 'name' or 'name:dc1,dc2'. May be repeated.")
    fs.repeated("node-identity", "A node identity, 'node:datacenter'. May be repeated.")


def _link_body(opts: Parsed) -> dict[str, Any]:
    body: dict[str, Any] = {}
    policies = [{"ID": i} for i in opts.strings("policy-id")] + [
        {"Name": n} for n in opts.strings("policy-name")
    ]
    if policies:
        body["Policies"] = policies
    services = []
    for raw in opts.strings("service-identity"):
        name, _, dcs = raw.partition(":")
        services.append({"ServiceName": name, **({"Datacenters": dcs.split(",")} if dcs else {})})
    if services:
        body["ServiceIdentities"] = services
    nodes = []
    for raw in opts.strings("node-identity"):
        node, sep, dc = raw.partition(":")
        if not sep or not node or not dc:
            raise UsageError(f"Malformed -node-identity argument: {raw!r}")
        nodes.append({"NodeName": node, "Datacenter": dc})
    if nodes:
        body["NodeIdentities"] = nodes
    return body


def _call(opts: Parsed, method: str, path: str, body: Any = None) -> Any:
    """The answer's JSON; ClientError for a refusal, which ``_action`` reports."""
    client = client_from(opts)
    data = None if body is None else json.dumps(body).encode()
    if method == "GET":
        return client.get(path).json()
    if method == "DELETE":
        return client.delete(path).json()
    return client.put(path, body=data).json()


def _action(
    failure: Callable[[Parsed], str], act: Callable[[Parsed], Any], show: Callable[[Parsed, Any], None]
) -> Callable[[Parsed], int]:
    def body(opts: Parsed) -> int:
        try:
            result = act(opts)
        except (ClientError, UsageError) as exc:
            ui.error(f"{failure(opts)}: {exc}")
            return 1
        show(opts, result)
        return 0

    return body


def _need(opts: Parsed, *names: str) -> str:
    for name in names:
        if opts.string(name):
            return f"{name}={opts.string(name)}"
    raise UsageError(f"Must specify the -{names[0]} parameter")


def _by_id_or_name(kind: str, opts: Parsed) -> str:
    which = _need(opts, "id", "name")
    key, _, value = which.partition("=")
    return f"/v1/acl/{kind}/{value}" if key == "id" else f"/v1/acl/{kind}/name/{value}"


def _deleted(what: str) -> Callable[[Parsed, Any], None]:
    return lambda opts, _: ui.output(
        f'{what} "{opts.string("id") or opts.string("name")}" deleted successfully'
    )


def _resolve_id(opts: Parsed, kind: str) -> str:
    """Delete takes an ID; ``-name`` is looked up first, as Consul's commands do."""
    if opts.string("id"):
        return opts.string("id")
    found = _call(opts, "GET", _by_id_or_name(kind, opts))
    return str(found["ID"])


# -- commands ---------------------------------------------------------------------------


def _bootstrap() -> Subcommand:
    fs = _flags(
        "Usage: waypost acl bootstrap [options]\n\n  Bootstraps the ACL system and prints the new token."
    )
    act = _action(
        lambda o: "Failed ACL bootstrapping",
        lambda o: _call(o, "PUT", "/v1/acl/bootstrap"),
        lambda o, v: _show(o, v, _token_text),
    )
    return (lambda a: run_with_flags(fs, a, act), "Bootstrap Consul's ACL system")


def _token_create(opts: Parsed) -> Any:
    body = _link_body(opts)
    body["Roles"] = [{"ID": i} for i in opts.strings("role-id")] + [
        {"Name": n} for n in opts.strings("role-name")
    ]
    for flag, field in (("description", "Description"), ("secret", "SecretID"), ("accessor", "AccessorID")):
        if opts.string(flag):
            body[field] = opts.string(flag)
    if opts.string("expires-ttl"):
        body["ExpirationTTL"] = opts.string("expires-ttl")
    body["Local"] = opts.boolean("local")
    return _call(opts, "PUT", "/v1/acl/token", body)


def _token_commands() -> dict[str, Subcommand]:
    create = _flags("Usage: waypost acl token create [options]\n\n  Creates a new token.")
    _link_flags(create)
    create.repeated("role-id", "ID of a role to link. May be repeated.")
    create.repeated("role-name", "Name of a role to link. May be repeated.")
    create.string("description", "", "A description of the token.")
    create.string("secret", "", "The secret ID of the new token (a UUID); generated when unset.")
    create.string("accessor", "", "The accessor ID of the new token (a UUID); generated when unset.")
    create.string("expires-ttl", "", "Duration until the token expires, e.g. 10m (1m to 24h).", "duration")
    create.boolean("local", False, "Create the token local to this datacenter.")
    read = _flags(
        "Usage: waypost acl token read [options] -id TOKENID\n\n  Reads a token (-self: the one in use)."
    )
    read.string("id", "", "The accessor ID of the token to read.")
    read.boolean("self", False, "Read the token the command is run with.")
    delete = FlagSet("Usage: waypost acl token delete [options] -id TOKENID\n\n  Deletes a token.")
    delete.string("id", "", "The accessor ID of the token to delete.")
    listing = _flags("Usage: waypost acl token list [options]\n\n  Lists all tokens.")
    token_text = lambda o, v: _show(o, v, _token_text)  # noqa: E731
    return {
        "create": (
            lambda a: run_with_flags(
                create, a, _action(lambda o: "Failed to create new token", _token_create, token_text)
            ),
            "Create an ACL token",
        ),
        "read": (
            lambda a: run_with_flags(
                read,
                a,
                _action(
                    lambda o: f'Error reading token "{o.string("id")}"',
                    lambda o: _call(
                        o,
                        "GET",
                        "/v1/acl/token/self" if o.boolean("self") else f"/v1/acl/token/{_need(o, 'id')[3:]}",
                    ),
                    token_text,
                ),
            ),
            "Read an ACL token",
        ),
        "delete": (
            lambda a: run_with_flags(
                delete,
                a,
                _action(
                    lambda o: f'Error deleting token "{o.string("id")}"',
                    lambda o: _call(o, "DELETE", f"/v1/acl/token/{_need(o, 'id')[3:]}"),
                    _deleted("Token"),
                ),
            ),
            "Delete an ACL token",
        ),
        "list": (
            lambda a: run_with_flags(
                listing,
                a,
                _action(
                    lambda o: "Failed to retrieve the token list",
                    lambda o: _call(o, "GET", "/v1/acl/tokens"),
                    token_text,
                ),
            ),
            "List ACL tokens",
        ),
    }


def _policy_create(opts: Parsed) -> Any:
    body: dict[str, Any] = {"Name": _need(opts, "name")[5:], "Description": opts.string("description")}
    if opts.string("rules"):
        body["Rules"] = load_data(opts.string("rules")).decode()
    if opts.strings("valid-datacenter"):
        body["Datacenters"] = opts.strings("valid-datacenter")
    return _call(opts, "PUT", "/v1/acl/policy", body)


def _named_commands(kind: str, title: str, text: Callable[[dict[str, Any]], str]) -> dict[str, Subcommand]:
    """read, delete and list, which policies and roles share."""
    read = _flags(f"Usage: waypost acl {kind} read [options] -id ID | -name NAME\n\n  Reads a {kind}.")
    delete = FlagSet(f"Usage: waypost acl {kind} delete [options] -id ID | -name NAME\n\n  Deletes a {kind}.")
    for fs in (read, delete):
        fs.string("id", "", f"The ID of the {kind}.")
        fs.string("name", "", f"The name of the {kind}.")
    listing = _flags(f"Usage: waypost acl {kind} list [options]\n\n  Lists all {kind}s.")
    show = lambda o, v: _show(o, v, text)  # noqa: E731
    plural = "policies" if kind == "policy" else "roles"
    return {
        "read": (
            lambda a: run_with_flags(
                read,
                a,
                _action(
                    lambda o: f"Error reading {kind}",
                    lambda o: _call(o, "GET", _by_id_or_name(kind, o)),
                    show,
                ),
            ),
            f"Read an ACL {kind}",
        ),
        "delete": (
            lambda a: run_with_flags(
                delete,
                a,
                _action(
                    lambda o: f"Error deleting {kind}",
                    lambda o: _call(o, "DELETE", f"/v1/acl/{kind}/{_resolve_id(o, kind)}"),
                    _deleted(title),
                ),
            ),
            f"Delete an ACL {kind}",
        ),
        "list": (
            lambda a: run_with_flags(
                listing,
                a,
                _action(
                    lambda o: f"Failed to retrieve the {kind} list",
                    lambda o: _call(o, "GET", f"/v1/acl/{plural}"),
                    show,
                ),
            ),
            f"List ACL {plural}",
        ),
    }


def _policy_commands() -> dict[str, Subcommand]:
    create = _flags("Usage: waypost acl policy create -name NAME [options]\n\n  Creates a new policy.")
    create.string("name", "", "The new policy's name.")
    create.string("description", "", "A description of the policy.")
    create.string("rules", "", "The policy rules: literal HCL or JSON, @file, or - for stdin.")
    create.repeated("valid-datacenter", "Datacenter the policy is valid in. May be repeated.")
    commands = _named_commands("policy", "Policy", _policy_text)
    commands["create"] = (
        lambda a: run_with_flags(
            create,
            a,
            _action(
                lambda o: "Failed to create new policy",
                _policy_create,
                lambda o, v: _show(o, v, _policy_text),
            ),
        ),
        "Create an ACL policy",
    )
    return commands


def _role_create(opts: Parsed) -> Any:
    body = {"Name": _need(opts, "name")[5:], "Description": opts.string("description"), **_link_body(opts)}
    return _call(opts, "PUT", "/v1/acl/role", body)


def _role_commands() -> dict[str, Subcommand]:
    create = _flags("Usage: waypost acl role create -name NAME [options]\n\n  Creates a new role.")
    create.string("name", "", "The new role's name.")
    create.string("description", "", "A description of the role.")
    _link_flags(create)
    commands = _named_commands("role", "Role", _role_text)
    commands["create"] = (
        lambda a: run_with_flags(
            create,
            a,
            _action(
                lambda o: "Failed to create new role", _role_create, lambda o, v: _show(o, v, _role_text)
            ),
        ),
        "Create an ACL role",
    )
    return commands


def _set_agent_token() -> Subcommand:
    fs = FlagSet(
        "Usage: waypost acl set-agent-token [options] TYPE TOKEN\n\n"
        "  Sets one of the agent's tokens: default, agent, agent_recovery, replication, dns\n"
        "  or config_file_service_registration."
    )

    def act(opts: Parsed) -> Any:
        if len(opts.args) != 2:
            raise UsageError(
                "Missing TYPE and TOKEN arguments" if len(opts.args) < 2 else "Too many arguments"
            )
        kind, secret = opts.args
        return _call(opts, "PUT", f"/v1/agent/token/{kind}", {"Token": secret})

    body = _action(
        lambda o: "Failed setting token",
        act,
        lambda o, _: ui.output(f'ACL token "{o.args[0]}" set successfully'),
    )
    return (lambda a: run_with_flags(fs, a, body), "Assign tokens for the Consul Agent's usage")


def run(argv: Sequence[str]) -> int:
    groups: dict[str, Subcommand] = {
        "bootstrap": _bootstrap(),
        "set-agent-token": _set_agent_token(),
        "token": (
            lambda a: dispatch("acl token", "Manage ACL tokens.", _token_commands(), a),
            "Manage ACL tokens",
        ),
        "policy": (
            lambda a: dispatch("acl policy", "Manage ACL policies.", _policy_commands(), a),
            "Manage ACL policies",
        ),
        "role": (
            lambda a: dispatch("acl role", "Manage ACL roles.", _role_commands(), a),
            "Manage ACL roles",
        ),
    }
    return dispatch("acl", "Interacts with Consul's ACLs.", groups, argv)
