from __future__ import annotations

import pytest

from waypost.gostrconv import GO_BOOLS, atoi, go_quote, num_error, parse_uint64


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


@pytest.mark.parametrize(
    ("text", "value"), [("5", 5), ("+5", 5), ("-5", -5), ("007", 7), ("-" + "9" * 18, -(10**18) + 1)]
)
def test_atoi_takes_what_go_takes(text: str, value: int) -> None:
    assert atoi(text) == value


@pytest.mark.parametrize("text", ["", "+", "-", " 5", "5 ", "1_000", "\u0665", "5\n", "0x10", "1e3", "++5"])
def test_atoi_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid syntax") as exc:
        atoi(text)
    assert str(exc.value) == num_error("Atoi", text)


def test_atoi_range_is_int64() -> None:
    assert atoi(str(2**63 - 1)) == 2**63 - 1
    assert atoi(str(-(2**63))) == -(2**63)
    for text in (str(2**63), str(-(2**63) - 1)):
        with pytest.raises(ValueError, match="value out of range"):
            atoi(text)


def test_parse_uint64_is_gos_parse_uint_base_10() -> None:
    assert parse_uint64("0") == 0
    assert parse_uint64(str(2**64 - 1)) == 2**64 - 1
    for text in ("", "+1", "-1", "1_0", " 1", "\u0665", "\u00b2"):
        with pytest.raises(ValueError, match="invalid syntax") as exc:
            parse_uint64(text)
        assert str(exc.value) == num_error("ParseUint", text)
    with pytest.raises(ValueError, match="value out of range"):
        parse_uint64(str(2**64))
