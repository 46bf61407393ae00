"""The HTTP adapter's own parsing, without sockets."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from hypothesis import given
from hypothesis import strategies as st

from waypost.api.http import _parse_query


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=6), st.booleans())
def test_query_parsing_matches_the_standard_library(pairs: list[tuple[str, str]], bare: bool) -> None:
    raw = "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    if bare:
        raw += "&recurse"
    assert _parse_query(raw) == parse_qs(raw, keep_blank_values=True)
