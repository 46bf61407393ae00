"""Consul's command-line habits, in one place: Go ``flag`` parsing and the usage text.

Scripts written for ``consul`` pass ``-flag value``, ``-flag=value`` and
``--flag`` interchangeably, put flags before positional arguments (parsing stops
at the first one, so ``waypost lock prefix cmd -x`` leaves ``-x`` to the child),
and expect a usage error to exit 1 after printing the help. argparse does none of
that the same way, hence this small parser.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from waypost.durations import parse_duration
from waypost.gostrconv import GO_BOOLS

__all__ = ["FlagSet", "HelpRequested", "Parsed", "UsageError", "load_data", "run_with_flags"]


class UsageError(Exception):
    """Bad command line; printed with the command's help, exit code 1 as Consul does."""


class HelpRequested(Exception):
    """``-h``, ``-help`` or ``--help`` before the first positional argument."""


class _Kind(Enum):
    STRING = "string"
    BOOL = "bool"
    INT = "int"
    UINT = "uint"
    DURATION = "duration"
    LIST = "list"
    MAP = "map"


@dataclass(frozen=True)
class _Flag:
    name: str
    kind: _Kind
    default: object
    help: str
    placeholder: str


_HTTP_FLAGS = (
    (
        "http-addr",
        "address",
        "The address and port of the agent's HTTP API, with an optional http:// or "
        "https:// scheme. Also set by WAYPOST_HTTP_ADDR or CONSUL_HTTP_ADDR. The default is 127.0.0.1:8500.",
    ),
    (
        "token",
        "value",
        "ACL token to use in the request, sent as X-Consul-Token. Also set by "
        "WAYPOST_HTTP_TOKEN or CONSUL_HTTP_TOKEN.",
    ),
    ("token-file", "value", "File containing the ACL token. Also set by CONSUL_HTTP_TOKEN_FILE."),
    (
        "ca-file",
        "value",
        "Path to a CA file to use for TLS when communicating with Consul. This can also be specified "
        "via the CONSUL_CACERT environment variable.",
    ),
    (
        "ca-path",
        "value",
        "Path to a directory of CA certificates to use for TLS when communicating with Consul. This "
        "can also be specified via the CONSUL_CAPATH environment variable.",
    ),
    (
        "client-cert",
        "value",
        "Path to a client cert file to use for TLS when 'verify_incoming' is enabled. This can also "
        "be specified via the CONSUL_CLIENT_CERT environment variable.",
    ),
    (
        "client-key",
        "value",
        "Path to a client key file to use for TLS when 'verify_incoming' is enabled. This can also "
        "be specified via the CONSUL_CLIENT_KEY environment variable.",
    ),
    (
        "tls-server-name",
        "value",
        "The server name to use as the SNI host when connecting via TLS. This can also be specified "
        "via the CONSUL_TLS_SERVER_NAME environment variable.",
    ),
)
_SERVER_FLAGS = (
    ("datacenter", "value", "Name of the datacenter to query. The default is the agent's datacenter."),
    ("stale", "", "Permit any server (non-leader) to answer reads. The default value is false."),
)


@dataclass
class Parsed:
    """The values a command line set, with the defaults for those it did not."""

    values: dict[str, object]
    args: list[str]
    given: set[str] = field(default_factory=set)

    def string(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str)
        return value

    def boolean(self, name: str) -> bool:
        return bool(self.values[name])

    def integer(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int)
        return value

    def seconds(self, name: str) -> float:
        value = self.values[name]
        assert isinstance(value, float)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.values[name]
        assert isinstance(value, list)
        return [str(v) for v in value]

    def mapping(self, name: str) -> dict[str, str]:
        value = self.values[name]
        assert isinstance(value, dict)
        return {str(k): str(v) for k, v in value.items()}


