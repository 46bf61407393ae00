from __future__ import annotations

import pytest

from waypost.gostrconv import GO_BOOLS, go_quote, num_error


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_spellings(text: str) -> None:
    assert GO_BOOLS[text] is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_spellings(text: str) -> None:
    assert GO_BOOLS[text] is False


@pytest.mark.parametrize("text", ["", "yes", "no", "tRuE", "fALSE", "on", " true", "2"])
def test_other_spellings_are_not_booleans(text: str) -> None:
    assert text not in GO_BOOLS


# What Go's strconv.Quote gives for each text.
_QUOTED = {
    "web": '"web"',
    'a"b\\c': '"a\\"b\\\\c"',
    "\a\b\f\n\r\t\v": '"\\a\\b\\f\\n\\r\\t\\v"',
    "\x00\x1b\x7f": '"\\x00\\x1b\\x7f"',
    "h\u00e9llo \u4e16": '"h\u00e9llo \u4e16"',
    "\u0085\u00a0\u2028": '"\\u0085\\u00a0\\u2028"',
    "\U0001f600\U000e0001": '"\U0001f600\\U000e0001"',
    "\ud800": '"\\ufffd"',
}


@pytest.mark.parametrize("text", list(_QUOTED))
def test_quote_is_gos_strconv_quote(text: str) -> None:
    assert go_quote(text) == _QUOTED[text]


def test_num_error_is_gos_message() -> None:
    assert num_error("Atoi", "x\n") == 'strconv.Atoi: parsing "x\\n": invalid syntax'
    assert num_error("ParseInt", "9" * 20, "value out of range").endswith(": value out of range")
