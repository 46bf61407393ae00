"""Go's spellings of values: fmt's %v and encoding/json's output."""

from __future__ import annotations

import pytest

from waypost.template.gofmt import go_float, go_json, go_sprintf, go_str


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (-2.5, "-2.5"),
        (float("inf"), "+Inf"),
    ],
)
def test_float_v(value: float, expected: str) -> None:
    assert go_float(value) == expected


def test_composites() -> None:
    assert go_str({"b": 1, "a": [1, "x", None]}) == "map[a:[1 x <nil>] b:1]"
    assert go_str([]) == "[]"


def test_json_matches_go() -> None:
    assert go_json({"b": [1, 2.5, "<a&b>"], "a": {}, "c": 1e21, "d": 1e-7}) == (
        '{"a":{},"b":[1,2.5,"\\u003ca\\u0026b\\u003e"],"c":1e+21,"d":1e-7}'
    )
    assert go_json({"a": [1]}, "  ") == '{\n  "a": [\n    1\n  ]\n}'
    assert go_json("<", escape_html=False) == '"<"'


def test_sprintf_verbs() -> None:
    assert (
        go_sprintf("%6.2f|%-4s|%03d|%t|%T", [3.14159, "ab", 7, True, 1.5]) == "  3.14|ab  |007|true|float64"
    )