class FlagSet:
    """One command's flags and help; ``http``/``server`` add Consul's shared API flags."""

    def __init__(self, usage: str, *, http: bool = True, server: bool = True) -> None:
        self.usage = textwrap.dedent(usage).strip("\n")
        self._flags: dict[str, _Flag] = {}
        self._api: list[str] = []
        if http:
            for name, placeholder, text in _HTTP_FLAGS:
                self._add(name, _Kind.STRING, "", text, placeholder)
                self._api.append(name)
        if server:
            for name, placeholder, text in _SERVER_FLAGS:
                kind = _Kind.BOOL if name == "stale" else _Kind.STRING
                self._add(name, kind, False if kind is _Kind.BOOL else "", text, placeholder)
                self._api.append(name)

    def _add(self, name: str, kind: _Kind, default: object, text: str, placeholder: str) -> None:
        self._flags[name] = _Flag(name, kind, default, text, placeholder)

    def string(self, name: str, default: str, text: str, placeholder: str = "value") -> None:
        self._add(name, _Kind.STRING, default, text, placeholder)

    def boolean(self, name: str, default: bool, text: str) -> None:
        self._add(name, _Kind.BOOL, default, text, "")

    def integer(self, name: str, default: int, text: str, *, unsigned: bool = False) -> None:
        self._add(name, _Kind.UINT if unsigned else _Kind.INT, default, text, "int")

    def duration(self, name: str, default: float, text: str) -> None:
        self._add(name, _Kind.DURATION, default, text, "duration")

    def repeated(self, name: str, text: str, placeholder: str = "value") -> None:
        self._add(name, _Kind.LIST, None, text, placeholder)

    def mapping(self, name: str, text: str) -> None:
        self._add(name, _Kind.MAP, None, text, "key=value")

    def parse(self, argv: Sequence[str]) -> Parsed:
        values: dict[str, object] = {}
        for f in self._flags.values():
            values[f.name] = [] if f.kind is _Kind.LIST else {} if f.kind is _Kind.MAP else f.default
        parsed = Parsed(values, [])
        args = list(argv)
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if len(arg) < 2 or not arg.startswith("-"):
                break
            name = arg[2:] if arg.startswith("--") else arg[1:]
            if not name or name.startswith("-") or name.startswith("="):
                raise UsageError(f"bad flag syntax: {arg}")
            name, eq, inline = name.partition("=")
            if name in ("h", "help"):
                raise HelpRequested()
            flag = self._flags.get(name)
            if flag is None:
                raise UsageError(f"flag provided but not defined: -{name}")
            if flag.kind is _Kind.BOOL:
                raw = inline if eq else "true"
            elif eq:
                raw = inline
            elif i + 1 < len(args):
                i += 1
                raw = args[i]
            else:
                raise UsageError(f"flag needs an argument: -{name}")
            self._store(parsed, flag, raw)
            i += 1
        parsed.args = args[i:]
        return parsed

    @staticmethod
    def _store(parsed: Parsed, flag: _Flag, raw: str) -> None:
        parsed.given.add(flag.name)
        try:
            value = _convert(flag.kind, raw)
        except ValueError as exc:
            what = "boolean value" if flag.kind is _Kind.BOOL else "value"
            raise UsageError(f'invalid {what} "{raw}" for flag -{flag.name}: {exc}') from None
        if flag.kind is _Kind.LIST:
            current = parsed.values[flag.name]
            assert isinstance(current, list)
            current.append(value)
        elif flag.kind is _Kind.MAP:
            current_map = parsed.values[flag.name]
            assert isinstance(current_map, dict)
            assert isinstance(value, tuple)
            current_map[value[0]] = value[1]
        else:
            parsed.values[flag.name] = value

    def help(self) -> str:
        own = [f for n, f in self._flags.items() if n not in self._api]
        api = [f for n, f in self._flags.items() if n in self._api]
        parts = [self.usage]
        if api:
            parts.append("HTTP API Options\n\n" + "\n\n".join(_describe(f) for f in api))
        if own:
            parts.append("Command Options\n\n" + "\n\n".join(_describe(f) for f in own))
        return "\n\n".join(parts)


def _describe(flag: _Flag) -> str:
    head = f"  -{flag.name}" + (f"=<{flag.placeholder}>" if flag.placeholder else "")
    body = textwrap.fill(flag.help, width=76, initial_indent="     ", subsequent_indent="     ")
    return f"{head}\n{body}"


def _convert(kind: _Kind, raw: str) -> object:
    if kind is _Kind.BOOL:
        if raw not in GO_BOOLS:
            raise ValueError("parse error")
        return GO_BOOLS[raw]
    if kind in (_Kind.INT, _Kind.UINT):
        try:
            number = int(raw, 0)
        except ValueError:
            raise ValueError("parse error") from None
        if kind is _Kind.UINT and number < 0:
            raise ValueError("parse error")
        return number
    if kind is _Kind.DURATION:
        try:
            return parse_duration(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(str(exc) or "parse error") from None
    if kind is _Kind.MAP:
        key, eq, value = raw.partition("=")
        if not eq:
            raise ValueError("missing '='")
        return key, value
    return raw


def run_with_flags(flags: FlagSet, argv: Sequence[str], body: Callable[[Parsed], int]) -> int:
    """Parse, answer ``-h`` on stdout with exit 0 and usage errors on stderr with exit 1, then run."""
    try:
        parsed = flags.parse(argv)
    except HelpRequested:
        print(flags.help())
        return 0
    except UsageError as exc:
        print(f"{exc}\n\n{flags.help()}", file=sys.stderr)
        return 1
    return body(parsed)


def load_data(arg: str) -> bytes:
    """A DATA argument: ``@path`` reads the file, a lone ``-`` reads stdin, anything else is literal.

    Raises ``UsageError`` with Consul's wording when the file or stdin cannot be read.
    """
    if arg.startswith("@"):
        try:
            with open(arg[1:], "rb") as f:
                return f.read()
        except OSError as exc:
            raise UsageError(f"Failed to read file: {exc}") from None
    if arg == "-":
        try:
            return sys.stdin.buffer.read()
        except OSError as exc:
            raise UsageError(f"Failed to read stdin: {exc}") from None
    return arg.encode()
