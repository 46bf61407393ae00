from __future__ import annotations

import pytest

from waypost.cli.flags import FlagSet, UsageError


def _flags() -> FlagSet:
    flags = FlagSet("Usage: waypost test", http=False, server=False)
    flags.boolean("detailed", False, "Show more.")
    return flags


@pytest.mark.parametrize(
    ("arg", "value"), [("-detailed", True), ("-detailed=TRUE", True), ("-detailed=F", False)]
)
def test_boolean_flags_take_go_spellings(arg: str, value: bool) -> None:
    assert _flags().parse([arg]).boolean("detailed") is value


def test_a_mixed_case_boolean_is_refused_as_go_refuses_it() -> None:
    with pytest.raises(UsageError, match='invalid boolean value "tRuE" for flag -detailed'):
        _flags().parse(["-detailed=tRuE"])
