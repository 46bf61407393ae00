"""Reading configuration files, directories and inline HCL into plain dicts.

Consul reads HCL 1; python-hcl2 reads HCL 2, which differs in ways that
matter for agent configs. Two are bridged here: HCL 2 rejects quoted
attribute names inside blocks (``service_ttl { "*" = "5s" }``), and it
returns string literals still quoted and escaped. Blocks come back as lists;
a block given once becomes an object and a repeated one a list, as HCL 1
decoding into Consul's structs does, except for the names in
``_LIST_BLOCKS`` which are lists even when written once.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from waypost.config.errors import ConfigError

if TYPE_CHECKING:
    import lark
else:
    from waypost.lazy_imports import lark

__all__ = ["Source", "parse_text", "read_path"]

_FORMATS = {".json": "json", ".hcl": "hcl"}

#: Blocks that are list-valued in Consul's definitions even when written once.
_LIST_BLOCKS = frozenset({"checks", "services", "upstreams", "paths"})


@functools.cache
def _hcl_loads() -> Callable[[str], Any]:
    """python-hcl2, imported on the first HCL text: its grammar costs tens of milliseconds
    and 10-19 MiB of memory that an agent configured in JSON, or by flags alone, never needs."""
    import hcl2
    from hcl2.utils import SerializationOptions

    options = SerializationOptions(
        with_comments=False,
        explicit_blocks=True,
        preserve_heredocs=False,
        preserve_scientific_notation=False,
    )
    return functools.partial(hcl2.loads, serialization_options=options)


_BLOCK_MARK = "__is_block__"
_QUOTED_KEY_PREFIX = "__waypost_quoted_key_"

# Comments, heredocs and string literals, so that a quoted attribute name is
# recognised only outside them.
_HCL_LEXEME = re.compile(
    r"""
    (?P<comment>\#[^\n]*|//[^\n]*|/\*.*?\*/)
    |(?P<heredoc><<-?(?P<tag>[A-Za-z_]\w*)\n.*?\n[ \t]*(?P=tag)(?=\r?\n|$))
    |(?P<string>"(?:[^"\\\n]|\\.)*")(?P<assign>[ \t]*=(?!=))?
    """,
    re.DOTALL | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Source:
    """One parsed configuration source; ``name`` is what error messages call it."""

    name: str
    data: dict[str, object]


def read_path(path: str, config_format: str | None, warnings: list[str]) -> list[Source]:
    """A -config-file or -config-dir argument: the file, or the directory's *.json/*.hcl in name order.

    Like Consul, files whose format cannot be told from their extension are
    skipped with a warning unless -config-format is given.
    """
    if not os.path.exists(path):
        raise ConfigError(f"config: Open failed on {path}. No such file or directory")
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        candidates = [os.path.join(path, n) for n in names if not os.path.isdir(os.path.join(path, n))]
    else:
        candidates = [path]
    sources = []
    for candidate in candidates:
        fmt = config_format or _FORMATS.get(os.path.splitext(candidate)[1])
        if fmt is None:
            warnings.append(
                f"skipping file {candidate}, extension must be .hcl or .json, or config format must be set"
            )
            continue
        try:
            with open(candidate, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise ConfigError(f"config: Open failed on {candidate}. {err.strerror}") from None
        sources.append(Source(candidate, parse_text(candidate, text, fmt)))
    return sources


def parse_text(name: str, text: str, config_format: str) -> dict[str, object]:
    if config_format == "json":
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise ConfigError(str(err), name) from None
        if not isinstance(data, dict):
            raise ConfigError("the top level must be a JSON object", name)
        return data
    try:
        parsed = _hcl_loads()(_quote_keys(text))
    except lark.LarkError as err:
        raise ConfigError(str(err).split("\n", 1)[0], name) from None
    return _clean_object(parsed, name)


def _quote_keys(text: str) -> str:
    """Rewrite HCL 1 quoted attribute names into identifiers that ``_clean_key`` turns back."""

    def replace(m: re.Match[str]) -> str:
        if m.group("string") is None or m.group("assign") is None:
            return m.group(0)
        key: str = json.loads(m.group("string"))
        return _QUOTED_KEY_PREFIX + key.encode().hex() + m.group("assign")

    return _HCL_LEXEME.sub(replace, text)


def _clean_key(key: str) -> str:
    if key.startswith(_QUOTED_KEY_PREFIX):
        return bytes.fromhex(key[len(_QUOTED_KEY_PREFIX) :]).decode()
    return _unquote(key) if key.startswith('"') else key


def _unquote(literal: str) -> str:
    # python-hcl2 returns string literals with their quotes and escapes intact;
    # HCL's escapes are JSON's.
    return str(json.loads(literal))


def _clean_object(obj: dict[str, object], name: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for raw_key, value in obj.items():
        if raw_key == _BLOCK_MARK:
            continue
        key = _clean_key(raw_key)
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and v.get(_BLOCK_MARK) for v in value)
        ):
            blocks = [_clean_object(v, name) for v in value]
            out[key] = blocks[0] if len(blocks) == 1 and key not in _LIST_BLOCKS else blocks
        else:
            out[key] = _clean_value(value, key, name)
    return out


def _clean_value(value: object, key: str, name: str) -> object:
    if isinstance(value, dict):
        return _clean_object(value, name)
    if isinstance(value, list):
        return [_clean_value(v, key, name) for v in value]
    if isinstance(value, str):
        if not value.startswith('"'):
            raise ConfigError(f"{key}: unsupported HCL expression {value}", name)
        return _unquote(value)
    return value
