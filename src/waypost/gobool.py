"""Go's ``strconv.ParseBool`` spellings. Consul reads every boolean given as text with it
(flags, environment switches, filter literals), so "TRUE" and "t" count but "yes" and
"tRuE" do not; one table keeps every reader agreeing on that."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["GO_BOOLS"]

GO_BOOLS: Final[Mapping[str, bool]] = MappingProxyType(
    dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True)
    | dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)
)
